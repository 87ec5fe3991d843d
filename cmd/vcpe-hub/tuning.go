package main

import (
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/spf13/pflag"

	"github.com/openvcpe/vcpe/cmd/internal/cli"
	"github.com/openvcpe/vcpe/dataplane"
)

// tuningOptions are serve's Go runtime flags.
type tuningOptions struct {
	gomaxprocs  int
	memoryLimit int64
	cpuProfile  string
}

func addTuningFlags(f *pflag.FlagSet, t *tuningOptions) {
	f.IntVar(&t.gomaxprocs, "gomaxprocs", 0, "Go processors (0: $GOMAXPROCS if set, else half the CPUs when this process carries tunnels, leaving the rest to the kernel's packet processing; all of them for --role controller)")
	f.Int64Var(&t.memoryLimit, "memory-limit", 0, fmt.Sprintf("soft memory limit in MiB (0: $GOMEMLIMIT if set, else %d when this process carries tunnels; none for --role controller)", dataplane.DefaultHubMemoryLimitMiB))
	f.StringVar(&t.cpuProfile, "cpu-profile", "", "write a CPU profile (pprof) of this process to this file when it stops; make pgo builds vcpe-hub from such profiles")
}

// choose picks GOMAXPROCS and the soft memory limit. A process with the
// hub dataplane gets vcped's defaults, which make bench's hub case
// measured for the hub too (see dataplane.AutoProcs and
// DefaultHubMemoryLimitMiB); a controller alone keeps the runtime's own
// unless told. available is runtime.GOMAXPROCS(0) before any change.
func (t tuningOptions) choose(dataplaneOn bool, available int, envProcs, envMem string) (dataplane.Procs, dataplane.MemoryLimit, error) {
	procs, err := dataplane.ChooseProcs(t.gomaxprocs, envProcs, available)
	if err != nil {
		return procs, dataplane.MemoryLimit{}, cli.Usagef("%v", err)
	}
	mem, err := dataplane.ChooseMemoryLimit(t.memoryLimit, envMem, dataplane.DefaultHubMemoryLimitMiB)
	if err != nil {
		return procs, mem, cli.Usagef("%v", err)
	}
	if !dataplaneOn && procs.Source == "auto" {
		procs.N = procs.Available
	}
	if !dataplaneOn && mem.Source == "auto" {
		mem = dataplane.MemoryLimit{Source: "none"}
	}
	return procs, mem, nil
}

// apply sets what choose picked and logs it.
func (t tuningOptions) apply(dataplaneOn bool, log *slog.Logger) error {
	procs, mem, err := t.choose(dataplaneOn, runtime.GOMAXPROCS(0), os.Getenv("GOMAXPROCS"), os.Getenv("GOMEMLIMIT"))
	if err != nil {
		return err
	}
	runtime.GOMAXPROCS(procs.N)
	if mem.MiB > 0 {
		debug.SetMemoryLimit(mem.MiB << 20)
	}
	log.Info("go processors", "gomaxprocs", procs.N, "available", procs.Available, "source", procs.Source)
	if lim := debug.SetMemoryLimit(-1); lim < 1<<50 {
		log.Info("soft memory limit", "limit_mib", lim>>20, "source", mem.Source)
	} else {
		log.Info("soft memory limit", "limit_mib", "none", "source", mem.Source)
	}
	return nil
}
