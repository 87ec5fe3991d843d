package lab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/openvcpe/vcpe/controller"
	"github.com/openvcpe/vcpe/dataplane"
	"github.com/openvcpe/vcpe/internal/atomicfile"
)

// MaxHubs is the largest hub group vcpe-lab up --hubs builds.
const MaxHubs = 2

// The hub group's cloud side (vcpe-lab up --hubs 2): the cloud host's
// gateway is CloudGateway, an address no node owns; the live hub with the
// lowest name holds it (--cloud-gateway) and announces it with gratuitous
// ARP, and each hub checks its cloud side by pinging CloudHost
// (--cloud-target).
var CloudGateway = netip.MustParsePrefix("198.19.100.1/24")

// HubNode is the lab node of hub i of a group (0-based): hub, hub2, hub3,
// … Each hub is named after its node (the name of its hub credential).
func HubNode(i int) string {
	if i == 0 {
		return "hub"
	}
	return fmt.Sprintf("hub%d", i+1)
}

// HubWANOf is hub i's WAN address: 198.18.0.1, .2, …
func HubWANOf(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, 0, byte(i + 1)}) }

// HubEndpointOf is the WireGuard endpoint of hub i.
func HubEndpointOf(i int) netip.AddrPort { return netip.AddrPortFrom(HubWANOf(i), HubEndpoint.Port()) }

// hubCloudAddr is hub i's own address on the cloud switch: 198.19.100.2,
// .3, … (.1 is the gateway address that moves).
func hubCloudAddr(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, 100, byte(i + 2)}), 24)
}

// HubGroup is the default topology with n hubs: hub, hub2, … on the
// internet segment (198.18.0.1, .2, …) and a cloud switch joining every
// hub's cloud0 (198.19.100.2, .3, …) and the cloud host (198.19.100.10,
// gateway the moving address 198.19.100.1). n < 2 is Default.
func HubGroup(n int) Topology {
	t := Default()
	if n < 2 {
		return t
	}
	// The hub's direct link to the cloud host becomes a switch port.
	t.Links = slices.DeleteFunc(t.Links, func(k Link) bool { return k.A == "hub" && k.AIf == "cloud0" })
	t.Nodes = append(t.Nodes, Node{Name: "cloudsw", Kind: KindSwitch})
	t.Links = append(t.Links, Link{A: "cloud", AIf: "eth0", AAddr: netip.PrefixFrom(CloudHost, 24), B: "cloudsw", BIf: "cloud"})
	for i := range n {
		node := HubNode(i)
		if i > 0 {
			t.Nodes = append(t.Nodes, Node{Name: node, Kind: KindHub, Forward: true, Gateway: InternetGW})
			t.Links = append(t.Links, Link{A: node, AIf: "wan0", AAddr: netip.PrefixFrom(HubWANOf(i), 24), B: "internet", BIf: node})
		}
		t.Links = append(t.Links, Link{A: node, AIf: "cloud0", AAddr: hubCloudAddr(i), B: "cloudsw", BIf: node})
	}
	return t
}

// UseHubs makes the lab a hub group of n hubs (n < 2: one hub, as
// before): the topology and the way StartControlPlane starts the hubs.
func (l *Lab) UseHubs(n int) {
	l.Hubs = n
	l.Topo = HubGroup(n)
}

// HubNodes are the lab's hub nodes, in name order.
func (l *Lab) HubNodes() []string {
	out := []string{"hub"}
	for i := 1; i < l.Hubs; i++ {
		out = append(out, HubNode(i))
	}
	return out
}

// GroupHubState is the state dir of the hub process on a hub node of a
// group.
func (l *Lab) GroupHubState(node string) string { return l.Path(node, "hubstate") }

// GroupHubStatus reads the status of the hub process on a hub node.
func (l *Lab) GroupHubStatus(node string) (dataplane.Status, error) {
	return dataplane.ReadStatus(l.GroupHubState(node) + "/hub.sock")
}

