package provision

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openvcpe/vcpe/internal/device"
)

// fakeInstall is an install whose every step makes a real change (files
// in a temp dir, a fake sysctl) through the journal, and which can be told
// to fail at a step.
func fakeInstall(t *testing.T, root string, sys fakeSysctl, failAt StepID) *Engine {
	t.Helper()
	stateDir := filepath.Join(root, "state")
	j, err := OpenJournal(stateDir, sys, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	step := func(id StepID, change func() (bool, error)) Step {
		return Step{ID: id, Title: string(id), Run: func(ctx context.Context, r *Run) (Status, string, error) {
			changed, err := change()
			if err != nil {
				return StatusFailed, "", err
			}
			if id == failAt {
				return StatusFailed, "", fmt.Errorf("injected failure at %s", id)
			}
			if !changed {
				return StatusUnchanged, "nothing to do", nil
			}
			return StatusOK, "done", nil
		}}
	}
	return &Engine{
		Journal: j,
		Now:     fixedNow,
		Steps: []Step{
			step(StepPrecheck, func() (bool, error) { return false, nil }),
			step(StepRegister, func() (bool, error) {
				if _, err := j.MkdirAll(stateDir, 0o700); err != nil {
					return false, err
				}
				return j.WriteFile(filepath.Join(stateDir, device.StateFile), []byte(`{"sn":"x"}`), 0o600)
			}),
			step(StepPlan, func() (bool, error) { return false, nil }),
			step(StepApply, func() (bool, error) { return j.SetSysctl("net.ipv4.ip_forward", "1") }),
			step(StepStart, func() (bool, error) {
				return j.WriteFile(filepath.Join(root, "etc", "vcped.service"), []byte("[Unit]\n"), 0o644)
			}),
			step(StepTunnel, func() (bool, error) { return false, nil }),
		},
	}
}

func TestEngineFailureAtEachStepLeavesHostAsItWas(t *testing.T) {
	for _, failAt := range []StepID{StepPrecheck, StepRegister, StepPlan, StepApply, StepStart, StepTunnel} {
		t.Run(string(failAt), func(t *testing.T) {
			root := t.TempDir()
			mustMkdir(t, filepath.Join(root, "etc"))
			sys := fakeSysctl{"net.ipv4.ip_forward": "0"}
			before := snapshotTree(t, root)
			e := fakeInstall(t, root, sys, failAt)
			var events []Event
			e.Emit = func(ev Event) { events = append(events, ev) }
			sum, err := e.Run(context.Background())
			if err == nil || !strings.Contains(err.Error(), "injected failure") {
				t.Fatalf("Run error = %v; want the injected failure", err)
			}
			if sum.OK || !sum.RolledBack {
				t.Errorf("summary %+v; want not OK and rolled back", sum)
			}
			if sys["net.ipv4.ip_forward"] != "0" {
				t.Errorf("ip_forward = %s after rollback; want 0", sys["net.ipv4.ip_forward"])
			}
			assertSameTree(t, before, snapshotTree(t, root))
			last := events[len(events)-1]
			if last.Step != StepRollback || last.Status != StatusOK {
				t.Errorf("last event %+v; want a successful rollback", last)
			}
		})
	}
}

func TestEngineSecondRunChangesNothing(t *testing.T) {
	root := t.TempDir()
	mustMkdir(t, filepath.Join(root, "etc"))
	sys := fakeSysctl{"net.ipv4.ip_forward": "0"}
	sum, err := fakeInstall(t, root, sys, "").Run(context.Background())
	if err != nil || !sum.OK || !sum.Changed {
		t.Fatalf("first run: %+v, %v; want OK and changed", sum, err)
	}
	sum, err = fakeInstall(t, root, sys, "").Run(context.Background())
	if err != nil || !sum.OK || sum.Changed {
		t.Fatalf("second run: %+v, %v; want OK and unchanged", sum, err)
	}
	for _, s := range sum.Steps {
		if s.Status != StatusUnchanged {
			t.Errorf("second run step %s: %s; want unchanged", s.Step, s.Status)
		}
	}
	// A failure in a later run undoes only that run's changes, never the
	// completed install's.
	j, _ := OpenJournal(filepath.Join(root, "state"), sys, fixedNow)
	n := j.Len()
	e := fakeInstall(t, root, sys, StepTunnel)
	if _, err := e.Run(context.Background()); err == nil {
		t.Fatal("injected failure not reported")
	}
	if e.Journal.Len() != n || sys["net.ipv4.ip_forward"] != "1" {
		t.Errorf("a failed re-run undid the earlier install: journal %d→%d, ip_forward=%s", n, e.Journal.Len(), sys["net.ipv4.ip_forward"])
	}
}

func TestEngineCancelRollsBack(t *testing.T) {
	root := t.TempDir()
	mustMkdir(t, filepath.Join(root, "etc"))
	sys := fakeSysctl{"net.ipv4.ip_forward": "0"}
	before := snapshotTree(t, root)
	e := fakeInstall(t, root, sys, "")
	ctx, cancel := context.WithCancel(context.Background())
	// The operator quits while the daemon is being started.
	e.Emit = func(ev Event) {
		if ev.Step == StepStart && ev.Kind == EventFinished {
			cancel()
		}
	}
	_, err := e.Run(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run error = %v; want context.Canceled", err)
	}
	assertSameTree(t, before, snapshotTree(t, root))
	if sys["net.ipv4.ip_forward"] != "0" {
		t.Errorf("ip_forward = %s after cancel; want 0", sys["net.ipv4.ip_forward"])
	}
}

func mustMkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

func assertSameTree(t *testing.T, before, after map[string]string) {
	t.Helper()
	for p, v := range before {
		if after[p] != v {
			t.Errorf("%s: now %q; before %q", p, after[p], v)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s: left behind", p)
		}
	}
}
