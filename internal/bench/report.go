package bench

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// Variant names, in the order the report shows them.
const (
	VariantRaw      = "raw"      // veth, no tunnel: the baseline
	VariantUpstream = "upstream" // wireguard-go's own main package
	VariantVcpe     = "vcpe"     // two vcped daemons, each the other's hub
)

// SpecTarget is the lossless 1,024-byte UDP rate the spec promises for a
// 2-vCPU vCPE, in bit/s.
const SpecTarget = 350e6

// Report is the whole result of one bench run; it is written as JSON and
// rendered as Markdown.
type Report struct {
	Started  time.Time     `json:"started"`
	Seconds  float64       `json:"total_seconds"`
	Host     Host          `json:"host"`
	Settings Settings      `json:"settings"`
	Variants []VariantInfo `json:"variants"`
	Rows     []Row         `json:"rows"`
	Notes    []string      `json:"notes,omitempty"`
}

// Host describes the machine and the software measured.
type Host struct {
	CPUs            int    `json:"cpus"`
	Kernel          string `json:"kernel"`
	GoVersion       string `json:"go_version"`
	WireGuardModule string `json:"wireguard_module"`
	Iperf3          string `json:"iperf3"`
	GOMAXPROCS      string `json:"gomaxprocs_env,omitempty"`
	// TCPCongestion is the host's TCP congestion control, which the
	// namespaces of the run inherit and iperf3's TCP senders use: BBR
	// paces, CUBIC does not, so the TCP cells of two hosts compare only
	// when it is the same.
	TCPCongestion string `json:"tcp_congestion_control,omitempty"`
}

// Settings are the knobs of the run.
type Settings struct {
	Runs         int    `json:"runs"`
	Seconds      int    `json:"seconds"`
	Omit         int    `json:"omit_seconds"`
	ProbeSeconds int    `json:"probe_seconds"`
	Search       Search `json:"udp_search"`
	Quick        bool   `json:"quick"`
}

// VariantInfo is one way of carrying the traffic, and why it has no
// numbers when it has none.
type VariantInfo struct {
	Name   string       `json:"name"`
	Title  string       `json:"title"`
	Error  string       `json:"error,omitempty"`
	Memory []ProcMemory `json:"memory,omitempty"`
	Notes  []string     `json:"notes,omitempty"`
}

// ProcMemory is the resident memory of one tunnel daemon, in KiB.
type ProcMemory struct {
	Role    string `json:"role"`
	IdleKiB int64  `json:"idle_rss_kib"`
	LoadKiB int64  `json:"load_rss_kib"` // highest VmRSS sampled during the runs
	PeakKiB int64  `json:"peak_rss_kib"` // VmHWM at the end
}

// Row is one case measured on every variant.
type Row struct {
	Case    Case     `json:"case"`
	Name    string   `json:"name"`
	Results []Result `json:"results"`
	// Ratios of the medians: every tunnel over raw, and every vcpe
	// variant over its upstream counterpart.
	Ratios []Ratio `json:"ratios"`
}

// Ratio is Num's median over Den's; Value is nil when either has no
// number.
type Ratio struct {
	Num   string   `json:"num"`
	Den   string   `json:"den"`
	Value *float64 `json:"value"`
	// Target is set on vcpe-over-upstream ratios, which issue 4 wants at
	// 1.00 or more.
	Target float64 `json:"target,omitempty"`
	// Paired are the ratios round by round, in round order: Num's sample
	// over Den's sample of the same round, for the rounds where both have
	// one. The variants of a round run back to back, so what moved the
	// machine between rounds (another tenant, a frequency change) mostly
	// cancels out of each, where it stays in the medians.
	Paired []float64 `json:"paired,omitempty"`
}

// PairedMedian is the median of the round-by-round ratios; 0 for none.
func (r Ratio) PairedMedian() float64 { return Median(r.Paired) }

// Name is "num/den".
func (r Ratio) Name() string { return r.Num + "/" + r.Den }

