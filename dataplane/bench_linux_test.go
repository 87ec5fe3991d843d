package dataplane_test

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/dataplane"
	"github.com/openvcpe/vcpe/internal/device"
	"github.com/openvcpe/vcpe/internal/namespace"
)

// BenchmarkTunnelTCP measures iperf3 TCP throughput between two namespaces
// in the same run over: the raw veth, upstream wireguard-go (the main
// package of the same module version, configured through its UAPI socket),
// and two vcped in static mode, each the other's hub (as make bench runs
// them). It also reports vcped's resident memory idle and at its peak.
//
//	go test -run '^$' -bench TunnelTCP -benchtime 1x -count 3 ./dataplane
func BenchmarkTunnelTCP(b *testing.B) {
	left, right := namespace.New(b), namespace.New(b)
	namespace.Veth(b, left, "wan", "198.18.0.11/24", right, "wan", "198.18.0.12/24")
	vcped := namespace.Binary(b, "cmd/vcped")
	kl, kr := mustKey(b), mustKey(b)
	var dirs []string
	start := func(ns *namespace.NS, key, peer api.Key, self, other string, ep string) int {
		dir := b.TempDir()
		st := &device.State{SN: "bench", PrivateKey: key, Config: api.DeviceConfig{Generation: 1,
			OverlayAddr: netip.MustParsePrefix(self + "/18"), HubOverlayAddr: netip.MustParseAddr(other),
			HubPublicKey: peer.PublicKey(), HubEndpoint: netip.MustParseAddrPort(ep)}}
		if err := device.SaveState(dir, st); err != nil {
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
	upstreamWG(b, left, right)
	right.Start("iperf3", "-s", "-B", "0.0.0.0")
	time.Sleep(300 * time.Millisecond)

	for _, tc := range []struct{ name, dst string }{{"veth", "198.18.0.12"}, {"wireguard-go", "198.18.80.3"}, {"vcped", "198.18.64.3"}} {
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

func iperf(b *testing.B, ns *namespace.NS, dst string) float64 {
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

// upstreamWG runs the upstream wireguard-go binary in both namespaces on
// UDP 4501 with the overlay 198.18.80.0/24.
func upstreamWG(b *testing.B, left, right *namespace.NS) {
	b.Helper()
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(b.TempDir(), "wireguard-go")
	build := exec.Command("go", "build", "-o", bin, "golang.zx2c4.com/wireguard")
	build.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build upstream wireguard-go: %v\n%s", err, out)
	}
	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	kl, kr := mustKey(b), mustKey(b)
	for i, side := range []struct {
		ns        *namespace.NS
		key, peer api.Key
		addr, ep  string
	}{{left, kl, kr, "198.18.80.2/24", "198.18.0.12:4501"}, {right, kr, kl, "198.18.80.3/24", "198.18.0.11:4501"}} {
		name := fmt.Sprintf("vcpbw%d%x", i, rnd)
		side.ns.Start("env", "LOG_LEVEL=error", bin, "-f", name)
		sock := filepath.Join(dataplane.DefaultUAPIDir, name+".sock")
		b.Cleanup(func() { os.Remove(sock) })
		var c net.Conn
		for range 50 {
			if c, err = net.Dial("unix", sock); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			b.Fatalf("wireguard-go UAPI: %v", err)
		}
		pk := side.peer.PublicKey()
		fmt.Fprintf(c, "set=1\nprivate_key=%s\nlisten_port=4501\npublic_key=%s\nendpoint=%s\nallowed_ip=198.18.80.0/24\n\n",
			hex.EncodeToString(side.key[:]), hex.EncodeToString(pk[:]), side.ep)
		reply, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if reply != "errno=0\n" {
			b.Fatalf("wireguard-go UAPI set: %q", reply)
		}
		side.ns.Run("ip", "addr", "add", side.addr, "dev", name)
		side.ns.Run("ip", "link", "set", name, "up")
	}
}
