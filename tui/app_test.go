package tui

import (
	"errors"
	"fmt"
	"image/color"
	"net/netip"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"

	"github.com/openvcpe/vcpe/precheck"
	"github.com/openvcpe/vcpe/provision"
)

func TestWelcomeEnterStartsTheEngine(t *testing.T) {
	d := newDriver(t, 80, 24)
	if d.m.page != pageWelcome {
		t.Fatalf("first page %d; want welcome", d.m.page)
	}
	d.keys("enter")
	if d.m.page != pagePrecheck || d.starts != 1 {
		t.Fatalf("after enter: page %d, engine started %d times; want precheck, once", d.m.page, d.starts)
	}
	if f := d.frame(); !strings.Contains(f, "Checking the host") || !strings.Contains(f, "run  Kernel version") {
		t.Errorf("precheck page does not show running checks:\n%s", f)
	}
	d.keys("enter") // no report yet: nothing happens, the engine is not started twice
	if d.starts != 1 {
		t.Errorf("engine started %d times", d.starts)
	}
}

func TestWelcomeQuitExitsWithoutAsking(t *testing.T) {
	for _, k := range []string{"q", "ctrl+c"} {
		d := newDriver(t, 80, 24)
		d.keys(k)
		if !d.quit || d.cancelled || d.m.askQuit {
			t.Errorf("%s on welcome: quit=%v cancelled=%v asked=%v; want an immediate quit", k, d.quit, d.cancelled, d.m.askQuit)
		}
	}
}

// atPrecheck starts the engine and delivers a precheck prompt.
func atPrecheck(t *testing.T, rep precheck.Report) (*driver, chan provision.PrecheckDecision) {
	d := newDriver(t, 80, 24)
	d.keys("enter")
	reply := make(chan provision.PrecheckDecision, 1)
	d.send(precheckPromptMsg{Report: rep, reply: reply})
	return d, reply
}

func decision(t *testing.T, c chan provision.PrecheckDecision) (provision.PrecheckDecision, bool) {
	t.Helper()
	select {
	case v := <-c:
		return v, true
	default:
		return 0, false
	}
}

func TestPrecheckDecisions(t *testing.T) {
	for _, tc := range []struct {
		name string
		rep  precheck.Report
		key  string
		want provision.PrecheckDecision
		ok   bool
	}{
		{"all pass, continue", report(), "enter", provision.PrecheckContinue, true},
		{"warnings, continue despite them", report(warnICMP, skipWAN), "c", provision.PrecheckContinue, true},
		{"warnings, re-run", report(warnICMP), "r", provision.PrecheckRerun, true},
		{"warnings, abort", report(warnICMP), "a", provision.PrecheckAbort, true},
		{"failure blocks continuing", report(failPorts, warnICMP), "enter", 0, false},
		{"failure, re-run", report(failPorts), "r", provision.PrecheckRerun, true},
		{"failure, abort with esc", report(failPorts), "esc", provision.PrecheckAbort, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, reply := atPrecheck(t, tc.rep)
			d.keys(tc.key)
			got, ok := decision(t, reply)
			if ok != tc.ok || got != tc.want {
				t.Fatalf("decision %v (answered %v); want %v (answered %v)", got, ok, tc.want, tc.ok)
			}
			if !ok && !strings.Contains(d.frame(), "Cannot continue: 1 check(s) failed") {
				t.Errorf("blocked continue is not explained:\n%s", d.frame())
			}
			if tc.want == provision.PrecheckRerun {
				if f := d.frame(); !strings.Contains(f, "Checking the host") || !strings.Contains(f, "run  Kernel version") {
					t.Errorf("re-run does not reset the list:\n%s", f)
				}
				// The next report arrives and is answered on the same page.
				reply2 := make(chan provision.PrecheckDecision, 1)
				d.send(precheckPromptMsg{Report: report(), reply: reply2})
				d.keys("enter")
				if got, ok := decision(t, reply2); !ok || got != provision.PrecheckContinue {
					t.Errorf("after re-run: %v, %v; want continue", got, ok)
				}
			}
		})
	}
}

