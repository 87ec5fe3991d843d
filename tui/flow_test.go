package tui

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"

	"github.com/openvcpe/vcpe/internal/device"
	"github.com/openvcpe/vcpe/precheck"
	"github.com/openvcpe/vcpe/provision"
	"github.com/openvcpe/vcpe/tui/components"
)

// fakeFlow is an install whose steps are plain funcs, as in
// provision/engine_test.go: they ask through the Prompter, emit events and
// make real changes (files, a sysctl file under a temp root) through the
// journal, so a rollback is observable.
type fakeFlow struct {
	root    string
	reports []precheck.Report // successive precheck runs
	block   provision.StepID  // this step waits until the run is cancelled
	reg     provision.Registration
}

func newFakeFlow(t *testing.T) *fakeFlow {
	root := t.TempDir()
	for _, d := range []string{"etc", "proc/net/ipv4"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "proc/net/ipv4/ip_forward"), []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return &fakeFlow{root: root, reports: []precheck.Report{report(warnICMP)}}
}

func (f *fakeFlow) newEngine(t *testing.T) NewEngine {
	return func(p provision.Prompter, emit func(provision.Event)) Installer {
		stateDir := filepath.Join(f.root, "var/lib/vcpe")
		j, err := provision.OpenJournal(stateDir, provision.ProcSysctl{Root: filepath.Join(f.root, "proc")}, nil)
		if err != nil {
			t.Fatal(err)
		}
		change := func(changed bool, err error) (provision.Status, string, error) {
			if err != nil {
				return provision.StatusFailed, "", err
			}
			if !changed {
				return provision.StatusUnchanged, "nothing to do", nil
			}
			return provision.StatusOK, "done", nil
		}
		type run = func(context.Context, *provision.Run) (provision.Status, string, error)
		steps := []struct {
			id provision.StepID
			fn run
		}{
			{provision.StepPrecheck, func(ctx context.Context, r *provision.Run) (provision.Status, string, error) {
				for i := 0; ; i++ {
					rep := f.reports[min(i, len(f.reports)-1)]
					for _, c := range rep.Checks {
						r.Progress(c.Title, c)
					}
					d, err := p.AfterPrecheck(ctx, rep)
					if err != nil {
						return provision.StatusFailed, "", err
					}
					switch d {
					case provision.PrecheckAbort:
						return provision.StatusFailed, "", errors.New("aborted after the precheck; nothing was changed")
					case provision.PrecheckContinue:
						return provision.StatusWarn, "1 warning accepted", nil
					}
				}
			}},
			{provision.StepRegister, func(ctx context.Context, r *provision.Run) (provision.Status, string, error) {
				reg, err := p.Registration(ctx, suggestions())
				if err != nil {
					return provision.StatusFailed, "", err
				}
				f.reg = reg
				if _, err := j.MkdirAll(stateDir, 0o700); err != nil {
					return provision.StatusFailed, "", err
				}
				return change(j.WriteFile(filepath.Join(stateDir, device.StateFile), []byte(`{"sn":"`+reg.SN+`"}`), 0o600))
			}},
			{provision.StepPlan, func(ctx context.Context, r *provision.Run) (provision.Status, string, error) {
				return provision.StatusOK, "3 changes", nil
			}},
			{provision.StepReview, func(ctx context.Context, r *provision.Run) (provision.Status, string, error) {
				if err := p.Confirm(ctx, testPlan()); err != nil {
					return provision.StatusFailed, "", err
				}
				return provision.StatusOK, "accepted", nil
			}},
			{provision.StepApply, func(ctx context.Context, r *provision.Run) (provision.Status, string, error) {
				return change(j.SetSysctl("net.ipv4.ip_forward", "1"))
			}},
			{provision.StepStart, func(ctx context.Context, r *provision.Run) (provision.Status, string, error) {
				return change(j.WriteFile(filepath.Join(f.root, "etc/vcped.service"), []byte("[Unit]\n"), 0o644))
			}},
			{provision.StepTunnel, func(ctx context.Context, r *provision.Run) (provision.Status, string, error) {
				if f.block == provision.StepTunnel {
					r.Progress("waiting for the first handshake", nil)
					<-ctx.Done()
					return provision.StatusFailed, "", ctx.Err()
				}
				return provision.StatusOK, "handshake with 198.18.0.1:4500", nil
			}},
			{provision.StepConnectivity, func(ctx context.Context, r *provision.Run) (provision.Status, string, error) {
				for _, pr := range testProbes() {
					r.Progress("probing "+pr.Name, pr)
				}
				return provision.StatusWarn, "1 of 3 targets unreachable", nil
			}},
		}
		e := &provision.Engine{Journal: j, Emit: emit}
		for _, s := range steps {
			e.Steps = append(e.Steps, provision.Step{ID: s.id, Title: string(s.id), Run: s.fn})
		}
		return e
	}
}

// fillToReview answers the registration form (and accepts the suggested
// LAN prefix) up to the plan review.
func fillToReview(d *driver) {
	d.t.Helper()
	d.pump("the registration form", func(m *Model) bool { return m.page == pageRegister })
	for _, v := range []string{testController, testFingerprint, "SN-A-0001", "device-key"} {
		d.fill(v)
	}
	d.keys("enter") // the suggested LAN prefix
	d.pump("the plan", func(m *Model) bool { return m.page == pageReview })
}

// assertTreeUnchanged fails the test for every file under root that
// differs from before or was not there.
func assertTreeUnchanged(t *testing.T, before map[string]string, root string) {
	t.Helper()
	after := tree(t, root)
	for p, v := range before {
		if after[p] != v {
			t.Errorf("%s changed: %q → %q", p, v, after[p])
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s left behind", p)
		}
	}
}

