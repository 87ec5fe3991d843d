package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/openvcpe/vcpe/controller"
	"github.com/openvcpe/vcpe/dataplane"
)

// Binaries are the paths of the project's binaries the lab runs.
type Binaries struct {
	Vcpe, Vcped, Hub string
}

// FindBinaries looks for vcpe, vcped and vcpe-hub next to the running
// executable (make build puts them all in bin/).
func FindBinaries() (Binaries, error) {
	self, err := os.Executable()
	if err != nil {
		return Binaries{}, fmt.Errorf("find binaries: %w", err)
	}
	dir := filepath.Dir(self)
	b := Binaries{Vcpe: filepath.Join(dir, "vcpe"), Vcped: filepath.Join(dir, "vcped"), Hub: filepath.Join(dir, "vcpe-hub")}
	for _, p := range []string{b.Vcpe, b.Vcped, b.Hub} {
		if _, err := os.Stat(p); err != nil {
			return b, fmt.Errorf("%s not found next to vcpe-lab: run make build first", filepath.Base(p))
		}
	}
	return b, nil
}

// Instance is one vCPE instance of the lab's plan: its devices (nodes, in
// slot order: the first becomes active) and what they advertise.
type Instance struct {
	Name      string         `json:"name"`
	CCN       string         `json:"ccn"` // empty: attached to no CCN
	Devices   []string       `json:"devices"`
	Advertise []netip.Prefix `json:"advertise"`
	// LANGateway, when set, is the address LAN hosts use whichever device
	// is active (--lan-gateway); LANTargets are the LAN hosts the devices
	// watch (--lan-target).
	LANGateway netip.Prefix `json:"lan_gateway,omitzero"`
	LANTargets []netip.Addr `json:"lan_targets,omitempty"`
}

// Plan is what the lab sets up on its network: the instances and CCNs.
type Plan struct {
	Instances []Instance `json:"instances"`
}

// LANAGateway is site A's gateway address, held by whichever of its two
// devices is active.
var LANAGateway = netip.MustParsePrefix("198.19.1.254/24")

// DefaultPlan is the lab's default: site A (an active and a standby device
// sharing the LAN gateway address) and site B in one CCN.
func DefaultPlan() Plan {
	return Plan{Instances: []Instance{
		{Name: "site-a", CCN: "corp", Devices: []string{"site-a", "site-a2"}, Advertise: []netip.Prefix{LANA},
			LANGateway: LANAGateway, LANTargets: []netip.Addr{LANAHost}},
		{Name: "site-b", CCN: "corp", Devices: []string{"site-b"}, Advertise: []netip.Prefix{LANB}},
	}}
}

// Controller is where the lab's hub listens.
var (
	ControllerAddr = netip.AddrPortFrom(HubWAN, 8443)
	HubEndpoint    = netip.AddrPortFrom(HubWAN, 4500)
)

// ControllerURL is the controller's URL as devices use it.
func ControllerURL() string { return "https://" + ControllerAddr.String() }

// HubState is the hub's state dir.
func (l *Lab) HubState() string { return l.Path("hub", "state") }

// DeviceState is a device node's state dir.
func (l *Lab) DeviceState(node string) string { return l.Path(node, "state") }