// Result is one case on one variant: its runs and their medians.
type Result struct {
	Variant string `json:"variant"`
	Error   string `json:"error,omitempty"`

	BitsPerSecond float64 `json:"median_bits_per_second"`
	// Spread is half the range of the runs' rates, in percent of the
	// median: how much the machine's other load moved them.
	Spread      float64 `json:"spread_percent"`
	LostPercent float64 `json:"median_lost_percent,omitempty"`
	// CPU is the median of each process's CPU use, in percent of one core.
	CPU       []ProcCPU `json:"median_cpu,omitempty"`
	HostCPU   float64   `json:"median_host_cpu_percent"`
	MeetsSpec *bool     `json:"meets_spec_target,omitempty"` // UDP rows of tunnel variants

	// Searches are the UDP rate searches, one per run; the best passing
	// probe of each is in Runs.
	Searches []SearchResult `json:"udp_searches,omitempty"`
	Runs     []Sample       `json:"runs"`
	// Failures are the errors of runs that produced no sample.
	Failures []string `json:"failures,omitempty"`
}

// Sample is one iperf3 run.
type Sample struct {
	Measurement
	// Round is the run of the cell this sample belongs to, from 1 (0: not
	// recorded); a round measures every variant once, back to back.
	Round int `json:"round,omitempty"`
	// Offered is the UDP rate asked of iperf3 (0: unlimited).
	Offered float64   `json:"offered_bits_per_second,omitempty"`
	CPU     []ProcCPU `json:"cpu"`
	// HostCPU is the busy time of all CPUs, in percent of one core (so up
	// to 100 times the number of CPUs), softirq included.
	HostCPU float64 `json:"host_cpu_percent"`
	Seconds float64 `json:"seconds"`
	// Drops are the kernel drop counters that grew during a UDP run.
	Drops Counters `json:"drops,omitempty"`
}

// ProcCPU is the CPU one process used during a run, in percent of one core.
type ProcCPU struct {
	Role    string  `json:"role"`
	Percent float64 `json:"percent"`
}

// Median returns the median of xs (the mean of the middle two for an even
// count); 0 for none.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Summarize fills in every result's medians and every row's ratios from
// the runs.
func (r *Report) Summarize() {
	for i := range r.Rows {
		row := &r.Rows[i]
		row.Name = row.Case.String()
		for j := range row.Results {
			summarize(row.Case, &row.Results[j])
		}
		row.Ratios = nil
		for _, v := range r.Variants {
			if v.Name == VariantRaw {
				continue
			}
			if row.result(VariantRaw) != nil {
				row.Ratios = append(row.Ratios, Ratio{Num: v.Name, Den: VariantRaw, Value: ratio(row.result(v.Name), row.result(VariantRaw)),
					Paired: paired(row.result(v.Name), row.result(VariantRaw))})
			}
		}
		for _, v := range r.Variants {
			spec, err := ParseSpec(v.Name)
			if err != nil || spec.Base != VariantVcpe {
				continue
			}
			if den := spec.counterpart(); row.result(den) != nil {
				row.Ratios = append(row.Ratios, Ratio{Num: v.Name, Den: den, Value: ratio(row.result(v.Name), row.result(den)), Target: 1,
					Paired: paired(row.result(v.Name), row.result(den))})
			}
		}
	}
}

// Ratio returns the ratio num/den of the row, or nil.
func (row *Row) Ratio(num, den string) *float64 {
	for _, r := range row.Ratios {
		if r.Num == num && r.Den == den {
			return r.Value
		}
	}
	return nil
}