// tree lists the files under root with their contents.
func tree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			out[rel+"/"] = ""
			return nil
		}
		b, err := os.ReadFile(p)
		out[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// flowDriver runs the model against the fake Engine in a goroutine, the
// way Run does, with the Bridge sending into the driver.
func flowDriver(t *testing.T, f *fakeFlow) (*driver, func() (provision.Summary, error)) {
	d := &driver{t: t, engine: make(chan tea.Msg)}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	bridge := &Bridge{Send: func(m tea.Msg) {
		select {
		case d.engine <- m:
		case <-time.After(10 * time.Second):
		}
	}}
	type result struct {
		sum provision.Summary
		err error
	}
	res := make(chan result, 1)
	start := func() {
		d.starts++
		go func() {
			sum, err := f.newEngine(t)(bridge, bridge.Emit).Run(ctx)
			res <- result{sum, err}
			bridge.Send(engineDoneMsg{Summary: sum, Err: err})
		}()
	}
	d.m = newModel(colorprofile.ASCII, start, func() { d.cancelled = true; cancel() })
	d.send(tea.WindowSizeMsg{Width: 80, Height: 24})
	wait := func() (provision.Summary, error) {
		select {
		case r := <-res:
			return r.sum, r.err
		case <-time.After(10 * time.Second):
			t.Fatal("the engine did not finish")
		}
		return provision.Summary{}, nil
	}
	return d, wait
}

func TestFlowToDoneWithFakeEngine(t *testing.T) {
	f := newFakeFlow(t)
	f.reports = []precheck.Report{report(failPorts), report(warnICMP)}
	d, wait := flowDriver(t, f)
	d.keys("enter")
	d.pump("the precheck report", func(m *Model) bool { return m.precheckReply != nil })
	d.keys("enter") // blocked by the failure
	if d.m.precheckReply == nil {
		t.Fatal("continue was accepted despite a failed check")
	}
	d.keys("r")
	d.pump("the second precheck report", func(m *Model) bool { return m.precheckReply != nil })
	d.keys("c")
	fillToReview(d)
	d.keys("y")
	d.pump("the end of the install", func(m *Model) bool { return m.engineDone })
	sum, err := wait()
	if err != nil || !sum.OK || !sum.Changed {
		t.Fatalf("install: %+v, %v; want OK and changed", sum, err)
	}
	if f.reg.SN != "SN-A-0001" || f.reg.Key.Reveal() != "device-key" || f.reg.Advertise[0].String() != "198.19.1.0/24" {
		t.Errorf("the engine got %+v", f.reg)
	}
	if b, _ := os.ReadFile(filepath.Join(f.root, "proc/net/ipv4/ip_forward")); strings.TrimSpace(string(b)) != "1" {
		t.Errorf("ip_forward = %q; want 1", b)
	}
	if d.m.page != pageConnectivity || len(d.m.conn.Probes) != 3 {
		t.Fatalf("page %d with %d probes; want connectivity with 3", d.m.page, len(d.m.conn.Probes))
	}
	d.keys("enter")
	if f := d.frame(); !strings.Contains(f, "✓ Installed.") || !strings.Contains(f, "! warn connectivity") {
		t.Errorf("done page:\n%s", f)
	}
	d.keys("enter")
	if !d.quit {
		t.Error("no exit from the done page")
	}
}

func TestFlowQuitHalfWayLeavesHostUnchanged(t *testing.T) {
	f := newFakeFlow(t)
	f.block = provision.StepTunnel
	before := tree(t, f.root)
	d, wait := flowDriver(t, f)
	d.keys("enter")
	d.pump("the precheck report", func(m *Model) bool { return m.precheckReply != nil })
	d.keys("enter")
	fillToReview(d)
	d.keys("y")
	d.pump("the tunnel step", func(m *Model) bool {
		s, _ := m.apply.Steps.Get(string(provision.StepTunnel))
		return s.Message == "waiting for the first handshake"
	})
	if b, _ := os.ReadFile(filepath.Join(f.root, "etc/vcped.service")); len(b) == 0 {
		t.Fatal("the fake install made no change before the quit; the test would prove nothing")
	}
	d.keys("q", "y")
	d.pump("the rollback", func(m *Model) bool { return d.quit })
	sum, err := wait()
	if !errors.Is(err, context.Canceled) || !sum.RolledBack {
		t.Fatalf("install after quit: %+v, %v; want cancelled and rolled back", sum, err)
	}
	assertTreeUnchanged(t, before, f.root)
	if s, _ := d.m.apply.Steps.Get(string(provision.StepRollback)); s.State != components.OK {
		t.Errorf("rollback step %+v; want ok", s)
	}
}

func TestFlowDeclineChangesNothing(t *testing.T) {
	f := newFakeFlow(t)
	before := tree(t, f.root)
	d, wait := flowDriver(t, f)
	d.keys("enter")
	d.pump("the precheck report", func(m *Model) bool { return m.precheckReply != nil })
	d.keys("enter")
	fillToReview(d)
	d.keys("n")
	d.pump("the end", func(m *Model) bool { return m.engineDone })
	if _, err := wait(); !errors.Is(err, provision.ErrDeclined) {
		t.Fatalf("err %v; want ErrDeclined", err)
	}
	if ip := tree(t, f.root)["proc/net/ipv4/ip_forward"]; ip != before["proc/net/ipv4/ip_forward"] {
		t.Errorf("ip_forward changed to %q", ip)
	}
	if f := d.frame(); !strings.Contains(f, "the plan was declined; nothing was changed") {
		t.Errorf("done page:\n%s", f)
	}
}
