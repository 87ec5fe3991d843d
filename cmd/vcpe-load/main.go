// Command vcpe-load loads a controller like a large fleet: it starts
// controller replicas in this process (SQLite, or PostgreSQL with
// --database / VCPE_HUB_DATABASE), creates simulated devices, and prints
// registrations per second and the fan-out of one prefix change to every
// long-polling device. The work lives in internal/loadgen; the same
// measurements, as ratios in one run, are go test -bench Load
// ./internal/loadgen.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/openvcpe/vcpe/controller/store"
	"github.com/openvcpe/vcpe/internal/loadgen"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vcpe-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("database", os.Getenv("VCPE_HUB_DATABASE"), "postgres://USER@HOST/DB of a scratch database (its tables are written); empty: SQLite in a temporary directory")
	replicas := fs.Int("replicas", 1, "controller replicas on --database")
	devices := fs.Int("devices", 10_000, "device slots in the store during the registration run (at most 16,384)")
	regs := fs.Int("registrations", 2_000, "registrations to time")
	workers := fs.Int("workers", 8, "concurrent registering clients")
	fan := fs.Int("fanout", 1_000, "long-polling devices of one CCN for the fan-out run (0 skips it)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *db != "" && store.URLHasPassword(*db) && os.Getenv("VCPE_HUB_DATABASE") != *db {
		fmt.Fprintln(stderr, "--database: the URL carries a password, which would show in ps: use VCPE_HUB_DATABASE or PGPASSWORD")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o := loadgen.Options{Database: *db, Replicas: *replicas, Devices: *devices}
	c, err := loadgen.Start(ctx, o)
	if err != nil {
		fmt.Fprintln(stderr, "vcpe-load:", err)
		return 1
	}
	rate, err := c.RegisterAll(ctx, *regs, *workers)
	c.Close()
	if err != nil {
		fmt.Fprintln(stderr, "vcpe-load:", err)
		return 1
	}
	fmt.Fprintf(stdout, "registrations: %.0f/s (%d devices, %d replicas, %d clients)\n", rate, *devices, *replicas, *workers)
	if *fan == 0 {
		return 0
	}
	o.Devices = *fan
	if c, err = loadgen.Start(ctx, o); err != nil {
		fmt.Fprintln(stderr, "vcpe-load:", err)
		return 1
	}
	defer c.Close()
	f, err := c.FanOut(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "vcpe-load:", err)
		return 1
	}
	fmt.Fprintf(stdout, "fan-out of one prefix change to %d devices: p50 %v, p99 %v, max %v\n", f.Devices, f.P50, f.P99, f.Max)
	return 0
}