func TestPrecheckShowsEachResultWithItsFix(t *testing.T) {
	d, _ := atPrecheck(t, report(failPorts, warnICMP, skipWAN))
	f := d.frame()
	for _, want := range []string{
		"14 passed, 1 warning(s), 1 failed, 1 not checked", // 16 checks, one overrides pass... counted below
		"✗ FAIL Required UDP ports free and unfiltered",
		"fix: systemctl disable --now strongswan",
		"! warn ICMP echo allowed",
		"fix: sysctl -w net.ipv4.icmp_echo_ignore_all=0",
		"- skip Reach the controller",
	} {
		if want == "14 passed, 1 warning(s), 1 failed, 1 not checked" {
			c := report(failPorts, warnICMP, skipWAN).Counts()
			want = fmt.Sprintf("%d passed, 1 warning(s), 1 failed, 1 not checked", c[precheck.Pass])
		}
		if !strings.Contains(f, want) {
			t.Errorf("precheck page lacks %q:\n%s", want, f)
		}
	}
}

func TestPrecheckLiveResultsFromEvents(t *testing.T) {
	d := newDriver(t, 80, 24)
	d.keys("enter")
	d.send(engineEventMsg{provision.Event{Step: provision.StepPrecheck, Kind: provision.EventStarted, Message: "Checking the host"}})
	d.send(engineEventMsg{provision.Event{Step: provision.StepPrecheck, Kind: provision.EventProgress, Data: warnICMP}})
	f := d.frame()
	if !strings.Contains(f, "! warn ICMP echo allowed") || !strings.Contains(f, "run  Kernel version") {
		t.Errorf("a progress result is not shown live next to the running checks:\n%s", f)
	}
}

// atRegister delivers a registration prompt.
func atRegister(t *testing.T, s provision.Suggestions) (*driver, chan provision.Registration) {
	d, pre := atPrecheck(t, report())
	d.keys("enter")
	<-pre
	reply := make(chan provision.Registration, 1)
	d.send(registrationPromptMsg{Suggestions: s, reply: reply})
	if d.m.page != pageRegister {
		t.Fatalf("registration prompt shows page %d; want the form", d.m.page)
	}
	return d, reply
}

// fill types a value into the focused field and presses enter.
func (d *driver) fill(v string) {
	d.t.Helper()
	d.keys("ctrl+u")
	if v != "" {
		d.paste(v)
	}
	d.keys("enter")
}

func TestRegisterValidationErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fields []string // values typed, in field order; the last one is refused
		want   string
	}{
		{"controller missing", []string{""}, "--controller: missing; enter the controller's URL"},
		{"controller http", []string{"http://198.18.0.1:8443"}, `--controller: "http://198.18.0.1:8443": want https://HOST:PORT`},
		{"controller path", []string{"https://198.18.0.1:8443/api"}, `"https://198.18.0.1:8443/api": want https://HOST:PORT`},
		{"controller not a URL", []string{"198.18.0.1"}, `"198.18.0.1": want https://HOST:PORT`},
		{"fingerprint missing", []string{testController, ""}, "--controller-fingerprint: missing"},
		{"fingerprint short", []string{testController, "sha256:abcd"}, `--controller-fingerprint: "sha256:abcd": want sha256: followed by 64 hex digits`},
		{"sn missing", []string{testController, testFingerprint, ""}, "--sn: missing"},
		{"sn with space", []string{testController, testFingerprint, "SN 1"}, "is not a serial number"},
		{"sn too long", []string{testController, testFingerprint, strings.Repeat("S", 65)}, "at most 64 characters"},
		{"key missing", []string{testController, testFingerprint, "SN-A-0001", ""}, "key: missing; paste the key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, reply := atRegister(t, suggestions())
			for _, v := range tc.fields {
				d.fill(v)
			}
			if d.m.page != pageRegister {
				t.Fatalf("page %d after a bad value; want the form to stay", d.m.page)
			}
			f := d.frame()
			if !strings.Contains(strings.Join(strings.Fields(f), " "), tc.want) {
				t.Errorf("form does not show %q:\n%s", tc.want, f)
			}
			select {
			case r := <-reply:
				t.Errorf("registration answered with %+v despite the error", r)
			default:
			}
		})
	}
}

