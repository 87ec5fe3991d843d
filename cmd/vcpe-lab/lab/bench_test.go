package lab

import (
	"context"
	"encoding/json"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/diag"
	"github.com/openvcpe/vcpe/provision"
)

// BenchmarkInstallToFirstProbe measures, in the lab, the time from the
// start of `vcpe install --yes` to the first probe answered through the
// tunnel, and each step's share of it. Each iteration uninstalls first
// (not timed). Run it with make bench or:
//
//	sudo go test -run '^$' -bench InstallToFirstProbe -benchtime 5x ./cmd/vcpe-lab/lab
func BenchmarkInstallToFirstProbe(b *testing.B) {
	l := testLab(b)
	bins := testBinaries(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	fp, err := l.StartHub(ctx, bins)
	if err != nil {
		b.Fatal(err)
	}
	plan := twoSites()
	issued, err := l.CreateInstances(ctx, bins, plan)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := l.Install(ctx, bins, fp, issued[1], []netip.Prefix{LANB}); err != nil {
		b.Fatal(err)
	}
	var total []float64
	steps := map[provision.StepID][]float64{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if _, err := l.Run(ctx, "site-a", bins.Vcpe, "uninstall", "--yes", "--state-dir", l.DeviceState("site-a")); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		out, err := l.Install(ctx, bins, fp, issued[0], []netip.Prefix{LANA})
		if err != nil {
			b.Fatal(err)
		}
		var res struct {
			Steps        []provision.StepResult `json:"steps"`
			Connectivity []diag.Result          `json:"connectivity"`
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Steps) == 0 || len(res.Connectivity) == 0 {
			b.Fatalf("install summary: %v\n%s", err, out)
		}
		var first time.Time
		for _, s := range res.Connectivity[0].Samples {
			if s.Replied() && (first.IsZero() || s.Received.Before(first)) {
				first = s.Received
			}
		}
		if first.IsZero() {
			b.Fatalf("no probe answered through the tunnel:\n%s", out)
		}
		total = append(total, first.Sub(res.Steps[0].Started).Seconds())
		for _, s := range res.Steps {
			steps[s.Step] = append(steps[s.Step], s.DurationMS/1000)
		}
	}
	b.StopTimer()
	b.ReportMetric(median(total), "s-to-first-probe")
	b.ReportMetric(slices.Max(total), "s-worst")
	for id, d := range steps {
		b.Logf("step %-12s median %.3f s", id, median(d))
	}
	b.Logf("install → first probe answered: median %.3f s, worst %.3f s over %d runs", median(total), slices.Max(total), len(total))
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
