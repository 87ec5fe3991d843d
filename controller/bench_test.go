package controller_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/controller"
	"github.com/openvcpe/vcpe/controller/controllertest"
	"github.com/openvcpe/vcpe/internal/device"
)

type benchDevice struct {
	sn, key string
	pub     api.Key
}

type benchFixture struct {
	srv  *controller.Server
	dir  string
	devs []benchDevice
}

var benchFixtures = map[int]*benchFixture{}

// fixture returns a controller on a SQLite store in a temporary directory
// holding n devices (n/2 instances of 2 slots), made once per size.
func fixture(b *testing.B, n int) *benchFixture {
	if f, ok := benchFixtures[n]; ok {
		return f
	}
	dir, err := os.MkdirTemp("", "vcpe-bench-")
	if err != nil {
		b.Fatal(err)
	}
	srv, err := controller.New(context.Background(), controller.Options{
		StateDir: dir, HubEndpoint: netip.MustParseAddrPort("198.18.0.1:4500"),
		CloudPrefixes: []netip.Prefix{netip.MustParsePrefix("198.19.100.0/24")},
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	f := &benchFixture{srv: srv, dir: dir}
	for i := range n / 2 {
		res, err := srv.CreateInstance(context.Background(), "bench", controller.CreateInstanceRequest{Name: fmt.Sprintf("site%05d", i)})
		if err != nil {
			b.Fatal(err)
		}
		for _, d := range res.Devices {
			k, _ := api.GeneratePrivateKey()
			f.devs = append(f.devs, benchDevice{sn: d.SN, key: d.Key, pub: k.PublicKey()})
		}
	}
	benchFixtures[n] = f
	return f
}

func TestMain(m *testing.M) {
	code := m.Run()
	// The fixtures outlive one benchmark function (b.N grows over several
	// calls), so they are removed here, with the store and CA key in them.
	for _, f := range benchFixtures {
		f.srv.Close()
		os.RemoveAll(f.dir)
	}
	os.Exit(code)
}

// BenchmarkRegister measures whole registrations (challenge, proof check,
// slot binding committed to SQLite, device config) against a store holding
// 100 or 10,000 devices. Each device registers with its own key; past the
// first round the same devices register again (same work, same write).
// heap-MB and rss-MB are the controller's memory with every device
// registered.
func BenchmarkRegister(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("devices=%d", n), func(b *testing.B) {
			f := fixture(b, n)
			ctx := context.Background()
			adv := func(i int) []netip.Prefix {
				return []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i / 2 >> 8), byte(i / 2), 0}), 24)}
			}
			// Every device registered once before measuring memory.
			for i, d := range f.devs {
				if _, err := register1(ctx, f.srv, d, adv(i)); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			start := time.Now()
			for i := 0; b.Loop(); i++ {
				j := i % len(f.devs)
				if _, err := register1(ctx, f.srv, f.devs[j], adv(j)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "regs/s")
			b.StopTimer()
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MB")
			if rss, ok := vmRSS(); ok {
				b.ReportMetric(rss/(1<<20), "rss-MB")
			}
			if got := len(f.srv.HubConfig().Peers); got != n {
				b.Fatalf("%d hub peers; want %d", got, n)
			}
		})
	}
}

func register1(ctx context.Context, srv *controller.Server, d benchDevice, adv []netip.Prefix) (api.RegisterResponse, error) {
	from := netip.MustParseAddr("198.18.0.11")
	ch, err := srv.Challenge(from, d.sn)
	if err != nil {
		return api.RegisterResponse{}, err
	}
	return srv.Register(ctx, from, api.RegisterRequest{
		SN: d.sn, Nonce: ch.Nonce, PublicKey: d.pub, Advertise: adv,
		Proof: api.RegistrationProof(api.DeviceKeySecret(d.key), ch.Nonce, d.sn, d.pub, adv),
	})
}

// vmRSS is the process's resident set size from /proc (Linux only).
func vmRSS() (float64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			f := strings.Fields(v)
			if kb, err := strconv.ParseFloat(f[0], 64); err == nil && len(f) == 2 && f[1] == "kB" {
				return kb * 1024, true
			}
		}
	}
	return 0, false
}

var benchSizes = []int{100, 10_000}

func init() {
	if os.Getenv("VCPE_BENCH_SMALL") != "" {
		benchSizes = []int{100, 2000}
	}
}

// BenchmarkRegisterHTTPS measures registrations through the whole device
// API (pinned TLS over in-memory connections, JSON, two round trips) with
// 1,000 devices, for comparison with BenchmarkRegister's direct calls.
func BenchmarkRegisterHTTPS(b *testing.B) {
	h := controllertest.Serve(b, func(o *controller.Options) { o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil)) })
	var devs []benchDevice
	for i := range 500 {
		res, err := h.CreateInstance(context.Background(), "bench", controller.CreateInstanceRequest{Name: fmt.Sprintf("site%05d", i)})
		if err != nil {
			b.Fatal(err)
		}
		for _, d := range res.Devices {
			k, _ := api.GeneratePrivateKey()
			devs = append(devs, benchDevice{sn: d.SN, key: d.Key, pub: k.PublicKey()})
		}
	}
	c := h.Client(netip.MustParseAddr("198.18.0.11"))
	ctx := context.Background()
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		d := devs[i%len(devs)]
		adv := []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i % len(devs) / 2 >> 8), byte(i % len(devs) / 2), 0}), 24)}
		if _, err := c.Register(ctx, device.RegisterRequest{SN: d.sn, Key: d.key, PublicKey: d.pub, Advertise: adv}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "regs/s")
}