func TestRegisterThenRoutes(t *testing.T) {
	d, reply := atRegister(t, suggestions())
	d.fill(testController)
	d.fill("SHA256:" + strings.ToUpper(testFingerprint[7:])) // normalised
	d.fill("SN-A-0001")
	d.fill("s3cret-device-key")
	if strings.Contains(d.frame(), "s3cret") {
		t.Errorf("the key is shown:\n%s", d.frame())
	}
	if d.m.page != pageRoutes {
		t.Fatalf("page %d after the form; want routes", d.m.page)
	}
	if f := d.frame(); !strings.Contains(f, "198.19.1.0/24") || !strings.Contains(f, "WAN eth0 excluded") {
		t.Errorf("routes page does not suggest the LAN prefix:\n%s", f)
	}
	d.keys("enter") // accept the suggestion
	var reg provision.Registration
	select {
	case reg = <-reply:
	default:
		t.Fatalf("no registration after the routes page; screen:\n%s", d.frame())
	}
	want := provision.Registration{Controller: testController, Fingerprint: testFingerprint, SN: "SN-A-0001",
		Advertise: []netip.Prefix{netip.MustParsePrefix("198.19.1.0/24")}}
	if reg.Controller != want.Controller || reg.Fingerprint != want.Fingerprint || reg.SN != want.SN ||
		fmt.Sprint(reg.Advertise) != fmt.Sprint(want.Advertise) || reg.Key.Reveal() != "s3cret-device-key" {
		t.Errorf("registration %+v key %q; want %+v", reg, reg.Key.Reveal(), want)
	}
	if d.m.page != pageApply {
		t.Errorf("page %d after the routes; want apply (progress)", d.m.page)
	}
	if !d.m.reg.Key.IsZero() {
		t.Error("the model keeps the key after handing it to the Engine")
	}
}

func TestRegisterPrefilledFromGiven(t *testing.T) {
	s := suggestions()
	s.Given = provision.Registration{Controller: testController, Fingerprint: testFingerprint, SN: "SN-X", Key: provision.NewSecret("k"),
		Advertise: []netip.Prefix{netip.MustParsePrefix("198.19.3.0/24")}}
	d, reply := atRegister(t, s)
	d.keys("enter", "enter", "enter", "enter", "enter")
	reg := <-reply
	if reg.SN != "SN-X" || reg.Key.Reveal() != "k" || reg.Advertise[0].String() != "198.19.3.0/24" {
		t.Errorf("given values not kept: %+v", reg)
	}
}

func TestRoutesValidationErrors(t *testing.T) {
	for _, tc := range []struct{ value, want string }{
		{"198.19.1.0/24, 198.19.1.128/25", "overlap"},
		{"198.19.1.0/4", "the mask must be between /8 and /32"},
		{"198.19.1.0", "is not a prefix"},
		{"2001:db8::/64", "only IPv4"},
		{"198.19.1.1/24", "198.19.1.1/24 has host bits set; did you mean 198.19.1.0/24?"},
		{manyPrefixes(51), "51 prefixes; at most 50 may be advertised"},
	} {
		t.Run(tc.value, func(t *testing.T) {
			t.Parallel()
			d, reply := atRegister(t, suggestions())
			for _, v := range []string{testController, testFingerprint, "SN-A-0001", "key"} {
				d.fill(v)
			}
			d.fill(tc.value)
			f := strings.Join(strings.Fields(d.frame()), " ")
			if d.m.page != pageRoutes || !strings.Contains(f, tc.want) {
				t.Errorf("page %d; want routes showing %q:\n%s", d.m.page, tc.want, d.frame())
			}
			select {
			case r := <-reply:
				t.Errorf("registration answered with %v despite the error", r.Advertise)
			default:
			}
		})
	}
}

