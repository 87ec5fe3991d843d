package dataplane

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.zx2c4.com/wireguard/tun"

	"github.com/openvcpe/vcpe/internal/namespace"
)

// TestDrainTUNBurst: a burst queued on a real TUN (with the kernel's
// offloads, as vcped opens it) comes out of one Read as a full batch, and
// a caller with a small batch gets every packet, in order, none lost.
func TestDrainTUNBurst(t *testing.T) {
	ns := namespace.New(t)
	const burst, batch, offset = 300, 128, 16
	inNamespace(t, ns, func() {
		tdev, err := tun.CreateTUN("vcpedrain0", 1420)
		if err != nil {
			t.Fatalf("create tun: %v", err)
		}
		defer tdev.Close()
		link, err := netlink.LinkByName("vcpedrain0")
		if err != nil {
			t.Fatal(err)
		}
		addr, _ := netlink.ParseAddr("198.18.99.1/24")
		if err := netlink.AddrAdd(link, addr); err != nil {
			t.Fatal(err)
		}
		if err := netlink.LinkSetUp(link); err != nil {
			t.Fatal(err)
		}
		sock, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(198, 18, 99, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer sock.Close()
		dst := &net.UDPAddr{IP: net.IPv4(198, 18, 99, 2), Port: 9}
		send := func(from, to int) {
			for i := from; i < to; i++ {
				b := make([]byte, 1024)
				binary.BigEndian.PutUint32(b, uint32(i))
				if _, err := sock.WriteToUDP(b, dst); err != nil {
					t.Fatalf("send datagram %d: %v", i, err)
				}
			}
		}
		newBufs := func(n int) ([][]byte, []int) {
			bufs := make([][]byte, n)
			for i := range bufs {
				bufs[i] = make([]byte, offset+65535)
			}
			return bufs, make([]int, n)
		}
		// seqs returns the sequence numbers of the test's datagrams among
		// the packets read (the kernel may add its own, e.g. IPv6).
		seqs := func(bufs [][]byte, sizes []int, n int) []int {
			var out []int
			for i := range n {
				p := bufs[i][offset : offset+sizes[i]]
				if len(p) < 28+4 || p[0]>>4 != 4 || p[9] != 17 || netip.AddrFrom4([4]byte(p[16:20])) != netip.MustParseAddr("198.18.99.2") {
					continue
				}
				out = append(out, int(binary.BigEndian.Uint32(p[28:])))
			}
			return out
		}

		// Upstream's read: one packet a call, whatever is queued.
		send(0, 10)
		bufs, sizes := newBufs(batch)
		n, err := tdev.Read(bufs, sizes, offset)
		if err != nil || n != 1 {
			t.Fatalf("upstream TUN read = %d, %v; want 1 packet (the reason drainTUN exists)", n, err)
		}
		got := seqs(bufs, sizes, n)

		d := newDrainTUN(tdev, nil, nil)
		dt, ok := d.(*drainTUN)
		if !ok {
			t.Fatalf("newDrainTUN returned %T; want *drainTUN", d)
		}
		if !dt.queued() {
			t.Fatal("queued() = false with 9 datagrams queued")
		}
		// The poll runs once per packet drained: it must not allocate.
		if a := testing.AllocsPerRun(100, func() { dt.queued() }); a != 0 {
			t.Errorf("queued() allocates %v times a call; want 0", a)
		}
		send(10, burst)
		n, err = d.Read(bufs, sizes, offset)
		if err != nil || n != batch {
			t.Fatalf("drained read = %d, %v; want a full batch of %d with %d queued", n, err, batch, burst-10)
		}
		got = append(got, seqs(bufs, sizes, n)...)

		// The rest through a caller with a batch of 3.
		small, smallSizes := newBufs(3)
		for reads := 0; len(got) < burst; reads++ {
			if reads > burst {
				t.Fatalf("still %d of %d datagrams missing after %d reads", burst-len(got), burst, reads)
			}
			n, err := d.Read(small, smallSizes, offset)
			if err != nil || n < 1 || n > 3 {
				t.Fatalf("read with a batch of 3 = %d, %v", n, err)
			}
			got = append(got, seqs(small, smallSizes, n)...)
		}
		for i, s := range got {
			if s != i {
				t.Fatalf("datagram %d came out as %d (all: %v)", i, s, got)
			}
		}
	})
}

// pipeTUN is a fake TUN: each Read takes one byte from a pipe (so the
// pipe's read end polls like a TUN with packets queued) and returns the
// next scripted result.
type pipeTUN struct {
	tun.Device
	r, w    *os.File
	results []pipeResult
}

type pipeResult struct {
	pkts []string
	err  error
}

func (p *pipeTUN) File() *os.File { return p.r }
func (p *pipeTUN) BatchSize() int { return 4 }
func (p *pipeTUN) queue(r ...pipeResult) {
	p.results = append(p.results, r...)
	if _, err := p.w.Write(make([]byte, len(r))); err != nil {
		panic(err)
	}
}

func (p *pipeTUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	var b [1]byte
	if _, err := p.r.Read(b[:]); err != nil {
		return 0, err
	}
	r := p.results[0]
	p.results = p.results[1:]
	if len(r.pkts) > len(bufs) {
		return 0, tun.ErrTooManySegments
	}
	for i, s := range r.pkts {
		sizes[i] = copy(bufs[i][offset:], s)
	}
	return len(r.pkts), r.err
}

// TestDrainTUNErrors: a read error met while draining comes after the
// packets already read, and a segment overflow goes with them the way
// wireguard-go expects (it logs it and carries on).
func TestDrainTUNErrors(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	p := &pipeTUN{r: r, w: w}
	d := newDrainTUN(p, nil, nil)
	bufs := [][]byte{make([]byte, 64), make([]byte, 64), make([]byte, 64), make([]byte, 64)}
	sizes := make([]int, 4)
	read := func() ([]string, error) {
		n, err := d.Read(bufs, sizes, 2)
		var out []string
		for i := range n {
			out = append(out, string(bufs[i][2:2+sizes[i]]))
		}
		return out, err
	}
	check := func(what string, want []string, wantErr error) {
		t.Helper()
		got, err := read()
		if len(got) != len(want) || !errors.Is(err, wantErr) {
			t.Fatalf("%s: Read = %q, %v; want %q, %v", what, got, err, want, wantErr)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: Read = %q; want %q", what, got, want)
			}
		}
	}

	p.queue(pipeResult{pkts: []string{"a"}}, pipeResult{pkts: []string{"b", "c"}}, pipeResult{pkts: []string{"d", "e"}})
	check("a burst larger than the batch", []string{"a", "b", "c", "d"}, nil)
	check("what did not fit", []string{"e"}, nil)

	p.queue(pipeResult{pkts: []string{"f"}}, pipeResult{err: tun.ErrTooManySegments})
	check("overflow while draining", []string{"f"}, tun.ErrTooManySegments)

	p.queue(pipeResult{pkts: []string{"g"}}, pipeResult{pkts: []string{"h"}, err: os.ErrClosed})
	check("closed while draining: the packets first", []string{"g", "h"}, nil)
	check("then the error", nil, os.ErrClosed)
}
