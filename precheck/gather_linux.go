package precheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"sync"
	"time"

	gnet "github.com/shirou/gopsutil/v4/net"
	"github.com/shirou/gopsutil/v4/process"
	"github.com/vishvananda/netlink"

	"github.com/openvcpe/vcpe/internal/command"
)

// commandTimeout bounds each firewall command.
const commandTimeout = 10 * time.Second

// Gather reads a snapshot of this host. Each area is gathered concurrently;
// what cannot be read is left out with the reason, so the checks that need
// it skip. It needs no privileges: as non-root, the firewall commands fail
// (recorded as missing) and socket owners of other users' processes are
// unknown.
func Gather(ctx context.Context, o GatherOptions) (*Snapshot, error) {
	if o.Runner == nil {
		o.Runner = command.Exec{}
	}
	root := o.Root
	if root == "" {
		root = "/"
	}
	s := NewSnapshot(nil)
	s.Live = true
	var mu sync.Mutex
	put := func(p string, b []byte) { mu.Lock(); s.files[p] = b; mu.Unlock() }
	miss := func(p, why string) { mu.Lock(); s.setMissing(p, why); mu.Unlock() }

	var wg sync.WaitGroup
	wg.Go(func() {
		for _, p := range plainFiles {
			b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(p)))
			if err != nil {
				miss(p, readReason(err))
				continue
			}
			put(p, b)
		}
		gatherInterfaces(root, put)
	})
	for _, c := range snapshotCommands {
		wg.Go(func() {
			if _, err := exec.LookPath(c.name); err != nil {
				why := c.name + " not found in PATH (install it, or the firewall is not checked)"
				if os.Geteuid() != 0 {
					why = c.name + " not found in PATH (it is usually in /usr/sbin; run as root)"
				}
				miss(c.file, why)
				return
			}
			cctx, cancel := context.WithTimeout(ctx, commandTimeout)
			defer cancel()
			out, err := o.Runner.Output(cctx, c.name, c.args...)
			if err != nil {
				why := err.Error()
				if os.Geteuid() != 0 {
					why += " (run as root to read the firewall)"
				}
				miss(c.file, why)
				return
			}
			put(c.file, out)
		})
	}
	wg.Go(func() {
		b, err := gatherSockets(ctx)
		if err != nil {
			miss(fileSockets, err.Error())
			return
		}
		put(fileSockets, b)
	})
	wg.Go(func() {
		addrs, links, tc, err := gatherNetlink()
		if err != nil {
			for _, f := range []string{fileAddresses, fileLinks, fileTC} {
				miss(f, err.Error())
			}
			return
		}
		put(fileAddresses, addrs)
		put(fileLinks, links)
		put(fileTC, tc)
	})
	wg.Wait()
	return s, ctx.Err()
}

func readReason(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "not present on this host"
	case errors.Is(err, fs.ErrPermission):
		return "permission denied (run as root)"
	}
	return err.Error()
}

// gatherInterfaces reads sys/class/net/IF/{operstate,...} and records the
// device entry of interfaces backed by a device.
func gatherInterfaces(root string, put func(string, []byte)) {
	dir := filepath.Join(root, "sys", "class", "net")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		name := e.Name()
		for _, f := range ifFiles {
			if b, err := os.ReadFile(filepath.Join(dir, name, f)); err == nil {
				put(path.Join(dirSysClassNet, name, f), b)
			}
		}
		if target, err := os.Readlink(filepath.Join(dir, name, "device")); err == nil {
			put(path.Join(dirSysClassNet, name, "device"), []byte(target+"\n"))
		}
	}
}

