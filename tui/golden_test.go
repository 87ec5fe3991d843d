package tui

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openvcpe/vcpe/precheck"
	"github.com/openvcpe/vcpe/provision"
)

// TestGoldenFrames renders every page at 80×24 and 120×40. Regenerate
// with `go test ./tui -run TestGoldenFrames -update` and review the diff.
func TestGoldenFrames(t *testing.T) {
	pagesAt := []struct {
		name  string
		setup func(d *driver)
	}{
		{"welcome", func(d *driver) {}},
		{"precheck-running", func(d *driver) { d.keys("enter") }},
		{"precheck-report", func(d *driver) {
			d.keys("enter")
			d.send(precheckPromptMsg{Report: report(failPorts, warnICMP, skipWAN), reply: make(chan provision.PrecheckDecision, 1)})
		}},
		{"register-error", func(d *driver) {
			d.keys("enter")
			d.send(registrationPromptMsg{Suggestions: suggestions(), reply: make(chan provision.Registration, 1)})
			d.fill(testController)
			d.fill("sha256:abcd")
		}},
		{"routes", func(d *driver) {
			d.keys("enter")
			d.send(registrationPromptMsg{Suggestions: suggestions(), reply: make(chan provision.Registration, 1)})
			for _, v := range []string{testController, testFingerprint, "SN-A-0001", "key"} {
				d.fill(v)
			}
		}},
		{"interfaces", func(d *driver) {
			d.keys("enter")
			d.send(registrationPromptMsg{Suggestions: hostSuggestions(), reply: make(chan provision.Registration, 1)})
			for _, v := range []string{testController, testFingerprint, "SN-A-0002", "key"} {
				d.fill(v)
			}
			d.keys("enter")
			d.fill("eth7") // an interface that does not exist
		}},
		{"attach-standby", func(d *driver) {
			d.keys("enter")
			d.send(attachPromptMsg{Question: standbyQuestion(), reply: make(chan provision.Attach, 1)})
		}},
		{"attach-error", func(d *driver) {
			q := standbyQuestion()
			q.ActiveSN, q.PeerGateway, q.Role = "", netip.Prefix{}, "active"
			d.keys("enter")
			d.send(attachPromptMsg{Question: q, reply: make(chan provision.Attach, 1)})
			d.keys("up", "enter")
			d.fill("198.19.9.254/24") // outside the LAN prefix
		}},
		{"lockout", func(d *driver) {
			d.keys("enter")
			d.send(lockoutPromptMsg{Err: testLockout(), reply: make(chan bool, 1)})
		}},
		{"review-long", func(d *driver) {
			p := testPlan()
			p.Warnings = []string{"forced: " + (&provision.LockoutError{Route: testLockout().Route, Protected: testLockout().Protected}).Error()}
			d.keys("enter")
			d.send(confirmPromptMsg{Plan: p, reply: make(chan bool, 1)})
		}},
		{"done-save", func(d *driver) {
			d.keys("enter")
			d.send(registrationPromptMsg{Suggestions: suggestions(), reply: make(chan provision.Registration, 1)})
			for _, v := range []string{testController, testFingerprint, "SN-A-0002", "key"} {
				d.fill(v)
			}
			d.keys("enter")
			d.send(confirmPromptMsg{Plan: testPlan(), reply: make(chan bool, 1)})
			d.keys("y")
			d.send(engineDoneMsg{Summary: provision.Summary{OK: true, Changed: true, Steps: []provision.StepResult{
				{Step: provision.StepRegister, Status: provision.StatusOK, Message: "registered SN-A-0002"},
				{Step: provision.StepTunnel, Status: provision.StatusOK, Message: "handshake with 198.18.0.1:4500"},
			}}})
			d.keys("s")
		}},
		{"review", func(d *driver) {
			d.keys("enter")
			d.send(confirmPromptMsg{Plan: testPlan(), reply: make(chan bool, 1)})
		}},
		{"apply", func(d *driver) {
			d.keys("enter")
			d.send(confirmPromptMsg{Plan: testPlan(), reply: make(chan bool, 1)})
			d.keys("y")
			for _, ev := range []provision.Event{
				{Step: provision.StepRegister, Kind: provision.EventFinished, Status: provision.StatusOK, Message: "registered SN-A-0001; overlay 198.18.64.11/18"},
				{Step: provision.StepPlan, Kind: provision.EventFinished, Status: provision.StatusOK, Message: "3 changes"},
				{Step: provision.StepReview, Kind: provision.EventFinished, Status: provision.StatusOK, Message: "accepted"},
				{Step: provision.StepApply, Kind: provision.EventFinished, Status: provision.StatusOK, Message: "3 changes made"},
				{Step: provision.StepStart, Kind: provision.EventStarted},
				{Step: provision.StepStart, Kind: provision.EventProgress, Message: "systemctl start vcped.service"},
			} {
				d.send(engineEventMsg{ev})
			}
		}},
		{"quit-question", func(d *driver) {
			d.keys("enter")
			d.send(confirmPromptMsg{Plan: testPlan(), reply: make(chan bool, 1)})
			d.keys("y", "q")
		}},
		{"connectivity", func(d *driver) {
			d.keys("enter")
			d.send(confirmPromptMsg{Plan: testPlan(), reply: make(chan bool, 1)})
			d.keys("y")
			for _, p := range testProbes() {
				d.send(engineEventMsg{provision.Event{Step: provision.StepConnectivity, Kind: provision.EventProgress, Data: p}})
			}
		}},
		{"done-ok", func(d *driver) {
			d.keys("enter")
			d.send(confirmPromptMsg{Plan: testPlan(), reply: make(chan bool, 1)})
			d.keys("y")
			d.send(engineDoneMsg{Summary: provision.Summary{OK: true, Changed: true, Steps: []provision.StepResult{
				{Step: provision.StepPrecheck, Status: provision.StatusWarn, Message: "1 warning"},
				{Step: provision.StepRegister, Status: provision.StatusOK, Message: "registered SN-A-0001"},
				{Step: provision.StepApply, Status: provision.StatusOK, Message: "3 changes made"},
				{Step: provision.StepTunnel, Status: provision.StatusOK, Message: "handshake with 198.18.0.1:4500"},
			}}})
		}},
		{"done-failed", func(d *driver) {
			d.keys("enter")
			d.send(engineDoneMsg{Summary: provision.Summary{RolledBack: true, Error: "register: the controller refused SN-A-0001: unknown serial number",
				Steps: []provision.StepResult{{Step: provision.StepRegister, Status: provision.StatusFailed, Message: "the controller refused SN-A-0001: unknown serial number"}}},
				Err: errors.New("register: the controller refused SN-A-0001: unknown serial number")})
		}},
	}
	for _, size := range [][2]int{{80, 24}, {120, 40}} {
		for _, p := range pagesAt {
			name := fmt.Sprintf("%s_%dx%d", p.name, size[0], size[1])
			t.Run(name, func(t *testing.T) {
				d := newDriver(t, size[0], size[1])
				p.setup(d)
				f := d.frame()
				checkFrame(t, f, size[0], size[1])
				golden(t, name, f)
			})
		}
	}
}

// TestGoldenPrecheckFromSnapshot renders the precheck page for a real
// report: the rocky9-firewalled fixture snapshot, judged by the precheck
// catalogue, scrolled to show every problem and fix.
func TestGoldenPrecheckFromSnapshot(t *testing.T) {
	snap, err := precheck.Load(filepath.Join("..", "testdata", "snapshots", "rocky9-firewalled"))
	if err != nil {
		t.Fatal(err)
	}
	rep := precheck.Run(context.Background(), snap, precheck.Options{})
	d := newDriver(t, 80, 24)
	d.keys("enter")
	d.send(precheckPromptMsg{Report: rep, reply: make(chan provision.PrecheckDecision, 1)})
	var frames []string
	for range 3 {
		f := d.frame()
		checkFrame(t, f, 80, 24)
		frames = append(frames, f)
		d.keys("pgdown")
	}
	golden(t, "precheck-rocky9-firewalled_80x24", strings.Join(frames, "\n\n---- pgdown ----\n\n"))
}
