package loadgen

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/internal/pgtest"
)

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// TestFanOutSmall runs the load generator end to end on a small cluster
// of each kind, so it stays working: 3 replicas on a real PostgreSQL, and
// SQLite; every device must see the change.
func TestFanOutSmall(t *testing.T) {
	srv := pgtest.Start(t)
	ctx := context.Background()
	for _, o := range []Options{{Devices: 40}, {Database: srv.NewDB(t), Replicas: 3, Devices: 40}} {
		c, err := Start(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.RegisterAll(ctx, 40, 4); err != nil {
			t.Fatal(err)
		}
		f, err := c.FanOut(ctx)
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		if f.Devices != 40 || f.Max <= 0 || f.Max > 10*time.Second {
			t.Errorf("%d replicas: fan-out %+v; want 40 devices within 10 s", o.Replicas, f)
		}
	}
}

// BenchmarkLoad measures, in one run so the ratios are comparable,
// registrations per second on a store of VCPE_LOAD_DEVICES devices
// (default 10,000; VCPE_LOAD_REGS registrations, default 2,000, from 8
// concurrent clients) and the fan-out of one prefix change to
// VCPE_LOAD_FANOUT long-polling devices of one CCN (default 1,000), on
// SQLite, PostgreSQL with 1 replica and with 3. Run it once:
//
//	go test -run '^$' -bench Load -benchtime 1x ./internal/loadgen
func BenchmarkLoad(b *testing.B) {
	devices := envInt("VCPE_LOAD_DEVICES", 10_000)
	regs := envInt("VCPE_LOAD_REGS", 2_000)
	fan := envInt("VCPE_LOAD_FANOUT", 1_000)
	pg := pgtest.Start(b)
	ctx := context.Background()
	var base float64
	for _, cfg := range []struct {
		name     string
		pg       bool
		replicas int
	}{{"sqlite", false, 1}, {"postgres-1", true, 1}, {"postgres-3", true, 3}} {
		b.Run(cfg.name, func(b *testing.B) {
			for b.Loop() {
				o := Options{Devices: devices, Replicas: cfg.replicas}
				if cfg.pg {
					o.Database = pg.NewDB(b)
				}
				c, err := Start(ctx, o)
				if err != nil {
					b.Fatal(err)
				}
				rate, err := c.RegisterAll(ctx, regs, 8)
				if err != nil {
					b.Fatal(err)
				}
				if cfg.replicas == 1 {
					runtime.GC()
					var ms runtime.MemStats
					runtime.ReadMemStats(&ms)
					b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MB")
				}
				c.Close()
				if base == 0 {
					base = rate
				}
				b.ReportMetric(rate, "regs/s")
				b.ReportMetric(rate/base, "regs-vs-sqlite")

				o.Devices = fan
				if cfg.pg {
					o.Database = pg.NewDB(b)
				}
				if c, err = Start(ctx, o); err != nil {
					b.Fatal(err)
				}
				f, err := c.FanOut(ctx)
				c.Close()
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(f.P50.Microseconds())/1000, "fanout-p50-ms")
				b.ReportMetric(float64(f.P99.Microseconds())/1000, "fanout-p99-ms")
				b.Logf("%s: %.0f regs/s with %d devices (%.2f× SQLite); fan-out to %d devices p50 %v p99 %v max %v",
					cfg.name, rate, devices, rate/base, f.Devices, f.P50, f.P99, f.Max)
			}
		})
	}
}
