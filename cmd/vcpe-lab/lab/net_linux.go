package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/openvcpe/vcpe/internal/namespace"
)

// UpNetwork creates the namespaces, links, addresses and routes of the
// topology. On any error it removes everything it made.
func (l *Lab) UpNetwork(ctx context.Context) (err error) {
	if err := l.Topo.Validate(); err != nil {
		return fmt.Errorf("topology: %w", err)
	}
	if existing, err := l.Namespaces(); err != nil {
		return err
	} else if len(existing) > 0 {
		return fmt.Errorf("%w (%s): run 'vcpe-lab down' first", ErrAlreadyUp, strings.Join(existing, ", "))
	}
	defer func() {
		if err != nil {
			l.Log.Warn("lab up failed; removing what was made", "err", err)
			_ = l.Down()
		}
	}()
	handles := map[string]*netlink.Handle{}
	nsh := map[string]netns.NsHandle{}
	defer func() {
		for _, h := range handles {
			h.Close()
		}
		for _, n := range nsh {
			n.Close()
		}
	}()
	for _, n := range l.Topo.Nodes {
		name := l.NS(n.Name)
		if err := namespace.Create(name); err != nil {
			return err
		}
		ns, err := netns.GetFromName(name)
		if err != nil {
			return fmt.Errorf("open namespace %s: %w", name, err)
		}
		nsh[n.Name] = ns
		h, err := netlink.NewHandleAt(ns)
		if err != nil {
			return fmt.Errorf("netlink handle in %s: %w", name, err)
		}
		handles[n.Name] = h
		if n.Kind == KindSwitch {
			br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}}
			if err := h.LinkAdd(br); err != nil {
				return fmt.Errorf("%s: add bridge: %w", n.Name, err)
			}
			if err := setUp(h, "br0"); err != nil {
				return fmt.Errorf("%s: %w", n.Name, err)
			}
		}
		if n.Forward {
			if _, err := l.Run(ctx, n.Name, "sysctl", "-qw", "net.ipv4.ip_forward=1"); err != nil {
				return err
			}
		}
	}
	for _, k := range l.Topo.Links {
		ha, hb := handles[k.A], handles[k.B]
		veth := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: k.AIf},
			PeerName:      k.BIf,
			PeerNamespace: netlink.NsFd(int(nsh[k.B])),
		}
		if err := ha.LinkAdd(veth); err != nil {
			return fmt.Errorf("link %s/%s-%s/%s: %w", k.A, k.AIf, k.B, k.BIf, err)
		}
		if err := addAddr(ha, k.AIf, k.AAddr); err != nil {
			return fmt.Errorf("%s: %w", k.A, err)
		}
		if node, _ := l.Node(k.B); node.Kind == KindSwitch {
			if err := setMaster(hb, k.BIf, "br0"); err != nil {
				return fmt.Errorf("%s: %w", k.B, err)
			}
		} else if err := addAddr(hb, k.BIf, k.BAddr); err != nil {
			return fmt.Errorf("%s: %w", k.B, err)
		}
		if err := setUp(ha, k.AIf); err != nil {
			return fmt.Errorf("%s: %w", k.A, err)
		}
		if err := setUp(hb, k.BIf); err != nil {
			return fmt.Errorf("%s: %w", k.B, err)
		}
	}
	for _, a := range l.Topo.BridgeAddr {
		if err := addAddr(handles[a.Node], "br0", a.Addr); err != nil {
			return fmt.Errorf("%s: %w", a.Node, err)
		}
	}
	for _, n := range l.Topo.Nodes {
		if !n.Gateway.IsValid() {
			continue
		}
		r := &netlink.Route{Gw: net.IP(n.Gateway.AsSlice())}
		if err := handles[n.Name].RouteAdd(r); err != nil {
			return fmt.Errorf("%s: default route via %s: %w", n.Name, n.Gateway, err)
		}
	}
	if err := waitCarrier(ctx, handles, l.Topo.Links); err != nil {
		return err
	}
	return os.MkdirAll(l.RunDir, 0o700)
}

// waitCarrier waits until both ends of every link have carrier and their
// real qdisc, so the lab is usable the moment Up returns: until the
// kernel's link watcher runs (up to a second after "up") a link keeps the
// noop qdisc, which drops every packet.
func waitCarrier(ctx context.Context, handles map[string]*netlink.Handle, links []Link) error {
	deadline := time.Now().Add(5 * time.Second)
	for _, k := range links {
		for _, end := range [][2]string{{k.A, k.AIf}, {k.B, k.BIf}} {
			for {
				link, err := handles[end[0]].LinkByName(end[1])
				if err != nil {
					return fmt.Errorf("%s: find %s: %w", end[0], end[1], err)
				}
				if link.Attrs().RawFlags&unix.IFF_LOWER_UP != 0 && hasQdisc(handles[end[0]], link) {
					break
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("%s: %s has no carrier after 5s", end[0], end[1])
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(20 * time.Millisecond):
				}
			}
		}
	}
	return nil
}

// Down stops every process inside the lab's namespaces, deletes the
// namespaces and removes the run dir. It is safe to call on a lab that is
// partly or not at all up.
func (l *Lab) Down() error {
	names, err := l.Namespaces()
	if err != nil {
		return err
	}
	// Ask nicely first (SIGTERM, 3 s), so daemons undo their changes; then
	// insist.
	var errs []error
	if err := namespace.Delete(3*time.Second, names...); err != nil {
		errs = append(errs, err)
	}
	if l.RunDir != "" {
		if err := os.RemoveAll(l.RunDir); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", l.RunDir, err))
		}
	}
	return errors.Join(errs...)
}

func setUp(h *netlink.Handle, name string) error {
	link, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find %s: %w", name, err)
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %s up: %w", name, err)
	}
	return nil
}

func setMaster(h *netlink.Handle, name, master string) error {
	link, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find %s: %w", name, err)
	}
	br, err := h.LinkByName(master)
	if err != nil {
		return fmt.Errorf("find %s: %w", master, err)
	}
	if err := h.LinkSetMaster(link, br); err != nil {
		return fmt.Errorf("attach %s to %s: %w", name, master, err)
	}
	return nil
}

func addAddr(h *netlink.Handle, name string, p netip.Prefix) error {
	if !p.IsValid() {
		return nil
	}
	link, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find %s: %w", name, err)
	}
	a, err := netlink.ParseAddr(p.String())
	if err != nil {
		return fmt.Errorf("address %s: %w", p, err)
	}
	if err := h.AddrAdd(link, a); err != nil {
		return fmt.Errorf("add %s to %s: %w", p, name, err)
	}
	return nil
}

func hasQdisc(h *netlink.Handle, link netlink.Link) bool {
	qs, err := h.QdiscList(link)
	if err != nil {
		return false
	}
	for _, q := range qs {
		if q.Type() != "noop" {
			return true
		}
	}
	return false
}