// StartHub starts vcpe-hub serve on the hub node and waits until it
// answers; it returns the controller's CA fingerprint.
func (l *Lab) StartHub(ctx context.Context, b Binaries) (string, error) {
	argv := []string{b.Hub, "serve", "--state", l.HubState(),
		"--listen", ControllerAddr.String(), "--hub-endpoint", HubEndpoint.String(),
		"--cloud-prefix", CloudPrefix.String(), "--uapi-dir", l.Path("hub", "uapi")}
	if err := os.MkdirAll(l.Path("hub", "uapi"), 0o700); err != nil {
		return "", err
	}
	if _, err := l.StartDaemon("hub", "vcpe-hub", argv, nil); err != nil {
		return "", err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := l.WaitTCP(wctx, "site-a", ControllerAddr.String()); err != nil {
		return "", fmt.Errorf("%w\nvcpe-hub log:\n%s", err, l.DaemonLog("hub", "vcpe-hub"))
	}
	out, err := l.Run(ctx, "hub", b.Hub, "fingerprint", "--state", l.HubState())
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(out), nil
}

// NodeEnv is the environment vcpe-lab exec gives a node: on a device, its
// state dir, its UAPI dir and the lab's controller (with the fingerprint
// when the hub has run), so vcpe commands need no flags there.
func (l *Lab) NodeEnv(node string) []string {
	n, ok := l.Node(node)
	if !ok || n.Kind != KindDevice {
		return nil
	}
	env := []string{"VCPE_STATE_DIR=" + l.DeviceState(node), "VCPE_UAPI_DIR=" + l.Path(node, "uapi"), "VCPE_CONTROLLER=" + l.controllerURL()}
	if fp, err := controller.ReadFingerprint(l.HubState()); err == nil {
		env = append(env, "VCPE_CONTROLLER_FINGERPRINT="+fp)
	}
	if b, err := os.ReadFile(l.Path(node, "device.env")); err == nil {
		env = append(env, strings.Fields(string(b))...)
	}
	return env
}

// Hub runs a vcpe-hub admin command and decodes its --json answer into
// out (when not nil).
func (l *Lab) Hub(ctx context.Context, b Binaries, out any, args ...string) error {
	argv := append([]string{b.Hub}, args...)
	argv = append(argv, "--state", l.HubState(), "--json")
	s, err := l.Run(ctx, "hub", argv...)
	if err != nil {
		return err
	}
	if out != nil {
		if err := json.Unmarshal([]byte(s), out); err != nil {
			return fmt.Errorf("vcpe-hub %s --json: %w", strings.Join(args, " "), err)
		}
	}
	return nil
}

// Issued is a device's serial number and key as the controller issued
// them, with the node it goes to. The key is written to a 0600 file; it
// never appears in an argv.
type Issued struct {
	Node    string
	SN      string
	KeyFile string
}

// CreateInstances creates the plan's instances and CCNs on the running
// hub and returns the issued credentials per device node.
func (l *Lab) CreateInstances(ctx context.Context, b Binaries, p Plan) ([]Issued, error) {
	var issued []Issued
	ccns := map[string]bool{}
	for _, in := range p.Instances {
		var created controller.CreatedInstance
		args := []string{"instance", "create", in.Name}
		if n := len(in.Devices); n > 2 {
			args = append(args, "--slots", fmt.Sprint(n))
		}
		if err := l.Hub(ctx, b, &created, args...); err != nil {
			return nil, err
		}
		if len(created.Devices) < len(in.Devices) {
			return nil, fmt.Errorf("instance %s: %d slots for %d devices", in.Name, len(created.Devices), len(in.Devices))
		}
		for i, node := range in.Devices {
			kf := l.Path(node, "device.key")
			if err := os.MkdirAll(filepath.Dir(kf), 0o700); err != nil {
				return nil, err
			}
			if err := os.WriteFile(kf, []byte(created.Devices[i].Key+"\n"), 0o600); err != nil {
				return nil, fmt.Errorf("write key of %s: %w", node, err)
			}
			// What the operator of this device was handed, for vcpe-lab exec.
			var adv []string
			for _, p := range in.Advertise {
				adv = append(adv, p.String())
			}
			if err := os.WriteFile(l.Path(node, "device.env"), []byte("VCPE_SN="+created.Devices[i].SN+"\nVCPE_ADVERTISE="+strings.Join(adv, ",")+"\nVCPE_KEY_FILE="+kf+"\n"), 0o600); err != nil {
				return nil, fmt.Errorf("write device env of %s: %w", node, err)
			}
			issued = append(issued, Issued{Node: node, SN: created.Devices[i].SN, KeyFile: kf})
		}
		if in.CCN == "" {
			continue
		}
		if !ccns[in.CCN] {
			if err := l.Hub(ctx, b, nil, "ccn", "create", in.CCN); err != nil {
				return nil, err
			}
			ccns[in.CCN] = true
		}
		if err := l.Hub(ctx, b, nil, "ccn", "attach", in.CCN, in.Name); err != nil {
			return nil, err
		}
	}
	return issued, nil
}

// instanceOf returns the instance holding device node.
func (p Plan) instanceOf(node string) Instance {
	for _, in := range p.Instances {
		for _, d := range in.Devices {
			if d == node {
				return in
			}
		}
	}
	return Instance{}
}

// learnedBy returns the prefixes device node must learn: those of the
// other instances in its CCN.
func (p Plan) learnedBy(node string) []netip.Prefix {
	own := p.instanceOf(node)
	var out []netip.Prefix
	for _, in := range p.Instances {
		if in.Name != own.Name && in.CCN != "" && in.CCN == own.CCN {
			out = append(out, in.Advertise...)
		}
	}
	return out
}

// waitRoutes waits until node's daemon routes every prefix in want.
func (l *Lab) waitRoutes(ctx context.Context, b Binaries, node string, want []netip.Prefix) error {
	for {
		st, err := l.WaitTunnel(ctx, b, node)
		if err != nil {
			return err
		}
		missing := slices.DeleteFunc(slices.Clone(want), func(p netip.Prefix) bool { return slices.Contains(st.Routes, p) })
		if len(missing) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s has not learned %v from the controller: %w", node, missing, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// haArgs are the install flags for a device of an instance with a shared
// LAN gateway.
func (in Instance) haArgs() []string {
	if !in.LANGateway.IsValid() {
		return nil
	}
	args := []string{"--lan-gateway", in.LANGateway.String()}
	for _, a := range in.LANTargets {
		args = append(args, "--lan-target", a.String())
	}
	return args
}

// RegisteredSN returns the SN of a device of the instance that is
// registered now (the first one, in slot order).
func (l *Lab) RegisteredSN(ctx context.Context, b Binaries, instance string) (string, error) {
	var devs []controller.DeviceInfo
	if err := l.Hub(ctx, b, &devs, "device", "list"); err != nil {
		return "", err
	}
	for _, d := range devs {
		if d.InstanceName == instance && d.Status == "registered" {
			return d.SN, nil
		}
	}
	return "", fmt.Errorf("no registered device in instance %s (vcpe-hub device list: %d devices)", instance, len(devs))
}

// Install installs a device with vcpe install --yes, as an operator's
// script would: precheck, registration, plan, forwarding, the daemon (a
// detached process: the lab has no systemd), the tunnel and the probes.
// It returns install's --json summary.
func (l *Lab) Install(ctx context.Context, b Binaries, fingerprint string, d Issued, advertise []netip.Prefix, extra ...string) (string, error) {
	var adv []string
	for _, p := range advertise {
		adv = append(adv, p.String())
	}
	uapi := l.Path(d.Node, "uapi")
	if err := os.MkdirAll(uapi, 0o700); err != nil {
		return "", err
	}
	argv := []string{b.Vcpe, "install", "--yes", "--json", "--controller", l.controllerURL(),
		"--controller-fingerprint", fingerprint, "--sn", d.SN, "--advertise", strings.Join(adv, ","),
		"--key-file", d.KeyFile, "--state-dir", l.DeviceState(d.Node), "--uapi-dir", uapi,
		"--service", "process", "--vcped", b.Vcped}
	argv = append(argv, extra...)
	cmd := l.Command(ctx, d.Node, argv...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s: vcpe install --yes: %w\n%s", d.Node, err, stderr.String())
	}
	return string(out), nil
}

// WaitTunnel waits until node's tunnel is up (vcpe status exits 0).
func (l *Lab) WaitTunnel(ctx context.Context, b Binaries, node string) (dataplane.Status, error) {
	var st dataplane.Status
	for {
		out, err := l.Command(ctx, node, b.Vcpe, "status", "--json", "--state-dir", l.DeviceState(node)).Output()
		_ = json.Unmarshal(out, &st)
		if err == nil && st.State == dataplane.StateUp {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("%s: tunnel not up (state %q, %s): %w\nvcped log:\n%s", node, st.State, st.Reason, ctx.Err(), l.DaemonLog(node, "vcped"))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// StartControlPlane starts the hub and creates p's instances and CCNs; it
// returns the controller's fingerprint and the issued device slots, so the
// caller installs the devices its own way.
func (l *Lab) StartControlPlane(ctx context.Context, b Binaries, p Plan) (string, []Issued, error) {
	start := l.StartHub
	switch {
	case l.Hubs > 1:
		start = l.StartHubGroup
	case l.Controllers > 0:
		start = func(ctx context.Context, b Binaries) (string, error) { return l.StartReplicated(ctx, b, l.Controllers) }
	}
	fp, err := start(ctx, b)
	if err != nil {
		return "", nil, err
	}
	issued, err := l.CreateInstances(ctx, b, p)
	return fp, issued, err
}

// StartSystem runs the whole system on the lab's network: the hub, the
// plan's instances and CCNs, and every device registered and tunnelled.
func (l *Lab) StartSystem(ctx context.Context, b Binaries, p Plan) error {
	fp, issued, err := l.StartControlPlane(ctx, b, p)
	if err != nil {
		return err
	}
	for _, d := range issued {
		in := p.instanceOf(d.Node)
		if _, err := l.Install(ctx, b, fp, d, in.Advertise, in.haArgs()...); err != nil {
			return err
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, d := range issued {
		if _, err := l.WaitTunnel(wctx, b, d.Node); err != nil {
			return err
		}
	}
	// Devices installed before the last one learn its prefixes at their
	// next sync with the controller: wait until every device routes every
	// other CCN member's prefixes.
	for _, d := range issued {
		if err := l.waitRoutes(wctx, b, d.Node, p.learnedBy(d.Node)); err != nil {
			return err
		}
	}
	// LAN hosts of a site with a shared gateway route through it.
	for _, in := range p.Instances {
		if !in.LANGateway.IsValid() {
			continue
		}
		for _, n := range l.Topo.Nodes {
			if n.Kind == KindHost && n.Gateway.IsValid() && in.LANGateway.Masked().Contains(n.Gateway) {
				if _, err := l.Run(ctx, n.Name, "ip", "route", "replace", "default", "via", in.LANGateway.Addr().String()); err != nil {
					return err
				}
				// The active device takes the address once the hub has told
				// it its role: wait until it answers.
				gw := in.LANGateway.Addr().String()
				for {
					if _, err := l.Run(ctx, n.Name, "ping", "-c", "1", "-W", "1", gw); err == nil {
						break
					}
					if wctx.Err() != nil {
						return fmt.Errorf("%s: gateway %s not answering: %w", n.Name, gw, wctx.Err())
					}
				}
			}
		}
	}
	return nil
}
