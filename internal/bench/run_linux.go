package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/openvcpe/vcpe/internal/namespace"
)

// Run sets up every variant, measures every case on each, interleaving the
// variants run by run so that load from elsewhere on the machine hits them
// alike, and returns the summarized report. A variant that cannot be set
// up, or a case that fails on it, becomes an error row, never a number.
// On cancellation it returns what it has so far with the context's error.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	start := o.Now()
	rep := &Report{
		Started: start,
		Host:    hostInfo(ctx, o.Bins),
		Settings: Settings{Runs: o.Runs, Seconds: o.Seconds, Omit: o.Omit, ProbeSeconds: o.ProbeSeconds,
			Search: o.Search, Quick: o.Quick},
	}
	topos := map[string]*topo{}
	hubs := map[string]*hubTopo{}
	hubErrs := map[string]string{}
	finish := func(err error) (*Report, error) {
		for i := range rep.Variants {
			if t := topos[rep.Variants[i].Name]; t != nil {
				rep.Variants[i].Memory = t.memory()
			}
			if t := hubs[rep.Variants[i].Name]; t != nil {
				rep.Variants[i].Memory = append(rep.Variants[i].Memory, t.memory()...)
			}
		}
		rep.Seconds = o.Now().Sub(start).Seconds()
		rep.Summarize()
		return rep, err
	}
	defer func() {
		for _, t := range topos {
			t.close()
		}
		for _, t := range hubs {
			t.close()
		}
	}()
	var live []string
	for _, v := range o.Variants {
		spec, _ := ParseSpec(v) // checked by o.check
		info := VariantInfo{Name: v, Title: spec.Title()}
		if spec.Base == VariantVcpe && o.Bins.Vcped == "" {
			info.Error = o.Bins.VcpedErr
			if info.Error == "" {
				info.Error = "not available: vcped was not built"
			}
			o.Log.Warn("variant not available", "variant", v, "err", info.Error)
			rep.Variants = append(rep.Variants, info)
			continue
		}
		if !slices.ContainsFunc(o.Cases, func(c Case) bool { return c.Sites == 0 }) {
			// Only hub cases: the two-end topology is not needed.
			live = append(live, v)
			rep.Variants = append(rep.Variants, info)
			continue
		}
		o.Log.Info("setting up", "variant", v)
		t, err := setup(ctx, &o, spec)
		if err != nil {
			if ctx.Err() != nil {
				return finish(ctx.Err())
			}
			info.Error = err.Error()
			o.Log.Warn("variant not available", "variant", v, "err", err)
		} else {
			topos[v] = t
			live = append(live, v)
			info.Notes = t.notes(ctx)
		}
		rep.Variants = append(rep.Variants, info)
	}
	o.Log.Info("measuring", "variants", strings.Join(live, ","), "cases", len(o.Cases), "estimate", (time.Duration(o.EstimateSeconds()) * time.Second).String())

	for _, c := range o.Cases {
		row := Row{Case: c, Name: c.String()}
		for _, info := range rep.Variants {
			row.Results = append(row.Results, Result{Variant: info.Name, Error: info.Error})
		}
		res := func(v string) *Result { return row.result(v) }
		targets := map[string]measurer{}
		for _, v := range live {
			if topos[v] != nil {
				targets[v] = topos[v]
			}
		}
		if c.Sites > 0 {
			// The hub case has a topology of its own per variant, made
			// the first time a hub row needs it.
			for _, v := range live {
				if hubs[v] == nil && hubErrs[v] == "" {
					spec, _ := ParseSpec(v)
					o.Log.Info("setting up the hub case", "variant", v, "sites", c.Sites)
					t, err := setupHub(ctx, &o, spec, c.Sites)
					if err != nil {
						if ctx.Err() != nil {
							return finish(ctx.Err())
						}
						hubErrs[v] = err.Error()
						o.Log.Warn("hub case not available", "variant", v, "err", err)
					} else {
						hubs[v] = t
					}
				}
				if hubErrs[v] != "" {
					res(v).Error = hubErrs[v]
				}
				targets[v] = hubs[v]
			}
		}
		for i := range o.Runs {
			// Rotate who goes first, so no variant always follows another.
			order := append(slices.Clone(live[i%max(1, len(live)):]), live[:i%max(1, len(live))]...)
			var err error
			if c.Proto == "udp" {
				err = searchUDP(ctx, &o, c, order, targets, res, i+1, i == o.Runs-1)
			} else {
				err = measureTCP(ctx, &o, c, order, targets, res, i+1, i == o.Runs-1)
			}
			if err != nil {
				rep.Rows = append(rep.Rows, row)
				return finish(err)
			}
		}
		rep.Rows = append(rep.Rows, row)
	}
	return finish(nil)
}

