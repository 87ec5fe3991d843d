package provision

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/internal/command"
	"github.com/openvcpe/vcpe/internal/device"
	"github.com/openvcpe/vcpe/precheck"
)

// wizardPrompter answers the optional questions as the wizard would.
type wizardPrompter struct {
	AutoPrompter
	force    bool
	lockouts []LockoutError
	attach   Attach
	asked    []AttachQuestion
}

func (w *wizardPrompter) OverrideLockout(_ context.Context, e *LockoutError) (bool, error) {
	w.lockouts = append(w.lockouts, *e)
	return w.force, nil
}

func (w *wizardPrompter) Attach(_ context.Context, q AttachQuestion) (Attach, error) {
	w.asked = append(w.asked, q)
	return w.attach, nil
}

// planInstall is an install past registration whose tunnel routes would
// capture the SSH client 198.18.0.5.
func planInstall(t *testing.T, p Prompter) *install {
	t.Helper()
	cfg := api.DeviceConfig{SN: "SN-2", InstanceName: "site-a", Role: api.RoleStandby, Slots: 2,
		OverlayAddr: netip.MustParsePrefix("198.18.64.3/18"), HubEndpoint: netip.MustParseAddrPort("198.18.0.1:4500"),
		Advertised: []netip.Prefix{netip.MustParsePrefix("198.19.1.0/24")},
		Routes:     []netip.Prefix{netip.MustParsePrefix("198.18.0.0/24"), netip.MustParsePrefix("198.19.2.0/24")},
		Peers:      []api.InstancePeer{{SN: "SN-1", Active: true, LANGateway: netip.MustParsePrefix("198.19.1.254/24")}}}
	return &install{
		o: InstallOptions{Prompter: p, SSHConnection: "198.18.0.5 50000 198.18.0.21 22", Sysctl: fakeSysctl{"net.ipv4.ip_forward": "1"},
			StateDir: t.TempDir(), Vcped: "/nonexistent/vcped", Runner: command.Exec{}},
		snap:    &precheck.Snapshot{},
		reg:     Registration{Controller: "https://198.18.0.1:8443", Advertise: cfg.Advertised},
		state:   &device.State{SN: "SN-2", Config: cfg},
		service: ServiceProcess,
	}
}

// TestLockoutAskedOnlyOfAPrompterThatCan: the plan's lockout is a failure
// for --yes without --force; the wizard is shown the exact route and may
// override it, which the plan then carries as a warning.
func TestLockoutAskedOnlyOfAPrompterThatCan(t *testing.T) {
	r := &Run{emit: func(Event) {}}
	_, _, err := planInstall(t, AutoPrompter{}).stepPlan(context.Background(), r)
	var le *LockoutError
	if !errors.As(err, &le) || le.Route.String() != "198.18.0.0/24" {
		t.Fatalf("--yes: %v; want the lockout of 198.18.0.0/24", err)
	}
	declined := &wizardPrompter{}
	if _, _, err := planInstall(t, declined).stepPlan(context.Background(), r); !errors.As(err, &le) || len(declined.lockouts) != 1 {
		t.Fatalf("wizard declined: %v (asked %d times); want the lockout refused", err, len(declined.lockouts))
	}
	if got := declined.lockouts[0]; got.Route.String() != "198.18.0.0/24" || got.Protected.Addr.String() != "198.18.0.5" || !strings.Contains(got.Protected.What, "SSH client") {
		t.Errorf("the wizard was shown %+v; want the route and the SSH client", got)
	}
	forced := &wizardPrompter{force: true}
	in := planInstall(t, forced)
	if _, _, err := in.stepPlan(context.Background(), r); err != nil {
		t.Fatalf("wizard overrode: %v", err)
	}
	if !slices.ContainsFunc(in.plan.Warnings, func(w string) bool { return strings.HasPrefix(w, "forced: route 198.18.0.0/24") }) {
		t.Errorf("plan warnings %q; want the forced lockout", in.plan.Warnings)
	}
}

