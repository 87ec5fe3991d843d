package tui

import (
	"context"

	tea "charm.land/bubbletea/v2"

	"github.com/openvcpe/vcpe/precheck"
	"github.com/openvcpe/vcpe/provision"
)

// Bridge connects the install Engine's goroutine to the bubbletea program:
// it implements provision.Prompter by sending a prompt message into the
// program and blocking on a reply channel (or until ctx ends), and its Emit
// forwards Engine events into the program as messages.
type Bridge struct {
	// Send delivers a message to the program; (*tea.Program).Send does.
	Send func(tea.Msg)
}

var _ provision.Prompter = (*Bridge)(nil)

// Emit forwards an Engine event; use it as Engine.Emit.
func (b *Bridge) Emit(ev provision.Event) { b.Send(engineEventMsg{Event: ev}) }

// ask sends a prompt built around a reply channel and waits for the answer
// or for ctx to end.
func ask[T any](ctx context.Context, send func(tea.Msg), mk func(chan<- T) tea.Msg) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	reply := make(chan T, 1)
	send(mk(reply))
	select {
	case v := <-reply:
		return v, nil
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// AfterPrecheck shows the report on the precheck page and waits for
// continue, re-run or abort.
func (b *Bridge) AfterPrecheck(ctx context.Context, rep precheck.Report) (provision.PrecheckDecision, error) {
	d, err := ask(ctx, b.Send, func(c chan<- provision.PrecheckDecision) tea.Msg {
		return precheckPromptMsg{Report: rep, reply: c}
	})
	if err != nil {
		return provision.PrecheckAbort, err
	}
	return d, nil
}

// Registration shows the registration form and the routes page.
func (b *Bridge) Registration(ctx context.Context, s provision.Suggestions) (provision.Registration, error) {
	return ask(ctx, b.Send, func(c chan<- provision.Registration) tea.Msg {
		return registrationPromptMsg{Suggestions: s, reply: c}
	})
}

// Confirm shows the plan and returns nil when accepted, ErrDeclined when
// not.
func (b *Bridge) Confirm(ctx context.Context, p provision.Plan) error {
	ok, err := ask(ctx, b.Send, func(c chan<- bool) tea.Msg {
		return confirmPromptMsg{Plan: p, reply: c}
	})
	if err != nil {
		return err
	}
	if !ok {
		return provision.ErrDeclined
	}
	return nil
}

var (
	_ provision.AttachPrompter  = (*Bridge)(nil)
	_ provision.LockoutPrompter = (*Bridge)(nil)
)

// Attach shows the multi-attach page.
func (b *Bridge) Attach(ctx context.Context, q provision.AttachQuestion) (provision.Attach, error) {
	return ask(ctx, b.Send, func(c chan<- provision.Attach) tea.Msg {
		return attachPromptMsg{Question: q, reply: c}
	})
}

// OverrideLockout shows the lockout page; true overrides the guard.
func (b *Bridge) OverrideLockout(ctx context.Context, e *provision.LockoutError) (bool, error) {
	return ask(ctx, b.Send, func(c chan<- bool) tea.Msg {
		return lockoutPromptMsg{Err: *e, reply: c}
	})
}
