package dataplane_test

import (
	"encoding/json"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/dataplane"
	"github.com/openvcpe/vcpe/dataplane/netnstest"
	"github.com/openvcpe/vcpe/provision"
	"github.com/openvcpe/vcpe/provision/api"
)

// BenchmarkTunnelTCP measures iperf3 TCP throughput between two namespaces
// over the raw veth (the baseline) and through two vcped in static mode,
// each the other's hub (as make bench runs them), in the same run. It also
// reports vcped's resident memory idle and after the load.
//
//	go test -run '^$' -bench TunnelTCP -benchtime 1x -count 3 ./dataplane
func BenchmarkTunnelTCP(b *testing.B) {
	left, right := netnstest.New(b), netnstest.New(b)
	netnstest.Veth(b, left, "wan", "198.18.0.11/24", right, "wan", "198.18.0.12/24")
	vcped := netnstest.Binary(b, "cmd/vcped")
	kl, kr := mustKey(b), mustKey(b)
	var dirs []string
	start := func(ns *netnstest.NS, key, peer api.Key, self, other string, ep string) int {
		dir := b.TempDir()
		st := &provision.State{SN: "bench", PrivateKey: key, Config: api.DeviceConfig{Generation: 1,
			OverlayAddr: netip.MustParsePrefix(self + "/18"), HubOverlayAddr: netip.MustParseAddr(other),
			HubPublicKey: peer.PublicKey(), HubEndpoint: netip.MustParseAddrPort(ep)}}
		if err := provision.SaveState(dir, st); err != nil {
			b.Fatal(err)
		}
		dirs = append(dirs, dir)
		return ns.Start(vcped, "--state-dir", dir, "--uapi-dir", b.TempDir()).Process.Pid
	}
	pl := start(left, kl, kr, "198.18.64.2", "198.18.64.3", "198.18.0.12:4500")
	pr := start(right, kr, kl, "198.18.64.3", "198.18.64.2", "198.18.0.11:4500")
	for _, dir := range dirs {
		deadline := time.Now().Add(10 * time.Second)
		for {
			if s, err := dataplane.ReadStatus(dir + "/" + dataplane.ControlSocket); err == nil && s.State == dataplane.StateUp {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("vcped on %s did not come up", dir)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	time.Sleep(2 * time.Second) // idle
	idle := rssMB(b, pl)
	right.Start("iperf3", "-s", "-B", "0.0.0.0")
	time.Sleep(300 * time.Millisecond)

	for _, tc := range []struct{ name, dst string }{{"veth", "198.18.0.12"}, {"vcped", "198.18.64.3"}} {
		b.Run(tc.name, func(b *testing.B) {
			var total float64
			for range b.N {
				total += iperf(b, left, tc.dst)
			}
			b.ReportMetric(total/float64(b.N), "Mbit/s")
			b.ReportMetric(0, "ns/op")
			if tc.name == "vcped" {
				b.ReportMetric(idle, "idle-RSS-MB")
				b.ReportMetric(hwmMB(b, pl), "sender-peak-RSS-MB")
				b.ReportMetric(hwmMB(b, pr), "receiver-peak-RSS-MB")
			}
		})
	}
}

func iperf(b *testing.B, ns *netnstest.NS, dst string) float64 {
	b.Helper()
	var out string
	var err error
	for range 5 {
		if out, err = ns.Try("iperf3", "-c", dst, "-t", "3", "-J"); err == nil {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	if err != nil {
		b.Fatalf("iperf3 -c %s: %v\n%s", dst, err, out)
	}
	var r struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		b.Fatalf("iperf3 json: %v", err)
	}
	return r.End.SumReceived.BitsPerSecond / 1e6
}

func procStatusMB(b *testing.B, pid int, field string) float64 {
	b.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == field+":" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func rssMB(b *testing.B, pid int) float64 { return procStatusMB(b, pid, "VmRSS") }
func hwmMB(b *testing.B, pid int) float64 { return procStatusMB(b, pid, "VmHWM") }
