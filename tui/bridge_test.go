package tui

import (
	"context"
	"errors"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/openvcpe/vcpe/precheck"
	"github.com/openvcpe/vcpe/provision"
)

// TestBridgeUnblocksOnCancel: a prompt nobody answers returns when ctx
// ends, for every Prompter method.
func TestBridgeUnblocksOnCancel(t *testing.T) {
	calls := map[string]func(ctx context.Context, b *Bridge) error{
		"AfterPrecheck": func(ctx context.Context, b *Bridge) error {
			d, err := b.AfterPrecheck(ctx, report())
			if d != provision.PrecheckAbort {
				t.Errorf("AfterPrecheck decision %v on cancel; want abort", d)
			}
			return err
		},
		"Registration": func(ctx context.Context, b *Bridge) error {
			_, err := b.Registration(ctx, suggestions())
			return err
		},
		"Confirm": func(ctx context.Context, b *Bridge) error { return b.Confirm(ctx, testPlan()) },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			got := make(chan tea.Msg, 1)
			b := &Bridge{Send: func(m tea.Msg) { got <- m }}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- call(ctx, b) }()
			select {
			case <-got: // the prompt reached the program; nobody answers
			case <-time.After(5 * time.Second):
				t.Fatal("the prompt was never sent")
			}
			select {
			case err := <-done:
				t.Fatalf("returned %v before the cancel", err)
			default:
			}
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("err %v; want context.Canceled", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("still blocked after the cancel")
			}
		})
	}
}

func TestBridgeDeliversAnswers(t *testing.T) {
	b := &Bridge{Send: func(m tea.Msg) {
		switch m := m.(type) {
		case precheckPromptMsg:
			m.reply <- provision.PrecheckRerun
		case registrationPromptMsg:
			m.reply <- provision.Registration{SN: "SN-1"}
		case confirmPromptMsg:
			m.reply <- false
		}
	}}
	ctx := context.Background()
	if d, err := b.AfterPrecheck(ctx, precheck.Report{}); d != provision.PrecheckRerun || err != nil {
		t.Errorf("AfterPrecheck = %v, %v", d, err)
	}
	if r, err := b.Registration(ctx, provision.Suggestions{}); r.SN != "SN-1" || err != nil {
		t.Errorf("Registration = %+v, %v", r, err)
	}
	if err := b.Confirm(ctx, provision.Plan{}); !errors.Is(err, provision.ErrDeclined) {
		t.Errorf("Confirm = %v; want ErrDeclined", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	sent := false
	b.Send = func(tea.Msg) { sent = true }
	if err := b.Confirm(cancelled, provision.Plan{}); !errors.Is(err, context.Canceled) || sent {
		t.Errorf("Confirm on a cancelled ctx = %v (sent %v); want Canceled without a prompt", err, sent)
	}
	var evs []tea.Msg
	b.Send = func(m tea.Msg) { evs = append(evs, m) }
	b.Emit(provision.Event{Step: provision.StepApply, Kind: provision.EventStarted})
	if len(evs) != 1 || evs[0].(engineEventMsg).Event.Step != provision.StepApply {
		t.Errorf("Emit sent %v", evs)
	}
}
