package main

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/diag"
)

func TestProbeUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"probe", "icmp"},
		{"probe", "icmp", "198.18.0.1", "-c", "0"},
		{"probe", "icmp", "198.18.0.1", "-i", "0s"},
		{"probe", "icmp", "198.18.0.1", "--size", "10"},
		{"probe", "icmp", "198.18.0.1", "--ttl", "256"},
		{"probe", "icmp", "198.18.0.1", "--source", "2001:db8::1"},
		{"probe", "icmp", "2001:db8::1"},
		{"probe", "udp", "198.18.0.1:0"},
		{"probe", "udp", "198.18.0.1", "--size", "47"},
		{"probe", "mtu", "198.18.0.1", "--max", "10"},
		{"probe", "mtu", "198.18.0.1", "--timeout", "0s"},
		{"probe", "reflect", "--rate", "0"},
		{"probe", "reflect", "--listen", "[2001:db8::1]:12345"},
	} {
		if code := run(args); code != 2 {
			t.Errorf("vcpe %s: exit %d; want 2", strings.Join(args, " "), code)
		}
	}
}

func TestSampleLines(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	hub := netip.MustParseAddr("198.18.0.1")
	rt := netip.MustParseAddr("198.18.0.2")
	reply := diag.Sample{Seq: 3, Sent: at, Received: at.Add(1500 * time.Microsecond), RTT: 1500 * time.Microsecond, Size: 84, From: hub}
	dup := reply
	dup.Duplicate = true
	frag := diag.Sample{Seq: 4, Sent: at, Received: at, Size: 1400, ICMP: &diag.ICMPError{Type: 3, Code: 4, Name: "fragmentation needed", From: rt, MTU: 1300}}
	for _, tc := range []struct {
		s    diag.Sample
		want string
	}{
		{reply, "84 bytes from 198.18.0.1: seq=3 time=1.500 ms"},
		{dup, "84 bytes from 198.18.0.1: seq=3 time=1.500 ms (DUP!)"},
		{frag, "from 198.18.0.2: seq=4 fragmentation needed (next-hop MTU 1300)"},
		{diag.Sample{Seq: 5, SendError: "message too long"}, "seq=5 not sent: message too long"},
		{diag.Sample{Seq: 6, Sent: at}, "seq=6 no reply"},
	} {
		if got := sampleLine(tc.s); got != tc.want {
			t.Errorf("sampleLine = %q; want %q", got, tc.want)
		}
	}
	var b bytes.Buffer
	res := diag.Result{Protocol: "udp", Target: hub, Port: 12345, Samples: []diag.Sample{reply, dup}}
	res.Stats = diag.Summarize(res.Samples)
	printSummary(&b, res)
	want := "--- 198.18.0.1:12345 udp probe statistics ---\n" +
		"1 sent, 1 received, 0.0% loss, 0 errors, 1 duplicates, 0 reordered\n" +
		"rtt min/avg/max/p50/p95 = 1.500/1.500/1.500/1.500/1.500 ms, jitter 0.000 ms\n"
	if b.String() != want {
		t.Errorf("summary:\n%s\nwant:\n%s", b.String(), want)
	}
}
