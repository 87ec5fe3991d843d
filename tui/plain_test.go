package tui

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/openvcpe/vcpe/provision"
)

// TestPlainRendererEventSequence: the line-by-line output of an install's
// events, compared with testdata/plain-events.golden.
func TestPlainRendererEventSequence(t *testing.T) {
	var out bytes.Buffer
	p := &Plain{W: &out}
	evs := []provision.Event{
		{Step: provision.StepPrecheck, Kind: provision.EventStarted, Message: "Check the host"},
		{Step: provision.StepPrecheck, Kind: provision.EventProgress, Message: "ICMP echo allowed", Data: warnICMP},
		{Step: provision.StepPrecheck, Kind: provision.EventProgress, Message: "Required UDP ports", Data: &failPorts},
		{Step: provision.StepPrecheck, Kind: provision.EventFinished, Status: provision.StatusWarn, Message: "1 warning"},
		{Step: provision.StepApply, Kind: provision.EventStarted},
		{Step: provision.StepApply, Kind: provision.EventFinished, Status: provision.StatusOK, Message: "3 changes made"},
		{Step: provision.StepConnectivity, Kind: provision.EventProgress, Message: "probing", Data: testProbes()},
		{Step: provision.StepConnectivity, Kind: provision.EventFinished, Status: provision.StatusWarn, Message: "1 of 3 targets unreachable"},
		{Step: provision.StepRollback, Kind: provision.EventFinished, Status: provision.StatusOK, Message: "undid 3 change(s); the host is as it was"},
	}
	for _, ev := range evs {
		p.Emit(ev)
	}
	if strings.Contains(out.String(), "\x1b") {
		t.Errorf("plain output has escape sequences:\n%q", out.String())
	}
	golden(t, "plain-events", out.String())
}

// TestPlainPromptsValidateAndReask runs a whole install in plain mode with
// scripted answers, some of them wrong.
func TestPlainPromptsValidateAndReask(t *testing.T) {
	f := newFakeFlow(t)
	in := strings.Join([]string{
		"x",                      // not an answer: asked again
		"c",                      // continue despite the warning
		"http://198.18.0.1:8443", // refused: not https
		testController,
		"sha256:abcd", // refused
		testFingerprint,
		"SN 1", // refused
		"SN-A-0001",
		"", // key missing: refused
		"device-key",
		"198.19.1.0/24, 198.19.1.128/25", // overlap: refused
		"",                               // the suggestion
		"maybe",                          // asked again
		"y",
	}, "\n") + "\n"
	var out bytes.Buffer
	sum, err := RunPlain(context.Background(), f.newEngine(t), &out, strings.NewReader(in), nil)
	if err != nil || !sum.OK {
		t.Fatalf("RunPlain = %+v, %v; output:\n%s", sum, err, out.String())
	}
	o := out.String()
	for _, want := range []string{
		`--controller: "http://198.18.0.1:8443": want https://HOST:PORT`,
		`--controller-fingerprint: "sha256:abcd": want sha256: followed by 64 hex digits`,
		"--sn: \"SN 1\" is not a serial number",
		"key: missing; paste the key issued with the SN",
		"--advertise: 198.19.1.128/25 overlaps 198.19.1.0/24",
		"LAN prefixes to advertise [198.19.1.0/24]: ",
		"Changes to this host (3, in order)",
		"✓ Installed.",
	} {
		if !strings.Contains(o, want) {
			t.Errorf("plain output lacks %q", want)
		}
	}
	if f.reg.Advertise[0].String() != "198.19.1.0/24" || f.reg.Key.Reveal() != "device-key" {
		t.Errorf("engine got %+v", f.reg)
	}
}

func TestPlainInputEndsBeforeAnswer(t *testing.T) {
	f := newFakeFlow(t)
	var out bytes.Buffer
	before := tree(t, f.root)
	_, err := RunPlain(context.Background(), f.newEngine(t), &out, strings.NewReader("c\n"+testController+"\n"), nil)
	if !errors.Is(err, errEOF) {
		t.Fatalf("err %v; want the input-ended error", err)
	}
	assertTreeUnchanged(t, before, f.root)
}

func TestPlainPromptUnblocksOnCancel(t *testing.T) {
	r, w := ioPipe(t)
	defer w.Close()
	l := &LinePrompter{Out: &Plain{W: &bytes.Buffer{}}, R: newReader(r)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Confirm(ctx, testPlan()) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Confirm = %v; want Canceled", err)
	}
}

// TestPlainAsksInterfacesAttachAndLockout: the line-by-line wizard asks
// what the full-screen one does, with the same checks.
func TestPlainAsksInterfacesAttachAndLockout(t *testing.T) {
	in := strings.Join([]string{
		testController, testFingerprint, "SN-A-0002", "key", "", // registration, suggested prefix
		"eth7", "", // no such WAN: refused; then the default route's
		"eth0", "lan0", // LAN = WAN refused; then lan0
		"",                                       // two devices: yes (proposed)
		"198.19.9.254/24", "198.19.1.253/24", "", // outside the LAN, not the peer's: refused; then the peer's
		"198.19.1.10",
		"yes please", "force", // lockout: not an answer, then force
	}, "\n") + "\n"
	var out bytes.Buffer
	l := &LinePrompter{Out: &Plain{W: &out}, R: newReader(strings.NewReader(in))}
	ctx := context.Background()
	reg, err := l.Registration(ctx, hostSuggestions())
	if err != nil || reg.WANInterface != "eth0" || reg.LANInterface != "lan0" {
		t.Fatalf("registration %+v, %v; want eth0, lan0\n%s", reg, err, out.String())
	}
	a, err := l.Attach(ctx, standbyQuestion())
	if err != nil || a.LANGateway.String() != "198.19.1.254/24" || len(a.LANTargets) != 1 {
		t.Fatalf("attach %+v, %v\n%s", a, err, out.String())
	}
	e := testLockout()
	force, err := l.OverrideLockout(ctx, &e)
	if err != nil || !force {
		t.Fatalf("lockout %v, %v", force, err)
	}
	o := out.String()
	for _, want := range []string{
		"eth0   198.18.0.11/24  (default route)",
		`--wan-if: no interface "eth7" on this host`,
		"--lan-if: eth0 is the WAN interface",
		"site-a already has an active device, SN-A-0001",
		"--lan-gateway: 198.19.9.254 is outside the LAN prefixes 198.19.1.0/24",
		"the other device of site-a uses 198.19.1.254/24",
		"route:     198.18.0.0/16",
	} {
		if !strings.Contains(o, want) {
			t.Errorf("plain output lacks %q:\n%s", want, o)
		}
	}
}