// StartHubGroup starts the controller (vcpe-hub serve --role controller
// on SQLite, on the hub node, where the one-hub lab runs it) and one
// vcpe-hub serve --role hub per hub node, each with its own hub
// credential, key and endpoint, checking the cloud host and sharing the
// cloud gateway address; it waits until every hub has registered and
// returns the controller's CA fingerprint. The controller runs apart from
// the hubs so killing a hub leaves it running, as on separate hosts.
func (l *Lab) StartHubGroup(ctx context.Context, b Binaries) (string, error) {
	argv := []string{b.Hub, "serve", "--role", "controller", "--state", l.HubState(),
		"--listen", ControllerAddr.String(), "--hub-endpoint", HubEndpoint.String(),
		"--cloud-prefix", CloudPrefix.String()}
	if l.HubFailback {
		argv = append(argv, "--hub-failback")
	}
	if _, err := l.StartDaemon("hub", "vcpe-hub-ctl", argv, nil); err != nil {
		return "", err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := l.WaitTCP(wctx, "site-a", ControllerAddr.String()); err != nil {
		return "", fmt.Errorf("%w\ncontroller log:\n%s", err, l.DaemonLog("hub", "vcpe-hub-ctl"))
	}
	fp, err := controller.ReadFingerprint(l.HubState())
	if err != nil {
		return "", err
	}
	for _, node := range l.HubNodes() {
		var cred controller.HubCredential
		if err := l.Hub(ctx, b, &cred, "hub", "credential", node); err != nil {
			return "", err
		}
		if err := os.MkdirAll(l.Path(node, "uapi"), 0o700); err != nil {
			return "", err
		}
		if err := atomicfile.WriteFile(l.Path(node, "hub.cred"), []byte(cred.Credential+"\n"), 0o600); err != nil {
			return "", err
		}
		if err := l.StartGroupHub(ctx, b, node); err != nil {
			return "", err
		}
	}
	return fp, l.waitHubsRegistered(wctx, b)
}

// StartGroupHub starts (or starts again) the hub process of a hub node of
// the group.
func (l *Lab) StartGroupHub(ctx context.Context, b Binaries, node string) error {
	i := slices.Index(l.HubNodes(), node)
	if i < 0 {
		return fmt.Errorf("%s is not a hub of the lab's group (%v)", node, l.HubNodes())
	}
	fp, err := controller.ReadFingerprint(l.HubState())
	if err != nil {
		return err
	}
	argv := []string{b.Hub, "serve", "--role", "hub", "--state", l.GroupHubState(node),
		"--controller", ControllerURL(), "--controller-fingerprint", fp,
		"--hub-credential-file", l.Path(node, "hub.cred"), "--hub-endpoint", HubEndpointOf(i).String(),
		"--uapi-dir", l.Path(node, "uapi"),
		"--cloud-target", CloudHost.String(), "--cloud-gateway", CloudGateway.String()}
	_, err = l.StartDaemon(node, "vcpe-hub", argv, nil)
	return err
}

// waitHubsRegistered waits until vcpe-hub hub list names every hub node.
func (l *Lab) waitHubsRegistered(ctx context.Context, b Binaries) error {
	for {
		var hubs []struct {
			Name string `json:"name"`
		}
		err := l.Hub(ctx, b, &hubs, "hub", "list")
		var missing []string
		for _, n := range l.HubNodes() {
			if !slices.ContainsFunc(hubs, func(h struct {
				Name string `json:"name"`
			}) bool {
				return h.Name == n
			}) {
				missing = append(missing, n)
			}
		}
		if err == nil && len(missing) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			var logs strings.Builder
			for _, n := range missing {
				fmt.Fprintf(&logs, "\nvcpe-hub on %s:\n%s", n, l.DaemonLog(n, "vcpe-hub"))
			}
			return fmt.Errorf("hubs %v not registered with the controller (vcpe-hub hub list: %v): %w%s", missing, err, ctx.Err(), logs.String())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// detectHubs reads how many hubs a running lab has from its
// namespaces (PREFIX-hub2 and so on).
func (l *Lab) detectHubs() int {
	names, _ := l.Namespaces()
	n := 1
	for i := 1; i < MaxHubs; i++ {
		if slices.Contains(names, l.NS(HubNode(i))) {
			n = i + 1
		}
	}
	return n
}

// Adopt shapes l after the lab that runs under its prefix now (the
// number of hubs), so status, exec and check see every node.
func (l *Lab) Adopt() {
	if n := l.detectHubs(); n > 1 {
		l.UseHubs(n)
	}
}
