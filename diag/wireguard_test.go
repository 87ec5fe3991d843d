package diag

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func wgMsg(t WGType, n int, sender, receiver uint32) []byte {
	b := make([]byte, n)
	b[0] = byte(t)
	switch t {
	case WGTransport, WGCookieReply:
		binary.LittleEndian.PutUint32(b[4:], receiver)
	case WGInitiation:
		binary.LittleEndian.PutUint32(b[4:], sender)
	case WGResponse:
		binary.LittleEndian.PutUint32(b[4:], sender)
		binary.LittleEndian.PutUint32(b[8:], receiver)
	}
	return b
}

func TestParseWireGuard(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
		want WGHeader
		err  string
	}{
		{"initiation", wgMsg(WGInitiation, 148, 7, 0), WGHeader{Type: WGInitiation, Sender: 7, Length: 148}, ""},
		{"response", wgMsg(WGResponse, 92, 8, 7), WGHeader{Type: WGResponse, Sender: 8, Receiver: 7, Length: 92}, ""},
		{"cookie", wgMsg(WGCookieReply, 64, 0, 7), WGHeader{Type: WGCookieReply, Receiver: 7, Length: 64}, ""},
		{"cookie receiver first", []byte{3, 0, 0, 0, 9, 0, 0, 0, 5, 0, 0, 0, 60: 0, 63: 0}, WGHeader{Type: WGCookieReply, Receiver: 9, Length: 64}, ""},
		{"keepalive", wgMsg(WGTransport, 32, 0, 9), WGHeader{Type: WGTransport, Receiver: 9, Length: 32}, ""},
		{"data", wgMsg(WGTransport, 32+128, 0, 9), WGHeader{Type: WGTransport, Receiver: 9, Length: 160}, ""},
		{"short initiation", wgMsg(WGInitiation, 147, 7, 0), WGHeader{}, "want 148"},
		{"transport at the MTU", wgMsg(WGTransport, 1420+32, 0, 9), WGHeader{Type: WGTransport, Receiver: 9, Length: 1452}, ""},
		{"transport too short", wgMsg(WGTransport, 31, 0, 9), WGHeader{}, "transport message of 31"},
		{"unknown type", wgMsg(5, 148, 0, 0), WGHeader{}, "unknown message type 5"},
		{"reserved set", append([]byte{1, 0, 1, 0}, make([]byte, 144)...), WGHeader{}, "reserved"},
		{"empty", nil, WGHeader{}, "shorter than a header"},
		{"reflector probe", []byte("VCPE\x01\x00\x00\x00"), WGHeader{}, "reserved"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseWireGuard(tc.b)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseWireGuard error = %v; want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseWireGuard = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func FuzzParseWireGuard(f *testing.F) {
	f.Add(wgMsg(WGInitiation, 148, 1, 0))
	f.Add(wgMsg(WGResponse, 92, 1, 2))
	f.Add(wgMsg(WGTransport, 48, 0, 2))
	f.Add([]byte{3, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseWireGuard(b)
		if err != nil {
			return
		}
		if h.Length != len(b) || h.Type < WGInitiation || h.Type > WGTransport {
			t.Fatalf("accepted %x as %+v", b, h)
		}
	})
}

func TestSummarizeCapture(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	me := netip.MustParseAddrPort("198.18.0.11:4500")
	hub := netip.MustParseAddrPort("198.18.0.1:4500")
	out := func(ty WGType, s int) WGPacket {
		return WGPacket{Time: t0.Add(time.Duration(s) * time.Second), Outgoing: true, Src: me, Dst: hub, WGHeader: WGHeader{Type: ty}}
	}
	in := func(ty WGType, s int) WGPacket {
		return WGPacket{Time: t0.Add(time.Duration(s) * time.Second), Src: hub, Dst: me, WGHeader: WGHeader{Type: ty}}
	}
	for _, tc := range []struct {
		name          string
		pkts          []WGPacket
		leave, answer bool
		verdict       string
	}{
		{"healthy", []WGPacket{out(WGInitiation, 1), in(WGResponse, 1), out(WGTransport, 2)}, true, true, "handshakes complete"},
		{"blocked", []WGPacket{out(WGInitiation, 1), out(WGInitiation, 6)}, true, false, "no response came back"},
		{"established", []WGPacket{out(WGTransport, 1), in(WGTransport, 2)}, false, false, "transport data flows"},
		{"silent", nil, false, false, "no WireGuard packet"},
		{"cookie", []WGPacket{out(WGInitiation, 1), in(WGCookieReply, 1)}, true, false, "cookie replies"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := SummarizeCapture("wan0", 4500, t0, 10*time.Second, tc.pkts, 0)
			if r.InitiationsLeave != tc.leave || r.ResponsesComeBack != tc.answer || !strings.Contains(r.Verdict, tc.verdict) {
				t.Fatalf("got leave=%v answer=%v %q; want %v %v and %q", r.InitiationsLeave, r.ResponsesComeBack, r.Verdict, tc.leave, tc.answer, tc.verdict)
			}
		})
	}
	r := SummarizeCapture("wan0", 4500, t0, time.Second, []WGPacket{out(WGInitiation, 1), out(WGInitiation, 6)}, 0)
	if r.Sent[WGInitiation] != 2 || !r.FirstInitiation.Equal(t0.Add(time.Second)) || !r.LastInitiation.Equal(t0.Add(6*time.Second)) {
		t.Fatalf("counts/times wrong: %+v", r)
	}
}