// measureTCP runs round (from 1) of TCP measurements: one on every variant
// in order. A failed run is recorded on its result; only the context's
// error is returned.
func measureTCP(ctx context.Context, o *Options, c Case, order []string, topos map[string]measurer, res func(string) *Result, round int, last bool) error {
	for _, v := range order {
		r := res(v)
		if r.Error != "" {
			continue
		}
		run, err := topos[v].iperf(ctx, c, o.Seconds, o.Omit, 0)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			r.fail(o, c, err, last)
			continue
		}
		run.Round = round
		r.Runs = append(r.Runs, run)
		o.Log.Info("run", "variant", v, "case", c.String(), "n", len(r.Runs), "mbps", fmt.Sprintf("%.0f", run.BitsPerSecond/1e6))
	}
	return nil
}

// searchUDP runs round (from 1) of UDP searches: one search for the
// highest lossless UDP rate on every variant, the variants taking turns
// probe by probe. The best passing probe of each search is that variant's
// sample for this round. A search that fails is recorded on its result;
// only the context's error is returned.
func searchUDP(ctx context.Context, o *Options, c Case, order []string, topos map[string]measurer, res func(string) *Result, round int, last bool) error {
	searchers := map[string]*Searcher{}
	samples := map[string][]Sample{}
	for _, v := range order {
		if res(v).Error == "" {
			searchers[v] = o.Search.Start()
		}
	}
	for {
		probed := false
		for _, v := range order {
			sr := searchers[v]
			if sr == nil {
				continue
			}
			rate, more := sr.Next()
			if !more {
				continue
			}
			probed = true
			run, err := topos[v].iperf(ctx, c, o.ProbeSeconds, 0, rate)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				s, _ := sr.Result()
				res(v).Searches = append(res(v).Searches, s)
				res(v).fail(o, c, fmt.Errorf("udp search: probe at %.0f Mbit/s: %w", rate/1e6, err), last)
				delete(searchers, v)
				continue
			}
			run.Offered = rate
			samples[v] = append(samples[v], run)
			sr.Observe(rate, run.Measurement)
			sr.AnnotateDrops(run.Drops)
		}
		if !probed {
			break
		}
	}
	for _, v := range order {
		sr := searchers[v]
		if sr == nil {
			continue
		}
		s, err := sr.Result()
		r := res(v)
		r.Searches = append(r.Searches, s)
		if err != nil {
			r.fail(o, c, fmt.Errorf("udp search: %w", err), last)
			continue
		}
		best := samples[v][s.Best]
		best.Round = round
		r.Runs = append(r.Runs, best)
		o.Log.Info("udp search", "variant", v, "case", c.String(), "n", len(r.Runs), "mbps", fmt.Sprintf("%.0f", best.BitsPerSecond/1e6), "loss", fmt.Sprintf("%.2f", best.LostPercent), "sender_bound", s.SenderBound, "probes", len(s.Steps))
	}
	return nil
}

// fail records a failed run; after the last run, a result without any
// sample becomes an error row.
func (r *Result) fail(o *Options, c Case, err error, last bool) {
	o.Log.Warn("run failed", "variant", r.Variant, "case", c.String(), "err", err)
	r.Failures = append(r.Failures, err.Error())
	if last && len(r.Runs) == 0 {
		r.Error = err.Error()
	}
}

