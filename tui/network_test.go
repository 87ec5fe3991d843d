package tui

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"

	"github.com/openvcpe/vcpe/provision"
	"github.com/openvcpe/vcpe/tui/pages"
)

// atInterfaces fills the registration and routes pages with hostSuggestions.
func atInterfaces(t *testing.T) (*driver, chan provision.Registration) {
	t.Helper()
	d, reply := atRegister(t, hostSuggestions())
	for _, v := range []string{testController, testFingerprint, "SN-A-0002", "key"} {
		d.fill(v)
	}
	d.keys("enter") // the suggested prefix
	if d.m.page != pageInterfaces {
		t.Fatalf("page %d after routes; want interfaces:\n%s", d.m.page, d.frame())
	}
	return d, reply
}

func flat(s string) string { return strings.Join(strings.Fields(s), " ") }

func TestInterfacesListedAndChosen(t *testing.T) {
	d, reply := atInterfaces(t)
	f := d.frame()
	for _, w := range []string{"eth0   198.18.0.11/24  (default route)", "lan0   198.19.1.1/24", "mgmt0  198.18.200.5/24, 198.18.201.5/24", "page 4/8"} {
		if !strings.Contains(f, w) {
			t.Errorf("interfaces page lacks %q:\n%s", w, f)
		}
	}
	d.keys("enter") // eth0, the default route's, prefilled
	d.fill("lan0")
	select {
	case reg := <-reply:
		if reg.WANInterface != "eth0" || reg.LANInterface != "lan0" || reg.Key.Reveal() != "key" {
			t.Errorf("registration WAN %q LAN %q; want eth0, lan0 and the key", reg.WANInterface, reg.LANInterface)
		}
	default:
		t.Fatalf("no registration after the interfaces page:\n%s", d.frame())
	}
	if d.m.page != pageApply || !d.m.reg.Key.IsZero() {
		t.Errorf("page %d, key kept %v; want apply and the key dropped", d.m.page, !d.m.reg.Key.IsZero())
	}
}

func TestInterfacesValidationErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fields []string
		want   string
	}{
		{"WAN does not exist", []string{"eth7"}, `--wan-if: no interface "eth7" on this host; pick one of eth0, lan0, mgmt0`},
		{"LAN does not exist", []string{"eth0", "lan9"}, `--lan-if: no interface "lan9" on this host`},
		{"LAN is the WAN", []string{"eth0", "eth0"}, "--lan-if: eth0 is the WAN interface"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, reply := atInterfaces(t)
			for _, v := range tc.fields {
				d.fill(v)
			}
			if f := flat(d.frame()); d.m.page != pageInterfaces || !strings.Contains(f, tc.want) {
				t.Errorf("page %d; want interfaces showing %q:\n%s", d.m.page, tc.want, d.frame())
			}
			select {
			case r := <-reply:
				t.Errorf("registration answered (%q, %q) despite the error", r.WANInterface, r.LANInterface)
			default:
			}
		})
	}
}

// atAttach shows the multi-attach page for q.
func atAttach(t *testing.T, q provision.AttachQuestion) (*driver, chan provision.Attach) {
	t.Helper()
	d := newDriver(t, 80, 24)
	d.keys("enter")
	reply := make(chan provision.Attach, 1)
	d.send(attachPromptMsg{Question: q, reply: reply})
	if d.m.page != pageAttach {
		t.Fatalf("attach prompt shows page %d", d.m.page)
	}
	return d, reply
}

func TestAttachProposesTheActiveDevicesGateway(t *testing.T) {
	d, reply := atAttach(t, standbyQuestion())
	f := flat(d.frame())
	for _, w := range []string{"site-a already has an active device, SN-A-0001", "198.19.1.254/24", "keep the same gateway"} {
		if !strings.Contains(f, w) {
			t.Errorf("attach page lacks %q:\n%s", w, d.frame())
		}
	}
	d.keys("enter", "enter", "enter") // yes, the proposed gateway, the given target
	select {
	case a := <-reply:
		if a.LANGateway.String() != "198.19.1.254/24" || len(a.LANTargets) != 1 || a.LANTargets[0].String() != "198.19.1.10" {
			t.Errorf("attach answers %+v; want the peer's gateway and the target", a)
		}
	default:
		t.Fatalf("no answer after the attach page:\n%s", d.frame())
	}
	if d.m.reg.LANGateway.String() != "198.19.1.254/24" {
		t.Errorf("the model does not keep the gateway for the answers file: %v", d.m.reg.LANGateway)
	}
}