func summarize(c Case, res *Result) {
	if res.Error != "" || len(res.Runs) == 0 {
		return
	}
	var bps, lost, host []float64
	cpu := map[string][]float64{}
	var roles []string
	for _, run := range res.Runs {
		bps = append(bps, run.BitsPerSecond)
		lost = append(lost, run.LostPercent)
		host = append(host, run.HostCPU)
		for _, p := range run.CPU {
			if _, ok := cpu[p.Role]; !ok {
				roles = append(roles, p.Role)
			}
			cpu[p.Role] = append(cpu[p.Role], p.Percent)
		}
	}
	res.BitsPerSecond = Median(bps)
	if res.BitsPerSecond > 0 {
		res.Spread = 100 * (slices.Max(bps) - slices.Min(bps)) / 2 / res.BitsPerSecond
	}
	res.LostPercent = Median(lost)
	res.HostCPU = Median(host)
	res.CPU = nil
	for _, role := range roles {
		res.CPU = append(res.CPU, ProcCPU{Role: role, Percent: Median(cpu[role])})
	}
	if c.Proto == "udp" && !strings.HasPrefix(res.Variant, VariantRaw) {
		ok := res.BitsPerSecond >= SpecTarget
		res.MeetsSpec = &ok
	}
}

func (row *Row) result(variant string) *Result {
	for i := range row.Results {
		if row.Results[i].Variant == variant {
			return &row.Results[i]
		}
	}
	return nil
}

func ratio(num, den *Result) *float64 {
	if num == nil || den == nil || num.Error != "" || den.Error != "" || len(num.Runs) == 0 || len(den.Runs) == 0 || den.BitsPerSecond <= 0 {
		return nil
	}
	v := num.BitsPerSecond / den.BitsPerSecond
	return &v
}

// writeRounds renders the vcpe-over-upstream ratios round by round, when
// any cell has more than one round.
func (r *Report) writeRounds(p func(string, ...any)) {
	found := false
	for _, row := range r.Rows {
		for _, rt := range row.Ratios {
			found = found || (rt.Target > 0 && len(rt.Paired) > 1)
		}
	}
	if !found {
		return
	}
	p("\n## vcpe over upstream, round by round\n\n")
	p("A round measures every variant once, back to back. Each round's ratio compares two samples taken seconds apart, so what moved this machine between rounds mostly cancels out of it; the ratio of the medians above does not pair them. Their median, lowest and highest, and each round's in order:\n\n")
	p("| case | ratio | of the medians | median of rounds | lowest–highest | rounds |\n")
	p("| --- | --- | ---: | ---: | ---: | --- |\n")
	for _, row := range r.Rows {
		for _, rt := range row.Ratios {
			if rt.Target == 0 || len(rt.Paired) == 0 {
				continue
			}
			rounds := make([]string, len(rt.Paired))
			for i, v := range rt.Paired {
				rounds[i] = fmt.Sprintf("%.2f", v)
			}
			m := rt.PairedMedian()
			p("| %s | %s | %s | %s | %.2f–%.2f | %s |\n", row.Name, rt.Name(), fmtRatio(rt.Value, rt.Target),
				fmtRatio(&m, rt.Target), slices.Min(rt.Paired), slices.Max(rt.Paired), strings.Join(rounds, ", "))
		}
	}
}

// paired returns num's rate over den's, round by round, for the rounds in
// which both have a sample; nil for none.
func paired(num, den *Result) []float64 {
	if num == nil || den == nil || num.Error != "" || den.Error != "" {
		return nil
	}
	byRound := map[int]float64{}
	for _, s := range den.Runs {
		if s.Round > 0 && s.BitsPerSecond > 0 {
			byRound[s.Round] = s.BitsPerSecond
		}
	}
	var out []float64
	for _, s := range num.Runs {
		if d, ok := byRound[s.Round]; ok { // byRound holds rounds from 1 only
			out = append(out, s.BitsPerSecond/d)
		}
	}
	return out
}

