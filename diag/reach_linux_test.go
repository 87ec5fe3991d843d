package diag

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/internal/namespace"
)

// nsReachClient plays the controller inside ns: it sends the nonce to
// every reach port of the requester (wanClient), as the controller does.
type nsReachClient struct {
	t  *testing.T
	ns *namespace.NS
}

func (c nsReachClient) Reach(ctx context.Context, req api.ReachRequest) (api.ReachResponse, error) {
	res := api.ReachResponse{Target: wanClient, Nonce: req.Nonce}
	inNS(c.t, c.ns, func() {
		for _, p := range api.ReachPorts {
			pr := api.ReachProbe{ReachPort: p}
			d := net.Dialer{Timeout: 500 * time.Millisecond}
			conn, err := d.DialContext(ctx, p.Proto+"4", netip.AddrPortFrom(wanClient, p.Port).String())
			if err == nil {
				_, err = conn.Write(api.ReachPayload(req.Nonce))
				conn.Close()
			}
			if err != nil {
				pr.Error = err.Error()
			} else {
				pr.Sent = true
			}
			res.Probes = append(res.Probes, pr)
		}
	})
	return res, nil
}

// TestOutsideInListenerCaptureAndBlock: free ports are listened on, a
// held port (UDP 4500, as vcped holds it) is seen by the AF_PACKET
// capture, and a port dropped by nft on the device's input does not
// arrive.
func TestOutsideInListenerCaptureAndBlock(t *testing.T) {
	cl, srv := pair(t)
	cl.Run("nft", "add table inet reachtest")
	cl.Run("nft", "add chain inet reachtest in { type filter hook input priority 0 ; }")
	cl.Run("nft", "add rule inet reachtest in udp dport 10050 drop")
	cl.Run("nft", "add rule inet reachtest in tcp dport 10100 drop")

	var r ReachReport
	var err error
	inNS(t, cl, func() {
		held, lerr := net.ListenPacket("udp4", ":4500")
		if lerr != nil {
			t.Fatalf("hold UDP 4500: %v", lerr)
		}
		defer held.Close()
		r, err = OutsideIn(context.Background(), nsReachClient{t, srv}, ReachOptions{WANInterface: "wan0", Wait: time.Second})
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"udp/4500": ReachArrived, "udp/12345": ReachArrived, "udp/10000": ReachArrived, "udp/10050": ReachNotArrived,
		"udp/10100": ReachArrived, "tcp/10000": ReachArrived, "tcp/10050": ReachArrived, "tcp/10100": ReachNotArrived,
	}
	for _, p := range r.Ports {
		if p.Status != want[p.String()] {
			t.Errorf("%s: %s (%s); want %s", p, p.Status, p.Detail, want[p.String()])
		}
	}
	if p, _ := r.Port("udp", 4500); p.Via != "capture" || p.From != wanHub {
		t.Errorf("udp/4500 = %+v; want seen by capture from %s", p, wanHub)
	}
	if p, _ := r.Port("udp", 10000); p.Via != "listener" {
		t.Errorf("udp/10000 = %+v; want seen by the listener", p)
	}
	if r.OK || r.NAT || len(r.Ports) != len(api.ReachPorts) {
		t.Errorf("report ok=%v nat=%v ports=%d; want not ok, no NAT, %d ports", r.OK, r.NAT, len(r.Ports), len(api.ReachPorts))
	}
}

// TestCaptureWireGuardSeesBothDirections sends a handshake initiation and
// a response across a veth and checks the capture's counts and
// directions.
func TestCaptureWireGuardSeesBothDirections(t *testing.T) {
	cl, srv := pair(t)
	var hubConn net.PacketConn
	inNS(t, srv, func() {
		var err error
		if hubConn, err = net.ListenPacket("udp4", wanHub.String()+":4500"); err != nil {
			t.Fatal(err)
		}
	})
	defer hubConn.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := hubConn.ReadFrom(buf)
			if err != nil {
				return
			}
			if h, err := ParseWireGuard(buf[:n]); err == nil && h.Type == WGInitiation {
				hubConn.WriteTo(wgMsg(WGResponse, 92, 2, h.Sender), from)
			}
		}
	}()
	var r CaptureReport
	inNS(t, cl, func() {
		c, err := OpenCapture("wan0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		dev, err := net.ListenPacket("udp4", wanClient.String()+":4500")
		if err != nil {
			t.Fatal(err)
		}
		defer dev.Close()
		hub := net.UDPAddrFromAddrPort(netip.AddrPortFrom(wanHub, 4500))
		for i := range 3 {
			dev.WriteTo(wgMsg(WGInitiation, 148, uint32(i+1), 0), hub)
		}
		dev.WriteTo([]byte("not wireguard"), hub)
		ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
		defer cancel()
		var pkts []WGPacket
		other := 0
		c.Run(ctx, func(p Packet) bool {
			if h, err := ParseWireGuard(p.Payload); err == nil {
				pkts = append(pkts, WGPacket{Time: p.Time, Outgoing: p.Outgoing, Src: p.Src, Dst: p.Dst, WGHeader: h})
			} else if p.Proto == "udp" {
				other++
			}
			return true
		})
		r = SummarizeCapture("wan0", 4500, time.Now(), time.Second, pkts, other)
	})
	if r.Sent[WGInitiation] != 3 || r.Received[WGResponse] != 3 || !r.InitiationsLeave || !r.ResponsesComeBack || r.Other != 1 {
		t.Fatalf("capture: sent %v received %v other %d; want 3 initiations out, 3 responses in, 1 other", r.Sent, r.Received, r.Other)
	}
}

// TestCaptureSkipsFragments: a UDP datagram larger than the link's MTU
// leaves as fragments, which decode to IPv4 alone. The capture (it looks
// at small control packets: WireGuard handshakes, reach probes) skips
// them and goes on to the next packet; it used to index past the decoded
// layers and panic, which killed vcpe diag mid-run.
func TestCaptureSkipsFragments(t *testing.T) {
	cl, srv := pair(t)
	var sink net.PacketConn
	inNS(t, srv, func() {
		var err error
		if sink, err = net.ListenPacket("udp4", wanHub.String()+":9"); err != nil {
			t.Fatal(err)
		}
	})
	defer sink.Close()
	var udp, other int
	inNS(t, cl, func() {
		c, err := OpenCapture("wan0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conn, err := net.ListenPacket("udp4", wanClient.String()+":0")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(wanHub, 9))
		for _, size := range []int{4000, 100} {
			if _, err := conn.WriteTo(make([]byte, size), to); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		if err := c.Run(ctx, func(p Packet) bool {
			if p.Proto == "udp" && p.Dst.Port() == 9 {
				udp++
			} else {
				other++
			}
			return true
		}); err != nil {
			t.Fatal(err)
		}
	})
	if udp != 1 || other != 0 {
		t.Fatalf("capture of a 4000-byte datagram in fragments, then a 100-byte one: %d UDP packets to port 9, %d others; want 1 (the small one) and 0", udp, other)
	}
	buf := make([]byte, 8192)
	sink.SetReadDeadline(time.Now().Add(time.Second))
	if n, _, err := sink.ReadFrom(buf); err != nil || n != 4000 {
		t.Fatalf("the large datagram was not reassembled at the far end (n=%d, err=%v): the test sent no fragments", n, err)
	}
}