func TestAttachValidationErrors(t *testing.T) {
	single := standbyQuestion()
	single.ActiveSN, single.PeerGateway, single.Role = "", netip.Prefix{}, "active"
	for _, tc := range []struct {
		name   string
		q      provision.AttachQuestion
		fields []string
		want   string
	}{
		{"gateway outside the LAN prefix", single, []string{"198.19.9.254/24"}, "--lan-gateway: 198.19.9.254 is outside the LAN prefixes 198.19.1.0/24"},
		{"gateway without length", single, []string{"198.19.1.254"}, "want the gateway address with the LAN's prefix length"},
		{"gateway missing", single, []string{""}, "--lan-gateway: missing"},
		{"gateway not the other device's", standbyQuestion(), []string{"198.19.1.253/24"}, "the other device of site-a uses 198.19.1.254/24; both devices must share the same gateway"},
		{"target not an address", single, []string{"198.19.1.254/24", "lan-a"}, `--lan-target: "lan-a": want an IPv4 address`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, reply := atAttach(t, tc.q)
			if single := tc.q.ActiveSN == ""; single {
				d.keys("up") // this site has two devices
			}
			d.keys("enter")
			for _, v := range tc.fields {
				d.fill(v)
			}
			if f := flat(d.frame()); d.m.page != pageAttach || !strings.Contains(f, tc.want) {
				t.Errorf("page %d; want attach showing %q:\n%s", d.m.page, tc.want, d.frame())
			}
			select {
			case a := <-reply:
				t.Errorf("attach answered %+v despite the error", a)
			default:
			}
		})
	}
}

func TestAttachOneDeviceAnswersNone(t *testing.T) {
	q := standbyQuestion()
	q.ActiveSN, q.PeerGateway, q.Role, q.Given = "", netip.Prefix{}, "active", provision.Registration{}
	d, reply := atAttach(t, q)
	if !strings.Contains(flat(d.frame()), "site-a has room for 2 devices") {
		t.Errorf("attach page does not say the instance has two slots:\n%s", d.frame())
	}
	d.keys("enter", "enter", "enter") // no (the default), then skip both fields
	select {
	case a := <-reply:
		if a.LANGateway.IsValid() || len(a.LANTargets) != 0 {
			t.Errorf("one device: %+v; want no multi-attach", a)
		}
	default:
		t.Fatalf("no answer:\n%s", d.frame())
	}
}

func TestLockoutOverrideAndDecline(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want bool
	}{{"f", true}, {"n", false}, {"y", false}} {
		d := newDriver(t, 80, 24)
		d.keys("enter")
		reply := make(chan bool, 1)
		d.send(lockoutPromptMsg{Err: testLockout(), reply: reply})
		f := flat(d.frame())
		for _, w := range []string{"route: 198.18.0.0/16", "captures: 198.18.0.5 (the SSH client (SSH_CONNECTION))", "cut this host off", "page 5/8"} {
			if !strings.Contains(f, w) {
				t.Errorf("lockout page lacks %q:\n%s", w, d.frame())
			}
		}
		d.keys(tc.key)
		select {
		case got := <-reply:
			if got != tc.want {
				t.Errorf("key %s: override %v; want %v", tc.key, got, tc.want)
			}
		default:
			if tc.key != "y" {
				t.Errorf("key %s: no answer", tc.key)
			}
		}
	}
}

// TestDoneSavesTheAnswers: after an install the done page writes the
// answers (0600) as a --config file that loads back, without the key.
func TestDoneSavesTheAnswers(t *testing.T) {
	d, reply := atInterfaces(t)
	d.keys("enter", "enter")
	<-reply
	q := standbyQuestion()
	areply := make(chan provision.Attach, 1)
	d.send(attachPromptMsg{Question: q, reply: areply})
	d.keys("enter", "enter", "enter")
	<-areply
	plan := testPlan()
	d.send(confirmPromptMsg{Plan: plan, reply: make(chan bool, 1)})
	d.keys("y")
	d.send(engineDoneMsg{Summary: provision.Summary{OK: true, Changed: true}})
	if d.m.page != pageDone || !strings.Contains(d.frame(), "press s to save") {
		t.Fatalf("done page does not offer to save:\n%s", d.frame())
	}
	path := filepath.Join(t.TempDir(), "site.yaml")
	d.keys("s")
	if !d.m.formPage() {
		t.Error("q would quit while a path is typed")
	}
	d.fill(path)
	if f := flat(d.frame()); !strings.Contains(f, "saved to "+path) || !strings.Contains(f, "--config "+path) {
		t.Fatalf("done page does not say where it saved:\n%s", d.frame())
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("answers file: %v, mode %v; want 0600", err, fi)
	}
	b, _ := os.ReadFile(path)
	if strings.Contains(string(b), "key\n") || strings.Contains(string(b), ": key") {
		t.Errorf("the key is in the answers file:\n%s", b)
	}
	in, err := provision.LoadInstallConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	want := provision.InstallInput{Controller: testController, ControllerFingerprint: testFingerprint, SN: "SN-A-0002",
		Advertise: []string{"198.19.1.0/24"}, WANInterface: "eth0", LANInterface: "lan0", StateDir: plan.StateDir,
		LANGateway: "198.19.1.254/24", LANTargets: []string{"198.19.1.10"}}
	if !reflect.DeepEqual(in, want) {
		t.Errorf("saved %+v\nwant  %+v", in, want)
	}
	d.keys("enter")
	if !d.quit {
		t.Error("enter after saving does not exit")
	}
}