func atReview(t *testing.T) (*driver, chan bool) {
	d := newDriver(t, 80, 24)
	d.keys("enter")
	reply := make(chan bool, 1)
	d.send(confirmPromptMsg{Plan: testPlan(), reply: reply})
	if d.m.page != pageReview {
		t.Fatalf("confirm prompt shows page %d; want review", d.m.page)
	}
	return d, reply
}

func TestReviewAcceptAndDecline(t *testing.T) {
	for _, tc := range []struct {
		key    string
		accept bool
	}{{"y", true}, {"enter", true}, {"n", false}, {"esc", false}} {
		d, reply := atReview(t)
		d.keys(tc.key)
		select {
		case got := <-reply:
			if got != tc.accept {
				t.Errorf("%s: accept=%v; want %v", tc.key, got, tc.accept)
			}
		default:
			t.Fatalf("%s: no answer", tc.key)
		}
		if d.m.page != pageApply || d.m.applying != tc.accept {
			t.Errorf("%s: page %d applying %v; want apply, %v", tc.key, d.m.page, d.m.applying, tc.accept)
		}
	}
}

func TestReviewScrollsLongPlans(t *testing.T) {
	d, _ := atReview(t)
	f := d.frame()
	if !strings.Contains(f, "1. write /var/lib/vcpe/state.json (0600)") || !strings.Contains(f, "! ICMP echo is ignored") {
		t.Errorf("review page lacks the changes or warnings:\n%s", f)
	}
	d.send(tea.WindowSizeMsg{Width: 80, Height: 16})
	if !strings.Contains(d.frame(), "more below") {
		t.Fatalf("a plan taller than the screen has no scroll marker:\n%s", d.frame())
	}
	for range 20 {
		d.keys("down")
	}
	if f := d.frame(); !strings.Contains(f, "ip route add 198.19.100.0/24 via 198.19.1.1") {
		t.Errorf("scrolling down does not reach the LAN commands:\n%s", f)
	}
}

func TestApplyProgressAndConnectivityThenDone(t *testing.T) {
	d, reply := atReview(t)
	d.keys("y")
	<-reply
	for _, ev := range []provision.Event{
		{Step: provision.StepApply, Kind: provision.EventStarted, Message: "Apply the changes"},
		{Step: provision.StepApply, Kind: provision.EventProgress, Message: "set net.ipv4.ip_forward = 1"},
	} {
		d.send(engineEventMsg{ev})
	}
	if f := d.frame(); !strings.Contains(f, "Apply the changes") || !strings.Contains(f, "set net.ipv4.ip_forward = 1") {
		t.Errorf("apply page lacks the progress message:\n%s", f)
	}
	d.send(engineEventMsg{provision.Event{Step: provision.StepApply, Kind: provision.EventFinished, Status: provision.StatusOK, Message: "3 changes"}})
	if f := d.frame(); !strings.Contains(f, "✓ ok   Apply the changes") {
		t.Errorf("finished step not shown ok:\n%s", f)
	}
	d.send(engineEventMsg{provision.Event{Step: provision.StepConnectivity, Kind: provision.EventStarted, Message: "Test connectivity"}})
	if d.m.page != pageConnectivity {
		t.Fatalf("connectivity step shows page %d; want connectivity", d.m.page)
	}
	for _, p := range testProbes() {
		d.send(engineEventMsg{provision.Event{Step: provision.StepConnectivity, Kind: provision.EventProgress, Data: p}})
	}
	f := d.frame()
	for _, want := range []string{"✓ ok   hub", "loss 1/10 (10%)", "! warn cloud", "✗ FAIL site-b LAN", "××××", "jitter"} {
		if !strings.Contains(f, want) {
			t.Errorf("connectivity page lacks %q:\n%s", want, f)
		}
	}
	d.send(engineDoneMsg{Summary: provision.Summary{OK: true, Changed: true}})
	if d.m.page != pageConnectivity || !d.m.conn.Finished {
		t.Fatalf("after the engine: page %d; want the connectivity results kept until enter", d.m.page)
	}
	d.keys("enter")
	if d.m.page != pageDone {
		t.Fatalf("page %d; want done", d.m.page)
	}
	if f := d.frame(); !strings.Contains(f, "✓ Installed.") || !strings.Contains(f, "ip route add 198.19.2.0/24 via 198.19.1.1") {
		t.Errorf("done page lacks the summary or the LAN commands:\n%s", f)
	}
	d.keys("enter")
	if !d.quit {
		t.Error("enter on done does not exit")
	}
}

