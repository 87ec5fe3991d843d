package dataplane

import (
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// mssTable is the nftables table (family ip) holding the TCP MSS clamp of
// the tunnel interface tun: one per interface, so an edge and a hub (or
// two labs' nodes) never share it.
func mssTable(tun string) string { return "vcpe-mss-" + tun }

// writeMSSClamp clamps the MSS of TCP SYNs forwarded into the tunnel to
// what the route through it carries, in one atomic batch:
//
//	table ip vcpe-mss-TUN {
//	  chain forward { type filter hook forward priority mangle;
//	    oifname TUN tcp flags & (syn|rst) == syn tcp option maxseg size set rt mtu } }
//
// Both ends of a connection through the tunnel clamp their SYN (the device
// the LAN host's, the other end the answer), so neither side sends
// segments the tunnel would have to drop; "rt mtu" follows the tunnel's
// MTU when the path-MTU watch lowers it. The kernel only ever lowers an
// MSS with it.
func writeMSSClamp(c *nftables.Conn, tun string) error {
	t := &nftables.Table{Name: mssTable(tun), Family: nftables.TableFamilyIPv4}
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	accept := nftables.ChainPolicyAccept
	ch := c.AddChain(&nftables.Chain{Name: "forward", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityMangle, Policy: &accept})
	name := make([]byte, unix.IFNAMSIZ)
	copy(name, tun)
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: name},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		// tcp flags & (syn|rst) == syn
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{0x06}, Xor: []byte{0x00}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0x02}},
		// tcp option maxseg size set rt mtu
		&expr.Rt{Register: 1, Key: expr.RtTCPMSS},
		&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 2, Size: 2},
		&expr.Exthdr{SourceRegister: 1, Type: 2, Offset: 2, Len: 2, Op: expr.ExthdrOpTcpopt},
		&expr.Counter{},
	}})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("write nftables table %s (TCP MSS clamp): %w", mssTable(tun), err)
	}
	return nil
}

func deleteMSSClamp(c *nftables.Conn, tun string) error {
	t := &nftables.Table{Name: mssTable(tun), Family: nftables.TableFamilyIPv4}
	c.AddTable(t)
	c.DelTable(t)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("delete nftables table %s: %w", mssTable(tun), err)
	}
	return nil
}

// openMSSClamp writes the clamp for w's interface in w's namespace and
// returns the connection to remove it with.
func openMSSClamp(w *wgIface) (*nftables.Conn, error) {
	c, err := nftables.New(nftables.WithNetNSFd(int(w.ns)))
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	if err := writeMSSClamp(c, w.name); err != nil {
		return nil, err
	}
	return c, nil
}