// WriteMarkdown renders the report as Markdown tables.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("# vcpe bench, %s\n\n", r.Started.UTC().Format("2006-01-02 15:04 UTC"))
	p("Host: %d CPUs, kernel %s, %s, wireguard-go %s, %s", r.Host.CPUs, r.Host.Kernel, r.Host.GoVersion, r.Host.WireGuardModule, r.Host.Iperf3)
	if r.Host.GOMAXPROCS != "" {
		p(", GOMAXPROCS=%s", r.Host.GOMAXPROCS)
	}
	if r.Host.TCPCongestion != "" {
		p(", TCP congestion control %s", r.Host.TCPCongestion)
	}
	p(". Both ends of every variant share this machine's CPUs.\n\n")
	s := r.Settings
	p("Each cell: median of %d runs, the variants interleaved. TCP: %d s after %d s warm-up. UDP: each run is a search (at most %d probes of %d s) for the highest offered rate with < %g%% loss, starting under what got through a flood and climbing above it while probes pass; its sample is the goodput of the best passing probe. Total time %s.",
		s.Runs, s.Seconds, s.Omit, s.Search.MaxProbes, s.ProbeSeconds, s.Search.MaxLoss, (time.Duration(r.Seconds) * time.Second).String())
	if s.Quick {
		p(" **Quick smoke pass (BENCH_QUICK): not a measurement to quote.**")
	}
	p("\n\n## Throughput (receiver goodput, Mbit/s)\n\n")
	p("| case |")
	for _, v := range r.Variants {
		p(" %s |", v.Name)
	}
	var ratioNames []string
	if len(r.Rows) > 0 {
		for _, rt := range r.Rows[0].Ratios {
			name := rt.Name()
			if rt.Target > 0 {
				name += fmt.Sprintf(" (target ≥ %.2f)", rt.Target)
			}
			ratioNames = append(ratioNames, name)
			p(" %s |", name)
		}
	}
	p("\n| --- |%s%s\n", strings.Repeat(" ---: |", len(r.Variants)), strings.Repeat(" ---: |", len(ratioNames)))
	for _, row := range r.Rows {
		p("| %s |", row.Name)
		for _, v := range r.Variants {
			p(" %s |", cell(row.Case, row.result(v.Name)))
		}
		for _, rt := range row.Ratios {
			p(" %s |", fmtRatio(rt.Value, rt.Target))
		}
		p("\n")
	}
	p("\nVariants: ")
	for i, v := range r.Variants {
		if i > 0 {
			p("; ")
		}
		p("%s = %s", v.Name, v.Title)
	}
	p(".\n")
	p("\n±: half the range of the runs, in percent of the median (the noise of this machine in this run); a ratio whose gap from 1.00 is within the two cells' ± is not a difference. ")
	p("Spec target: lossless 1,024-byte UDP ≥ %.0f Mbit/s on 2 vCPUs; UDP cells of the tunnels say ✓ meets / ✗ misses. A vcpe/upstream ratio under its target is marked ✗.\n", SpecTarget/1e6)
	r.writeRounds(p)

	p("\n## CPU (median %% of one core; host = all CPUs busy incl. softirq, max %d%%)\n\n", 100*max(1, r.Host.CPUs))
	p("| case | variant | end A (client side) | end B (server side) | iperf3 client | iperf3 server | host | ends per Gbit/s |\n")
	p("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, row := range r.Rows {
		for _, res := range row.Results {
			if res.Error != "" || len(res.Runs) == 0 {
				continue
			}
			p("| %s | %s | %s | %s | %s | %s | %.0f | %s |\n", row.Name, res.Variant,
				cpuOf(res, "a"), cpuOf(res, "b"), cpuOf(res, "iperf3-client"), cpuOf(res, "iperf3-server"), res.HostCPU, cpuPerGbit(res))
		}
	}
	p("\nEnds per Gbit/s: the two tunnel ends' CPU together for each Gbit/s of goodput, in %% of one core; it moves less with the machine's other load than the rate does, so compare it across variants of one run.\n")

	for _, row := range r.Rows {
		if row.Case.Sites > 0 {
			p("\nIn the hub row (%s) end B is the hub's daemon, end A the %d sites' daemons together, and the iperf3 columns are summed over the sites; the throughput is the sum of the sites' goodputs.\n", row.Name, row.Case.Sites)
			break
		}
	}

	var lossLines []string
	for _, row := range r.Rows {
		for _, res := range row.Results {
			sum := Counters{}
			for _, s := range res.Searches {
				for _, step := range s.Steps {
					for k, v := range step.Drops {
						sum[k] += v
					}
				}
			}
			if len(sum) == 0 {
				continue
			}
			keys := slices.Sorted(maps.Keys(sum))
			var parts []string
			for _, k := range keys {
				parts = append(parts, fmt.Sprintf("%s %d", k, sum[k]))
			}
			lossLines = append(lossLines, fmt.Sprintf("| %s | %s | %s |", row.Name, res.Variant, strings.Join(parts, ", ")))
		}
	}
	if len(lossLines) > 0 {
		p("\n## Where UDP packets were dropped (kernel counters summed over every search probe, overloaded ones included; A = client side, B = server side)\n\n")
		p("| case | variant | counters that grew |\n| --- | --- | --- |\n%s\n", strings.Join(lossLines, "\n"))
	}

	p("\n## Memory of the tunnel daemons (RSS, MiB)\n\n")
	p("| variant | end | idle | under load (highest sample) | peak (VmHWM) |\n")
	p("| --- | --- | ---: | ---: | ---: |\n")
	for _, v := range r.Variants {
		for _, m := range v.Memory {
			p("| %s | %s | %.1f | %.1f | %.1f |\n", v.Name, m.Role, mib(m.IdleKiB), mib(m.LoadKiB), mib(m.PeakKiB))
		}
	}
	p("\nvcpe aims under 40 MiB idle. Ends hub and site1… are the hub case's daemons.\n")

	var errs, notes []string
	for _, v := range r.Variants {
		if v.Error != "" {
			errs = append(errs, fmt.Sprintf("- %s, %s: %s", v.Name, v.Title, v.Error))
		}
		for _, n := range v.Notes {
			notes = append(notes, fmt.Sprintf("- %s: %s", v.Name, n))
		}
	}
	for _, row := range r.Rows {
		for _, res := range row.Results {
			if res.Error != "" && r.variant(res.Variant).Error == "" {
				errs = append(errs, fmt.Sprintf("- %s on %s: %s", row.Name, res.Variant, res.Error))
			}
			if len(res.Failures) > 0 && len(res.Runs) > 0 {
				errs = append(errs, fmt.Sprintf("- %s on %s: %d run(s) failed, the median is of the other %d: %s",
					row.Name, res.Variant, len(res.Failures), len(res.Runs), res.Failures[len(res.Failures)-1]))
			}
		}
	}
	for _, n := range r.Notes {
		notes = append(notes, "- "+n)
	}
	if len(errs) > 0 {
		p("\n## Errors\n\n%s\n", strings.Join(errs, "\n"))
	}
	if len(notes) > 0 {
		p("\n## Notes\n\n%s\n", strings.Join(notes, "\n"))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *Report) variant(name string) VariantInfo {
	for _, v := range r.Variants {
		if v.Name == name {
			return v
		}
	}
	return VariantInfo{}
}