// TestAttachProposesThePeerAndRoutesLANViaTheGateway: the wizard is asked
// with what the controller said (the active peer and its gateway); its
// answer becomes vcped's flags and the LAN commands' gateway.
func TestAttachProposesThePeerAndRoutesLANViaTheGateway(t *testing.T) {
	gw := netip.MustParsePrefix("198.19.1.254/24")
	w := &wizardPrompter{force: true, attach: Attach{LANGateway: gw, LANTargets: []netip.Addr{netip.MustParseAddr("198.19.1.10")}}}
	in := planInstall(t, w)
	if err := in.askAttach(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(w.asked) != 1 || w.asked[0].ActiveSN != "SN-1" || w.asked[0].PeerGateway != gw || !w.asked[0].MultiDevice() {
		t.Fatalf("asked %+v; want the active peer SN-1 and its gateway", w.asked)
	}
	if _, _, err := in.stepPlan(context.Background(), &Run{emit: func(Event) {}}); err != nil {
		t.Fatal(err)
	}
	if want := "ip route replace 198.19.2.0/24 via 198.19.1.254"; !slices.Contains(in.plan.LANCommands, want) {
		t.Errorf("LAN commands %q; want %q", in.plan.LANCommands, want)
	}
	args := strings.Join(in.vcpedArgs(), " ")
	if !strings.Contains(args, "--lan-gateway 198.19.1.254/24") || !strings.Contains(args, "--lan-target 198.19.1.10") {
		t.Errorf("vcped args %q; want the multi-attach flags", args)
	}
	one := planInstall(t, w)
	one.state.Config.Slots = 1
	w.asked = nil
	if err := one.askAttach(context.Background()); err != nil || len(w.asked) != 0 {
		t.Errorf("one-slot instance: asked %d times (%v); want no question", len(w.asked), err)
	}
	bad := planInstall(t, &wizardPrompter{attach: Attach{LANGateway: netip.MustParsePrefix("198.19.9.254/24")}})
	if err := bad.askAttach(context.Background()); err == nil || !strings.Contains(err.Error(), "outside the LAN prefixes") {
		t.Errorf("gateway outside the LAN: %v; want refused", err)
	}
}

// TestTakeNetworkChecksInterfaces: --wan-if/--lan-if naming no interface
// of the host are refused with the field, as in the wizard.
func TestTakeNetworkChecksInterfaces(t *testing.T) {
	in := planInstall(t, AutoPrompter{})
	in.snap = precheck.NewSnapshot(map[string][]byte{"vcpe/addresses.json": []byte(`{"wan0":["198.18.0.21/24"],"lan0":["198.19.1.2/24"],"lo":["127.0.0.1/8"]}`)})
	for _, c := range []struct {
		reg  Registration
		want string
	}{
		{Registration{WANInterface: "eth9"}, `--wan-if: no interface "eth9" on this host; pick one of lan0, wan0`},
		{Registration{LANInterface: "lan7"}, `--lan-if: no interface "lan7"`},
		{Registration{WANInterface: "wan0", LANInterface: "wan0"}, "--lan-if: wan0 is also the WAN interface"},
		{Registration{LANGateway: netip.MustParsePrefix("198.19.9.1/24"), Advertise: in.reg.Advertise}, "--lan-gateway: 198.19.9.1 is outside"},
	} {
		err := in.takeNetwork(c.reg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v; want %q", c.reg, err, c.want)
		}
		in.o.LANGateway, in.o.WANInterface, in.o.LANInterface = netip.Prefix{}, "", ""
	}
	if err := in.takeNetwork(Registration{WANInterface: "wan0", LANInterface: "lan0"}); err != nil || in.o.LANInterface != "lan0" {
		t.Errorf("existing interfaces: %v, LAN %q", err, in.o.LANInterface)
	}
}

// TestPlanWarnsWhenThePairsGatewaysDiffer: --yes asks nothing, so the plan
// says when this device's gateway is missing or not the other device's.
func TestPlanWarnsWhenThePairsGatewaysDiffer(t *testing.T) {
	for _, c := range []struct {
		gw   string
		want string
	}{
		{"", "device SN-1 of this instance holds the shared LAN gateway 198.19.1.254/24, but this device has none"},
		{"198.19.1.253/24", "device SN-1 of this instance uses the shared LAN gateway 198.19.1.254/24, this device 198.19.1.253/24"},
		{"198.19.1.254/24", ""},
	} {
		in := planInstall(t, &wizardPrompter{force: true})
		if c.gw != "" {
			in.o.LANGateway = netip.MustParsePrefix(c.gw)
		}
		if _, _, err := in.stepPlan(context.Background(), &Run{emit: func(Event) {}}); err != nil {
			t.Fatal(err)
		}
		got := slices.ContainsFunc(in.plan.Warnings, func(w string) bool { return strings.Contains(w, "shared LAN gateway") })
		if c.want == "" && got || c.want != "" && !slices.ContainsFunc(in.plan.Warnings, func(w string) bool { return strings.Contains(w, c.want) }) {
			t.Errorf("gateway %q: warnings %q; want %q", c.gw, in.plan.Warnings, c.want)
		}
	}
}
