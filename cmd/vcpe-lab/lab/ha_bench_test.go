package lab

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/api"
)

// BenchmarkHAFailover measures the failover gap of the 100 packets/s
// probe stream for each fault, b.N runs each (go test -run '^$' -bench
// HAFailover -benchtime 10x ./cmd/vcpe-lab/lab/), and reports the median
// and worst gap, and as a baseline the longest gap of the same stream over
// the same window without a fault.
func BenchmarkHAFailover(b *testing.B) {
	l := testLab(b)
	bins := testBinaries(b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	h := startHA(b, ctx, l, bins)
	defer func() {
		if b.Failed() {
			h.logs(b)
		}
	}()
	h.waitRole(b, "site-a", api.RoleActive, 5*time.Second)
	s := startStream(b, ctx, l)
	if err := s.flowing(10 * time.Second); err != nil {
		b.Fatal(err)
	}
	run := func(name string, fault, recover func(act string)) []time.Duration {
		var gaps []time.Duration
		for i := 0; i < b.N; i++ {
			if err := s.flowing(10 * time.Second); err != nil {
				b.Fatal(err)
			}
			act := h.active()
			if act == "" {
				b.Fatal("no active device")
			}
			t0 := time.Now()
			fault(act)
			g, err := s.gap(t0, 5*time.Second)
			if err != nil {
				b.Fatalf("%s run %d: %v", name, i, err)
			}
			gaps = append(gaps, g)
			h.waitRole(b, other(act), api.RoleActive, 2*time.Second)
			recover(act)
			h.waitRole(b, act, api.RoleStandby, 10*time.Second)
			if _, err := l.WaitTunnel(ctx, bins, act); err != nil {
				b.Fatal(err)
			}
		}
		slices.Sort(gaps)
		return gaps
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	report := func(name string, gaps []time.Duration) {
		b.ReportMetric(ms(gaps[len(gaps)/2]), name+"-median-ms")
		b.ReportMetric(ms(gaps[len(gaps)-1]), name+"-worst-ms")
	}
	var base []time.Duration
	for i := 0; i < b.N; i++ {
		g, err := s.gap(time.Now(), 5*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		base = append(base, g)
	}
	slices.Sort(base)
	report("baseline", base)
	sh := func(node string, argv ...string) {
		if out, err := l.Run(ctx, node, argv...); err != nil {
			b.Fatalf("%s %v: %v\n%s", node, argv, err, out)
		}
	}
	report("kill9", run("kill -9", func(act string) { h.kill(b, act) }, func(act string) { h.install(b, ctx, act) }))
	report("wancut", run("WAN cut", func(act string) { sh(act, "ip", "link", "set", "wan0", "down") }, func(act string) {
		sh(act, "ip", "link", "set", "wan0", "up")
		sh(act, "ip", "route", "replace", "default", "via", "198.18.0.254")
	}))
	report("gray", run("gray failure", func(act string) { sh(act, "ip", "link", "set", "lan0", "down") },
		func(act string) { sh(act, "ip", "link", "set", "lan0", "up") }))
}