func TestEngineFailureShowsDoneWithRollback(t *testing.T) {
	d, reply := atReview(t)
	d.keys("y")
	<-reply
	d.send(engineEventMsg{provision.Event{Step: provision.StepTunnel, Kind: provision.EventFinished, Status: provision.StatusFailed, Message: "no handshake within 30s"}})
	d.send(engineEventMsg{provision.Event{Step: provision.StepRollback, Kind: provision.EventStarted, Message: "undoing 3 change(s)"}})
	d.send(engineEventMsg{provision.Event{Step: provision.StepRollback, Kind: provision.EventFinished, Status: provision.StatusOK, Message: "undid 3 change(s); the host is as it was"}})
	sum := provision.Summary{RolledBack: true, Error: "tunnel: no handshake within 30s", Steps: []provision.StepResult{
		{Step: provision.StepApply, Status: provision.StatusOK, Message: "3 changes"},
		{Step: provision.StepTunnel, Status: provision.StatusFailed, Message: "no handshake within 30s"}}}
	d.send(engineDoneMsg{Summary: sum, Err: errors.New("tunnel: no handshake within 30s")})
	if d.m.page != pageDone {
		t.Fatalf("page %d after a failure; want done", d.m.page)
	}
	f := d.frame()
	for _, want := range []string{"✗ The install did not complete: tunnel: no handshake", "Every change it made was undone", "✗ FAIL tunnel"} {
		if !strings.Contains(f, want) {
			t.Errorf("done page lacks %q:\n%s", want, f)
		}
	}
}

func TestQuitWhileRunningAsksThenRollsBack(t *testing.T) {
	d, reply := atReview(t)
	d.keys("y")
	<-reply
	d.keys("q")
	if !d.m.askQuit || d.quit || d.cancelled {
		t.Fatalf("q while applying: asked=%v quit=%v cancelled=%v; want a question only", d.m.askQuit, d.quit, d.cancelled)
	}
	if f := d.frame(); !strings.Contains(f, "every change made so far is undone. (y/n)") {
		t.Errorf("the question does not say changes are undone:\n%s", f)
	}
	d.keys("n")
	if d.m.askQuit || d.cancelled {
		t.Fatal("n does not dismiss the question")
	}
	d.keys("ctrl+c", "y")
	if !d.cancelled || d.quit || !d.m.quitting {
		t.Fatalf("after y: cancelled=%v quit=%v; want the engine cancelled and the wizard waiting", d.cancelled, d.quit)
	}
	d.send(engineEventMsg{provision.Event{Step: provision.StepRollback, Kind: provision.EventStarted, Message: "undoing 2 change(s)"}})
	if f := d.frame(); !strings.Contains(f, "Stopping: undoing the changes") || !strings.Contains(f, "Undo the changes") {
		t.Errorf("rollback progress not shown:\n%s", f)
	}
	d.keys("q") // keys do nothing while rolling back
	if d.quit {
		t.Fatal("quit before the rollback finished")
	}
	d.send(engineDoneMsg{Summary: provision.Summary{RolledBack: true}, Err: errors.New("canceled")})
	if !d.quit {
		t.Error("the wizard does not exit once the rollback finished")
	}
}