func cell(c Case, res *Result) string {
	switch {
	case res == nil:
		return "—"
	case res.Error != "":
		return "error"
	case len(res.Runs) == 0:
		return "—"
	}
	s := fmt.Sprintf("%.0f", res.BitsPerSecond/1e6)
	if len(res.Runs) > 1 {
		s += fmt.Sprintf(" ±%.0f%%", res.Spread)
	}
	if res.MeetsSpec != nil {
		if *res.MeetsSpec {
			s += " ✓"
		} else {
			s += " ✗"
		}
	}
	return s
}

func fmtRatio(v *float64, target float64) string {
	if v == nil {
		return "n/a"
	}
	s := fmt.Sprintf("%.2f", *v)
	if target > 0 && *v < target {
		s += " ✗"
	}
	return s
}

func cpuOf(res Result, role string) string {
	for _, c := range res.CPU {
		if c.Role == role {
			return fmt.Sprintf("%.0f", c.Percent)
		}
	}
	return "—"
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

// cpuPerGbit is the tunnel ends' CPU (roles a and b) per Gbit/s of the
// median goodput, or "—" without both readings.
func cpuPerGbit(res Result) string {
	var sum float64
	n := 0
	for _, c := range res.CPU {
		if c.Role == "a" || c.Role == "b" {
			sum += c.Percent
			n++
		}
	}
	if n != 2 || res.BitsPerSecond <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f", sum/(res.BitsPerSecond/1e9))
}