// TestWrappedItemsKeepTheirIndent: a long warning and a long change wrap
// under their own text at every width from 80 columns up.
func TestWrappedItemsKeepTheirIndent(t *testing.T) {
	p := testPlan()
	p.Warnings = []string{"route 198.18.0.0/16 would send the SSH client (SSH_CONNECTION) (198.18.0.5) into the tunnel and cut it off; remove 198.18.0.0/16 from the advertised or learned prefixes, or pass --force if the path really is meant to move"}
	p.Changes = []string{"start /usr/local/libexec/vcpe/vcped as a detached daemon (pid file /var/lib/vcpe/a/rather/long/state/directory/vcped.pid) and wait for its control socket"}
	for width := 80; width <= 240; width += 5 {
		lines := pages.PlanLines(p, width, func(s string) string { return s })
		for _, item := range []struct{ first, indent string }{{"  ! ", "    "}, {"  1. ", "     "}} {
			start := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, item.first) })
			if start < 0 {
				t.Fatalf("width %d: no item %q in\n%s", width, item.first, strings.Join(lines, "\n"))
			}
			n := 1
			for _, l := range lines[start+1:] {
				if l == "" {
					break
				}
				n++
				if !strings.HasPrefix(l, item.indent) || strings.HasPrefix(l, item.indent+" ") {
					t.Errorf("width %d: continuation of %q is %q; want it under the item's text", width, item.first, l)
				}
			}
			if width < 150 && n < 2 {
				t.Errorf("width %d: item %q did not wrap; the test proves nothing", width, item.first)
			}
		}
		for _, l := range lines {
			if ansi.StringWidth(l) > width {
				t.Errorf("width %d: line %d wide: %q", width, ansi.StringWidth(l), l)
			}
		}
	}
}

// TestDoneStepsWrapUnderTheirMessage: a long step message continues under
// the message column, not at column 0.
func TestDoneStepsWrapUnderTheirMessage(t *testing.T) {
	d := newDriver(t, 80, 24)
	sum := provision.Summary{OK: true, Steps: []provision.StepResult{{Step: provision.StepPlan, Status: provision.StatusOK,
		Message: "start /tmp/vcpe-testbin-1039353824/vcped as a detached daemon (pid file /tmp/TestWizardSecondDevice/001/run/site-b/state/vcped.pid)"}}}
	for width := 80; width <= 140; width += 20 {
		lines := pages.DoneLines(sum, nil, nil, nil, d.m.styles, width)
		i := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, "plan") })
		if i < 0 || i+1 >= len(lines) || lines[i+1] == "" {
			t.Fatalf("width %d: the step did not wrap:\n%s", width, strings.Join(lines, "\n"))
		}
		col := ansi.StringWidth(lines[i][:strings.Index(lines[i], "start")])
		if cont := lines[i+1]; strings.TrimLeft(cont, " ") == cont || len(cont)-len(strings.TrimLeft(cont, " ")) != col {
			t.Errorf("width %d: continuation %q is not under the message (column %d)", width, cont, col)
		}
	}
}

// TestInterfacesPrefilledFromGiven: interfaces given as flags, VCPE_*
// variables or --config are what the page proposes.
func TestInterfacesPrefilledFromGiven(t *testing.T) {
	s := hostSuggestions()
	s.Given.WANInterface, s.Given.LANInterface = "mgmt0", "eth0"
	d, reply := atRegister(t, s)
	for _, v := range []string{testController, testFingerprint, "SN-A-0002", "key"} {
		d.fill(v)
	}
	d.keys("enter", "enter", "enter")
	reg := <-reply
	if reg.WANInterface != "mgmt0" || reg.LANInterface != "eth0" {
		t.Errorf("interfaces %q, %q; want the given mgmt0, eth0", reg.WANInterface, reg.LANInterface)
	}
}
