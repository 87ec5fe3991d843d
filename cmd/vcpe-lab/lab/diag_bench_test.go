package lab

import (
	"context"
	"strings"
	"testing"
	"time"
)

// BenchmarkDiag measures the wall time of a default `vcpe diag` run on
// site-a of the lab: healthy, under 60% random loss on the WAN, and with
// UDP 4500 dropped at the hub, each as a ratio to a baseline measured in
// the same run: one bare probe series of the shape diag sends (vcpe
// probe udp to the hub's reflector, 20 every 50 ms). Run it with:
//
//	sudo go test -run '^$' -bench Diag -benchtime 5x ./cmd/vcpe-lab/lab
func BenchmarkDiag(b *testing.B) {
	l := testLab(b)
	bins := testBinaries(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := l.StartSystem(ctx, bins, twoSites()); err != nil {
		b.Fatal(err)
	}
	const node = "site-a"
	timed := func(argv ...string) float64 {
		start := time.Now()
		l.Command(ctx, node, argv...).Run() // exit 1 under a fault is expected
		return time.Since(start).Seconds()
	}
	baseline := func() float64 {
		return timed(bins.Vcpe, "probe", "udp", "198.18.0.1:12345", "-c", "20", "-i", "50ms")
	}
	diagRun := func() float64 {
		return timed(bins.Vcpe, "diag", "--json", "--state-dir", l.DeviceState(node))
	}
	nft := func(n, script string) {
		c := l.Command(ctx, n, "nft", "-f", "-")
		c.Stdin = strings.NewReader(script)
		if out, err := c.CombinedOutput(); err != nil {
			b.Fatalf("nft: %v: %s", err, out)
		}
	}
	for _, c := range []struct {
		name          string
		plant, undo   func()
		budgetSeconds float64
	}{
		{"healthy", func() {}, func() {}, 3},
		{"wan-loss-60", func() {
			nft(node, "table netdev vcpebloss {\nchain in {\ntype filter hook ingress device \"wan0\" priority 0\nnumgen random mod 100 < 60 drop\n}\n}\n")
		}, func() { l.Run(ctx, node, "nft", "delete", "table", "netdev", "vcpebloss") }, 10},
		{"udp4500-dropped-at-hub", func() {
			nft("hub", "table inet vcpeb4500 {\nchain in {\ntype filter hook input priority 0\nip saddr 198.18.0.11 udp dport 4500 drop\n}\n}\n")
		}, func() { l.Run(ctx, "hub", "nft", "delete", "table", "inet", "vcpeb4500") }, 10},
	} {
		b.Run(c.name, func(b *testing.B) {
			c.plant()
			defer c.undo()
			var runs, base []float64
			for i := 0; i < b.N; i++ {
				base = append(base, baseline())
				runs = append(runs, diagRun())
			}
			b.ReportMetric(median(runs), "s/diag")
			b.ReportMetric(median(runs)/median(base), "x-probe-series")
			b.Logf("%s: vcpe diag median %.2f s (budget %.0f s), baseline probe series median %.2f s, ratio %.2f",
				c.name, median(runs), c.budgetSeconds, median(base), median(runs)/median(base))
		})
	}
}
