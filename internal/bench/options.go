package bench

import (
	"fmt"
	"log/slog"
	"time"
)

// Options configure a bench run.
type Options struct {
	Bins Binaries
	// NewNamespace creates a fresh, empty network namespace with loopback
	// up and returns its name; its owner removes it afterwards. Each
	// variant takes two.
	NewNamespace func() (string, error)
	// TempDir holds the vcped state directories.
	TempDir string
	// ProfileDir, when set, gets a CPU profile of every vcped and vcpe-hub
	// the bench starts (their --cpu-profile), named VARIANT-ROLE.pprof;
	// make pgo builds the daemons from them.
	ProfileDir string

	Variants []string // specs (see ParseSpec); default: raw, upstream, vcpe
	Cases    []Case   // default: DefaultCases

	Runs         int // runs per cell; the median is reported
	Seconds      int // length of a measured run
	Omit         int // TCP warm-up seconds iperf3 leaves out
	ProbeSeconds int // length of a UDP search probe
	Search       Search
	Quick        bool

	Log *slog.Logger
	Now func() time.Time
}

// Full and Quick are the settings of make bench and BENCH_QUICK=1.
var (
	FullSettings  = Settings{Runs: 3, Seconds: 4, Omit: 1, ProbeSeconds: 2, Search: DefaultSearch}
	QuickSettings = Settings{Runs: 1, Seconds: 2, Omit: 0, ProbeSeconds: 1, Search: Search{MaxProbes: 4, MaxLoss: 1, Tolerance: 0.1}, Quick: true}
)

// Apply copies the run-length settings into o.
func (o *Options) Apply(s Settings) {
	o.Runs, o.Seconds, o.Omit, o.ProbeSeconds, o.Search, o.Quick = s.Runs, s.Seconds, s.Omit, s.ProbeSeconds, s.Search, s.Quick
}

func (o *Options) check() error {
	if o.NewNamespace == nil {
		return fmt.Errorf("bench: Options.NewNamespace is nil")
	}
	if o.Runs < 1 || o.Seconds < 1 || o.ProbeSeconds < 1 || o.Omit < 0 {
		return fmt.Errorf("bench: runs (%d), seconds (%d) and probe seconds (%d) must be at least 1", o.Runs, o.Seconds, o.ProbeSeconds)
	}
	if len(o.Variants) == 0 {
		o.Variants = []string{VariantRaw, VariantUpstream, VariantVcpe}
	}
	seen := map[string]bool{}
	for _, v := range o.Variants {
		if _, err := ParseSpec(v); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		if seen[v] {
			return fmt.Errorf("bench: variant %q given twice", v)
		}
		seen[v] = true
	}
	if len(o.Cases) == 0 {
		o.Cases = DefaultCases()
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// EstimateSeconds is a rough upper bound of how long a run with these
// options takes, for the progress log.
func (o *Options) EstimateSeconds() int {
	n := len(o.Variants)
	if n == 0 {
		n = 3
	}
	cases := o.Cases
	if len(cases) == 0 {
		cases = DefaultCases()
	}
	total := 0
	for _, c := range cases {
		if c.Proto == "udp" {
			total += n * o.Runs * o.Search.MaxProbes * (o.ProbeSeconds + 1)
		} else {
			total += n * o.Runs * (o.Seconds + o.Omit + 1)
		}
	}
	return total + 5*n
}