// gatherSockets lists the owners of listening TCP and unconnected UDP
// sockets in this network namespace.
func gatherSockets(ctx context.Context) ([]byte, error) {
	conns, err := gnet.ConnectionsWithContext(ctx, "inet")
	if err != nil {
		return nil, fmt.Errorf("list sockets: %w", err)
	}
	names := map[int32]string{}
	out := []SocketOwner{}
	for _, c := range conns {
		proto := map[uint32]string{1: "tcp", 2: "udp"}[c.Type]
		if proto == "" || (proto == "tcp" && c.Status != "LISTEN") || (proto == "udp" && c.Raddr.Port != 0) {
			continue
		}
		a, err := netip.ParseAddr(c.Laddr.IP)
		if err != nil {
			continue
		}
		o := SocketOwner{Proto: proto, Local: netip.AddrPortFrom(a.Unmap(), uint16(c.Laddr.Port)).String(), PID: int(c.Pid)}
		if c.Pid != 0 {
			n, ok := names[c.Pid]
			if !ok {
				if p, err := process.NewProcessWithContext(ctx, c.Pid); err == nil {
					n, _ = p.NameWithContext(ctx)
				}
				names[c.Pid] = n
			}
			o.Process = n
		}
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Proto != out[j].Proto {
			return out[i].Proto < out[j].Proto
		}
		return out[i].Local < out[j].Local
	})
	b, err := json.MarshalIndent(out, "", "  ")
	return append(b, '\n'), err
}

// gatherNetlink lists addresses and link kinds per interface, and qdiscs
// and policers.
func gatherNetlink() (addrs, kinds, tc []byte, err error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("list links: %w", err)
	}
	am := map[string][]string{}
	km := map[string]string{}
	var entries []TCEntry
	for _, l := range links {
		name := l.Attrs().Name
		km[name] = l.Type()
		as, err := netlink.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("list addresses of %s: %w", name, err)
		}
		list := []string{}
		for _, a := range as {
			if p, ok := netip.AddrFromSlice(a.IP); ok {
				ones, _ := a.Mask.Size()
				list = append(list, netip.PrefixFrom(p.Unmap(), ones).String())
			}
		}
		am[name] = list
		qs, err := netlink.QdiscList(l)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("list qdiscs of %s: %w", name, err)
		}
		parents := []uint32{}
		for _, q := range qs {
			a := q.Attrs()
			entries = append(entries, TCEntry{Dev: name, Kind: q.Type(), Parent: netlink.HandleStr(a.Parent), Handle: netlink.HandleStr(a.Handle)})
			parents = append(parents, a.Handle)
			if q.Type() == "clsact" {
				parents = append(parents, netlink.HANDLE_MIN_INGRESS, netlink.HANDLE_MIN_EGRESS)
			}
		}
		for _, parent := range parents {
			fs, err := netlink.FilterList(l, parent)
			if err != nil {
				continue
			}
			for _, f := range fs {
				if hasPolice(f) {
					entries = append(entries, TCEntry{Dev: name, Kind: "police", Parent: netlink.HandleStr(parent)})
				}
			}
		}
	}
	if entries == nil {
		entries = []TCEntry{}
	}
	if addrs, err = json.MarshalIndent(am, "", "  "); err != nil {
		return nil, nil, nil, err
	}
	if kinds, err = json.MarshalIndent(km, "", "  "); err != nil {
		return nil, nil, nil, err
	}
	if tc, err = json.MarshalIndent(entries, "", "  "); err != nil {
		return nil, nil, nil, err
	}
	return append(addrs, '\n'), append(kinds, '\n'), append(tc, '\n'), nil
}

func hasPolice(f netlink.Filter) bool {
	var acts []netlink.Action
	switch x := f.(type) {
	case *netlink.U32:
		if x.Police != nil {
			return true
		}
		acts = x.Actions
	case *netlink.FwFilter:
		if x.Police != nil {
			return true
		}
		acts = x.Actions
	case *netlink.MatchAll:
		acts = x.Actions
	case *netlink.Flower:
		acts = x.Actions
	}
	for _, a := range acts {
		if _, ok := a.(*netlink.PoliceAction); ok {
			return true
		}
	}
	return false
}