// measurer is what a case is measured on: the two-end topology of a
// variant, or its hub case.
type measurer interface {
	iperf(ctx context.Context, c Case, seconds, omit int, rate float64) (Sample, error)
}

// iperf runs one iperf3 client in A against the server in B and measures
// the CPU every process used meanwhile.
func (t *topo) iperf(ctx context.Context, c Case, seconds, omit int, rate float64) (Sample, error) {
	for _, d := range t.daemons {
		if !d.alive() {
			return Sample{}, fmt.Errorf("%s end %s exited: %s", d.name, d.role, lastLine(d.output()))
		}
	}
	if !t.server.alive() {
		if err := t.restartServer(); err != nil {
			return Sample{}, err
		}
	}
	watched := append([]*proc{t.server}, t.daemons...)
	before := make([]uint64, len(watched))
	for i, p := range watched {
		n, err := procTicks(p.pid())
		if err != nil {
			return Sample{}, err
		}
		before[i] = n
	}
	hostBusy0, hostTotal0, err := hostTicks()
	if err != nil {
		return Sample{}, err
	}
	var drops0 Counters
	if c.Proto == "udp" {
		if drops0, err = t.counters(ctx); err != nil {
			return Sample{}, err
		}
	}

	cctx, cancel := context.WithTimeout(ctx, time.Duration(seconds+omit+20)*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := namespace.Command(cctx, t.a, append([]string{"iperf3"}, IperfArgs(c, t.target, seconds, omit, rate)...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}

	stopSampling := sampleEvery(func() { t.mems.sample(t.daemons) })
	began := time.Now()
	runErr := cmd.Run()
	wall := time.Since(began)
	stopSampling()

	m, perr := ParseIperf(stdout.Bytes())
	if perr != nil {
		if runErr != nil && stdout.Len() == 0 {
			perr = fmt.Errorf("iperf3 %s: %w: %s", c, runErr, strings.TrimSpace(stderr.String()))
		}
		// A failed run can leave the server stuck on its old test.
		if err := t.restartServer(); err != nil {
			return Sample{}, errors.Join(perr, err)
		}
		return Sample{}, perr
	}

	run := Sample{Measurement: m, Seconds: wall.Seconds()}
	pct := func(ticks uint64) float64 { return 100 * float64(ticks) / ClockTicks / wall.Seconds() }
	for i, p := range watched {
		n, err := procTicks(p.pid())
		if err != nil {
			return Sample{}, err
		}
		run.CPU = append(run.CPU, ProcCPU{Role: p.role, Percent: pct(n - before[i])})
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		used := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		run.CPU = append(run.CPU, ProcCPU{Role: "iperf3-client", Percent: 100 * used.Seconds() / wall.Seconds()})
	}
	hostBusy1, hostTotal1, err := hostTicks()
	if err != nil {
		return Sample{}, err
	}
	if dt := hostTotal1 - hostTotal0; dt > 0 {
		run.HostCPU = 100 * float64(runtime.NumCPU()) * float64(hostBusy1-hostBusy0) / float64(dt)
	}
	if drops0 != nil {
		drops1, err := t.counters(ctx)
		if err != nil {
			return Sample{}, err
		}
		run.Drops = drops1.Delta(drops0)
	}
	return run, nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

func hostInfo(ctx context.Context, bins Binaries) Host {
	h := Host{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), WireGuardModule: bins.WireGuardVersion, GOMAXPROCS: os.Getenv("GOMAXPROCS")}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		h.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_congestion_control"); err == nil {
		h.TCPCongestion = strings.TrimSpace(string(b))
	}
	if out, err := exec.CommandContext(ctx, "iperf3", "--version").Output(); err == nil {
		h.Iperf3, _, _ = strings.Cut(strings.TrimSpace(string(out)), " (")
	}
	return h
}