func TestQuitBeforeChangesSaysNothingChanged(t *testing.T) {
	d, _ := atPrecheck(t, report())
	d.keys("q")
	if f := d.frame(); !strings.Contains(f, "nothing has been changed yet") {
		t.Errorf("question before apply:\n%s", f)
	}
	d.keys("ctrl+c") // a second ctrl+c confirms
	if !d.cancelled {
		t.Error("engine not cancelled")
	}
}

func TestSignalQuitIsForcedButWaitsForRollback(t *testing.T) {
	d, reply := atReview(t)
	d.keys("y")
	<-reply
	msg := quitFilter(d.m, tea.InterruptMsg{})
	d.send(msg)
	if !d.cancelled || d.quit || d.m.askQuit {
		t.Fatalf("SIGINT: cancelled=%v quit=%v asked=%v; want cancelled without asking, not yet quit", d.cancelled, d.quit, d.m.askQuit)
	}
	if _, ok := quitFilter(d.m, tea.QuitMsg{}).(quitRequestMsg); !ok {
		t.Error("a QuitMsg the model did not issue is let through")
	}
	d.send(engineDoneMsg{})
	if !d.quit {
		t.Fatal("no quit after the engine finished")
	}
	if _, ok := quitFilter(d.m, tea.QuitMsg{}).(tea.QuitMsg); !ok {
		t.Error("the model's own quit is filtered")
	}
}

func TestFormKeysDoNotQuit(t *testing.T) {
	d, _ := atRegister(t, suggestions())
	d.keys("q")
	if d.m.askQuit {
		t.Fatal("typing q in the form asks to quit")
	}
	d.keys("ctrl+c")
	if !d.m.askQuit {
		t.Fatal("ctrl+c in the form does not ask to quit")
	}
}

func TestTooSmallTerminal(t *testing.T) {
	d := newDriver(t, 40, 10)
	if f := strings.Join(strings.Fields(d.frame()), " "); !strings.Contains(f, "needs at least 50×14") {
		t.Errorf("small terminal:\n%s", f)
	}
	d.send(tea.WindowSizeMsg{Width: 80, Height: 24})
	if f := d.frame(); !strings.Contains(f, "Turn this host into a vCPE") {
		t.Errorf("after resize:\n%s", f)
	}
}

func TestLightAndDarkBackgroundsSameWords(t *testing.T) {
	render := func(bg color.Color) (string, *Model) {
		d, _ := atPrecheck(t, report(failPorts, warnICMP))
		d.m.profile = colorprofile.TrueColor
		d.send(tea.BackgroundColorMsg{Color: bg})
		return d.m.render(), d.m
	}
	dark, md := render(color.Black)
	light, ml := render(color.White)
	if !md.isDark || ml.isDark {
		t.Fatalf("isDark: black %v, white %v", md.isDark, ml.isDark)
	}
	if dark == light {
		t.Error("the same colours on a light and a dark background")
	}
	if ansi.Strip(dark) != ansi.Strip(light) {
		t.Error("the words differ between light and dark backgrounds")
	}
	noColour, _ := atPrecheck(t, report(failPorts, warnICMP))
	if f := noColour.m.render(); strings.Contains(f, "38;") || strings.Contains(f, "48;") {
		t.Errorf("colour codes without a colour profile: %q", f)
	}
}

func TestResizeKeepsEveryFrameInside(t *testing.T) {
	d, _ := atRegister(t, suggestions())
	d.fill("http://wrong")
	for _, sz := range [][2]int{{120, 40}, {80, 24}, {60, 16}, {100, 30}} {
		d.send(tea.WindowSizeMsg{Width: sz[0], Height: sz[1]})
		f := d.frame()
		checkFrame(t, f, sz[0], sz[1])
		if !strings.Contains(f, "Controller URL") || !strings.Contains(f, "ctrl+c quit") {
			t.Errorf("at %dx%d the form or its help is cut off:\n%s", sz[0], sz[1], f)
		}
	}
	d2, _ := atReview(t)
	for _, sz := range [][2]int{{120, 40}, {50, 14}, {80, 24}} {
		d2.send(tea.WindowSizeMsg{Width: sz[0], Height: sz[1]})
		checkFrame(t, d2.frame(), sz[0], sz[1])
	}
}

// TestFormKeysRightAfterEnterGoToTheNextField: keys that arrive before any
// command ran (typed fast, pasted) land in the next field, never in the one
// just accepted; keys after the last field never reach the device key.
func TestFormKeysRightAfterEnterGoToTheNextField(t *testing.T) {
	d, reply := atRegister(t, suggestions())
	var held []tea.Cmd
	raw := func(ks ...string) { // Update only: commands are held back
		for _, k := range ks {
			_, cmd := d.m.Update(keyMsg(k))
			held = append(held, cmd)
		}
	}
	d.paste(testController)
	raw("enter", "s")
	if d.m.register.Controller != testController || d.m.register.Fingerprint != "s" {
		t.Fatalf("controller %q fingerprint %q; want the s in the fingerprint", d.m.register.Controller, d.m.register.Fingerprint)
	}
	d.fill(testFingerprint)
	d.fill("SN-A-0001")
	d.paste("device-key")
	raw("enter", "x", "y")
	if d.m.register.Key != "device-key" && d.m.register.Key != "" {
		t.Fatalf("keys after the last field reached the device key: %q", d.m.register.Key)
	}
	for _, c := range held[len(held)-3:] {
		d.run(c)
	}
	if d.m.page != pageRoutes {
		t.Fatalf("page %d; want routes", d.m.page)
	}
	d.keys("enter")
	if r := <-reply; r.Key.Reveal() != "device-key" {
		t.Errorf("key %q; want device-key", r.Key.Reveal())
	}
}

func TestConnectivityAcceptsBareDiagResults(t *testing.T) {
	d, reply := atReview(t)
	d.keys("y")
	<-reply
	r := testProbes()[1].Result
	d.send(engineEventMsg{provision.Event{Step: provision.StepConnectivity, Kind: provision.EventProgress, Data: r}})
	d.send(engineEventMsg{provision.Event{Step: provision.StepConnectivity, Kind: provision.EventProgress, Data: &r}})
	if d.m.page != pageConnectivity || len(d.m.conn.Probes) != 1 {
		t.Fatalf("page %d, %d probes; want connectivity with one series (the same target twice)", d.m.page, len(d.m.conn.Probes))
	}
	if f := d.frame(); !strings.Contains(f, "! warn 198.19.100.10:12345 udp") || !strings.Contains(f, "loss 1/10 (10%)") || strings.Count(f, "198.19.100.10:12345 udp") != 1 {
		t.Errorf("a bare diag.Result is not shown, with its target once:\n%s", f)
	}
	// A labelled one (the install's per-prefix targets): label and
	// target, each once.
	r.Target = netip.MustParseAddr("198.19.2.1")
	d.send(engineEventMsg{provision.Event{Step: provision.StepConnectivity, Kind: provision.EventProgress, Message: "learned 198.19.2.0/24 (device SN-B)", Data: r}})
	if f := d.frame(); strings.Count(f, "learned 198.19.2.0/24 (device SN-B)") != 1 || strings.Count(f, "198.19.2.1:12345 udp") != 1 {
		t.Errorf("a labelled series is not shown with its label and target once each:\n%s", f)
	}
}

func manyPrefixes(n int) string {
	var ps []string
	for i := range n {
		ps = append(ps, fmt.Sprintf("198.19.%d.0/24", i))
	}
	return strings.Join(ps, ",")
}
