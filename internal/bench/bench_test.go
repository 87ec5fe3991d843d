package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/internal/goldenfile"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/openvcpe/vcpe/api"
)

func TestParseIperf(t *testing.T) {
	tests := []struct {
		file string
		want Measurement
	}{
		{"iperf-tcp-p2.json", Measurement{BitsPerSecond: 24106544107.7293, SentBitsPerSecond: 24110326104.552517, Retransmits: 9}},
		{"iperf-udp.json", Measurement{BitsPerSecond: 499295741.38563687, SentBitsPerSecond: 499680914.3131403, LostPercent: 0.07048949214779843}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseIperf(b)
			if err != nil {
				t.Fatalf("ParseIperf: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseIperf (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseIperfErrors(t *testing.T) {
	refused, err := os.ReadFile("testdata/iperf-error.json")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, in, want string
	}{
		{"iperf3 error", string(refused), "iperf3: unable to connect to server: Connection refused"},
		{"not json", "iperf3: error", "parse iperf3 JSON"},
		{"no summary", `{"end":{}}`, "no end.sum_sent/end.sum_received"},
		{"negative rate", `{"end":{"sum_sent":{"bits_per_second":1},"sum_received":{"bits_per_second":-1}}}`, "invalid value -1"},
		{"loss over 100", `{"end":{"sum_sent":{"bits_per_second":1},"sum_received":{"bits_per_second":1,"lost_percent":101}}}`, "over 100%"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseIperf([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseIperf(%.40q) error = %v; want one containing %q", tt.in, err, tt.want)
			}
		})
	}
}

func FuzzParseIperf(f *testing.F) {
	for _, name := range []string{"iperf-tcp-p2.json", "iperf-udp.json", "iperf-error.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseIperf(b)
		if err != nil {
			return
		}
		if m.BitsPerSecond < 0 || math.IsNaN(m.BitsPerSecond) || m.LostPercent < 0 || m.LostPercent > 100 {
			t.Errorf("ParseIperf accepted %+v", m)
		}
	})
}

func TestIperfArgs(t *testing.T) {
	target := netip.MustParseAddr("198.18.64.12")
	tests := []struct {
		name    string
		c       Case
		omit    int
		rate    float64
		wantArg string
	}{
		{"tcp", Case{Proto: "tcp", Streams: 1}, 1, 0, "-c 198.18.64.12 -p 5201 -J -t 5 --connect-timeout 3000 -O 1"},
		{"tcp mss P4", Case{Proto: "tcp", MSS: 1024, Streams: 4}, 0, 0, "-c 198.18.64.12 -p 5201 -J -t 5 --connect-timeout 3000 -P 4 -M 1024"},
		{"udp unlimited", Case{Proto: "udp", Len: 1024, Streams: 1}, 0, 0, "-c 198.18.64.12 -p 5201 -J -t 5 --connect-timeout 3000 -u -l 1024 -b 0 -w 4M"},
		{"udp rate split over streams", Case{Proto: "udp", Len: 1024, Streams: 4}, 0, 400e6, "-c 198.18.64.12 -p 5201 -J -t 5 --connect-timeout 3000 -P 4 -u -l 1024 -b 100000000 -w 4M"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(IperfArgs(tt.c, target, 5, tt.omit, tt.rate), " ")
			if got != tt.wantArg {
				t.Errorf("IperfArgs = %q; want %q", got, tt.wantArg)
			}
		})
	}
}

// pathProbe fakes a path that carries up to capacity bit/s and loses
// what is offered beyond it, and already loses 2% in bursts above knee;
// the sender manages at most senderMax.
func pathProbe(knee, capacity, senderMax float64, calls *[]float64) Probe {
	return func(_ context.Context, rate float64) (Measurement, error) {
		*calls = append(*calls, rate)
		offered := rate
		if rate == 0 || rate > senderMax {
			offered = senderMax
		}
		got := math.Min(offered, capacity)
		loss := 100 * (offered - got) / offered
		if offered > knee {
			loss = math.Max(loss, 2)
		}
		return Measurement{BitsPerSecond: got, SentBitsPerSecond: offered, LostPercent: loss}, nil
	}
}

func TestSearch(t *testing.T) {
	tests := []struct {
		name                      string
		knee, capacity, senderMax float64
		s                         Search
		wantSenderBound           bool
		wantErr                   error
	}{
		{"path-bound", 600e6, 600e6, 1500e6, DefaultSearch, false, nil},
		{"sender-bound", 2000e6, 2000e6, 1500e6, DefaultSearch, true, nil},
		{"lossless rate well below the receiver rate", 300e6, 600e6, 1500e6, DefaultSearch, false, nil},
		{"one probe cannot find a lossless rate", 600e6, 600e6, 1500e6, Search{MaxProbes: 1, MaxLoss: 1, Tolerance: 0.05}, false, ErrNoLosslessRate},
		{"too few probes to step down far enough", 50e6, 600e6, 1500e6, Search{MaxProbes: 4, MaxLoss: 1, Tolerance: 0.05}, false, ErrNoLosslessRate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls []float64
			res, err := tt.s.Run(context.Background(), pathProbe(tt.knee, tt.capacity, tt.senderMax, &calls))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Run error = %v; want %v", err, tt.wantErr)
			}
			if len(calls) > tt.s.MaxProbes {
				t.Errorf("ran %d probes; want at most %d", len(calls), tt.s.MaxProbes)
			}
			if len(res.Steps) != len(calls) {
				t.Errorf("recorded %d steps for %d probes", len(res.Steps), len(calls))
			}
			if err == nil && (res.Best < 0 || res.Best >= len(res.Steps) || !res.Steps[res.Best].Pass) {
				t.Errorf("Best = %d; want the index of a passing step in %+v", res.Best, res.Steps)
			}
			if err != nil && res.Best != -1 {
				t.Errorf("Best = %d after a failed search; want -1", res.Best)
			}
			if res.SenderBound != tt.wantSenderBound {
				t.Errorf("SenderBound = %v; want %v", res.SenderBound, tt.wantSenderBound)
			}
			if err != nil || tt.wantSenderBound {
				return
			}
			// Passing means < 1% loss: anything up to the knee.
			if res.Rate > tt.knee || res.Rate < (1-2*tt.s.Tolerance)*tt.knee {
				t.Errorf("Rate = %.0f Mbit/s; want within %.0f%% under the knee %.0f Mbit/s (probes %v)", res.Rate/1e6, 200*tt.s.Tolerance, tt.knee/1e6, calls)
			}
		})
	}
}

// TestSearchAboveOverload: a path that delivers less while flooded than it
// carries without loss (the flooding sender takes the tunnel's CPU) is
// measured at its knee, not at what got through the flood.
func TestSearchAboveOverload(t *testing.T) {
	const knee, flooded = 1300e6, 900e6
	var calls []float64
	res, err := DefaultSearch.Run(context.Background(), func(_ context.Context, rate float64) (Measurement, error) {
		calls = append(calls, rate)
		if rate == 0 {
			return Measurement{BitsPerSecond: flooded, SentBitsPerSecond: 6000e6, LostPercent: 85}, nil
		}
		if rate > knee {
			return Measurement{BitsPerSecond: knee, SentBitsPerSecond: rate, LostPercent: max(2, 100*(rate-knee)/rate)}, nil
		}
		return Measurement{BitsPerSecond: rate, SentBitsPerSecond: rate}, nil
	})
	if err != nil {
		t.Fatalf("Run: %v (probes %v)", err, calls)
	}
	if res.Rate > knee || res.Rate < (1-2*DefaultSearch.Tolerance)*knee {
		t.Errorf("Rate = %.0f Mbit/s; want within %.0f%% under the knee %.0f Mbit/s, above the %.0f that got through the flood (probes %v)",
			res.Rate/1e6, 200*DefaultSearch.Tolerance, knee/1e6, flooded/1e6, calls)
	}
	// A sender that cannot go faster ends the climb at what it reached.
	calls = nil
	res, err = DefaultSearch.Run(context.Background(), func(_ context.Context, rate float64) (Measurement, error) {
		calls = append(calls, rate)
		if rate == 0 {
			return Measurement{BitsPerSecond: flooded, SentBitsPerSecond: 6000e6, LostPercent: 85}, nil
		}
		sent := min(rate, 1000e6)
		return Measurement{BitsPerSecond: sent, SentBitsPerSecond: sent}, nil
	})
	if err != nil || res.Rate != 1000e6 || len(calls) > 4 {
		t.Errorf("sender capped at 1000: Rate = %.0f Mbit/s, %v after probes %v; want 1000 within 4 probes", res.Rate/1e6, err, calls)
	}
}

// TestSearcherNoise: a probe the sender could not push to the offered rate
// counts at the rate it reached, and a loss below a passed rate ends the
// search at that pass instead of bisecting forever.
func TestSearcherNoise(t *testing.T) {
	sr := DefaultSearch.Start()
	feed := []Measurement{
		{BitsPerSecond: 900e6, SentBitsPerSecond: 1000e6, LostPercent: 10}, // unlimited: too much
		{BitsPerSecond: 500e6, SentBitsPerSecond: 500e6, LostPercent: 0},   // offered 882, reached 500: pass at 500
		{BitsPerSecond: 650e6, SentBitsPerSecond: 690e6, LostPercent: 7},   // 700 offered (between 500 and the 900 received first), 690 reached: fail
		{BitsPerSecond: 400e6, SentBitsPerSecond: 420e6, LostPercent: 5},   // 600 offered, only 420 reached and lost: noise
	}
	var rates []float64
	for _, m := range feed {
		rate, more := sr.Next()
		if !more {
			t.Fatalf("search ended after %v; want %d probes", rates, len(feed))
		}
		rates = append(rates, rate)
		sr.Observe(rate, m)
	}
	if _, more := sr.Next(); more {
		t.Errorf("search goes on after a loss below a passed rate (probes %v)", rates)
	}
	want := []float64{0, 882e6, 700e6, 595e6}
	for i := range want {
		if math.Abs(rates[i]-want[i]) > 1e6 {
			t.Errorf("probe %d at %.0f Mbit/s; want %.0f (all: %v)", i, rates[i]/1e6, want[i]/1e6, rates)
		}
	}
	res, err := sr.Result()
	if err != nil || res.Rate != 500e6 || res.Best != 1 {
		t.Errorf("Result = %.0f Mbit/s (best step %d), %v; want 500 from step 1 (what the passing probe reached)", res.Rate/1e6, res.Best, err)
	}
}

func TestSearchProbeError(t *testing.T) {
	boom := errors.New("server busy")
	_, err := DefaultSearch.Run(context.Background(), func(context.Context, float64) (Measurement, error) { return Measurement{}, boom })
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "udp search: probe at 0 Mbit/s") {
		t.Errorf("Run error = %v; want the probe's error with its rate", err)
	}
}

func TestParseProcStat(t *testing.T) {
	// A command name with spaces and a ')' must not shift the fields.
	in := "4242 (wire guard) x) S 1 4242 4242 0 -1 4194560 1234 0 0 0 150 25 0 0 20 0 9 0 100 0 0\n"
	got, err := ParseProcStat([]byte(in))
	if err != nil || got != 175 {
		t.Errorf("ParseProcStat = %d, %v; want 175, nil", got, err)
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 (x) S 1 2 3 4 5 6 7 8 9 10 u 0"} {
		if _, err := ParseProcStat([]byte(bad)); err == nil {
			t.Errorf("ParseProcStat(%q) = nil error; want one", bad)
		}
	}
}

func FuzzParseProcStat(f *testing.F) {
	f.Add([]byte("1 (init) S 0 1 1 0 -1 4194560 1 0 0 0 5 6 0 0 20 0 1 0 1 0 0"))
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = ParseProcStat(b) })
}

func TestParseRSS(t *testing.T) {
	in := "Name:\twireguard-go\nVmPeak:\t 1266552 kB\nVmHWM:\t   415404 kB\nVmRSS:\t    5632 kB\nThreads:\t9\n"
	rss, hwm, err := ParseRSS([]byte(in))
	if err != nil || rss != 5632 || hwm != 415404 {
		t.Errorf("ParseRSS = %d, %d, %v; want 5632, 415404, nil", rss, hwm, err)
	}
	for _, bad := range []string{"Name:\tx\n", "VmRSS:\t5 MB\nVmHWM:\t1 kB\n", "VmRSS:\t-5 kB\nVmHWM:\t1 kB\n"} {
		if _, _, err := ParseRSS([]byte(bad)); err == nil {
			t.Errorf("ParseRSS(%q) = nil error; want one", bad)
		}
	}
}

func TestParseHostStat(t *testing.T) {
	in := "cpu  100 5 50 800 10 1 20 4 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n"
	busy, total, err := ParseHostStat([]byte(in))
	if err != nil || busy != 180 || total != 990 {
		t.Errorf("ParseHostStat = %d, %d, %v; want 180, 990, nil", busy, total, err)
	}
	if _, _, err := ParseHostStat([]byte("intr 1 2 3\n")); err == nil {
		t.Error("ParseHostStat without a cpu line = nil error; want one")
	}
}

func TestMedian(t *testing.T) {
	for _, tt := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := Median(tt.in); got != tt.want {
			t.Errorf("Median(%v) = %v; want %v", tt.in, got, tt.want)
		}
	}
}

// sampleReport is a fixed report: two live variants and a missing vcped.
func sampleReport() *Report {
	cpu := func(a, b float64) []ProcCPU {
		if a == 0 { // raw veth: no tunnel daemons
			return []ProcCPU{{"iperf3-server", 40}, {"iperf3-client", 90}}
		}
		return []ProcCPU{{"iperf3-server", 10}, {"a", a}, {"b", b}, {"iperf3-client", 12}}
	}
	runs := func(cpuA float64, bps ...float64) []Sample {
		var s []Sample
		for i, v := range bps {
			s = append(s, Sample{Measurement: Measurement{BitsPerSecond: v, SentBitsPerSecond: v}, CPU: cpu(cpuA, cpuA+5), HostCPU: 190, Seconds: 5, Round: i + 1})
		}
		return s
	}
	missing := "not available: cmd/vcped not present"
	r := &Report{
		Started:  time.Date(2026, 11, 26, 15, 0, 0, 0, time.UTC),
		Seconds:  432,
		Host:     Host{CPUs: 2, Kernel: "6.18", GoVersion: "go1.26", WireGuardModule: "v0.0.0-x", Iperf3: "iperf 3.12", TCPCongestion: "bbr"},
		Settings: FullSettings,
		Variants: []VariantInfo{
			{Name: VariantRaw, Title: "raw veth, no tunnel"},
			{Name: VariantUpstream, Title: "upstream wireguard-go", Memory: []ProcMemory{{"a", 5632, 262144, 262200}, {"b", 5700, 400000, 410000}}},
			{Name: VariantVcpe, Title: "two vcped daemons, each the other's hub", Error: missing},
		},
		Rows: []Row{
			{Case: Case{Proto: "tcp", Streams: 1}, Results: []Result{
				{Variant: VariantRaw, Runs: runs(0, 15e9, 16e9, 14e9)},
				{Variant: VariantUpstream, Runs: runs(80, 2.1e9, 2.2e9, 1.9e9)},
				{Variant: VariantVcpe, Error: missing},
			}},
			{Case: Case{Proto: "udp", Len: 1024, Streams: 1}, Results: []Result{
				{Variant: VariantRaw, Runs: runs(0, 900e6, 950e6, 1000e6)},
				{Variant: VariantUpstream, Runs: runs(50, 300e6, 320e6, 310e6), Searches: []SearchResult{
					{Best: 1, Rate: 300e6, Steps: []Step{{Drops: Counters{"B udp RcvbufErrors": 40, "A tun tx_dropped": 2}}, {Pass: true}}},
					{Best: 0, Rate: 320e6, Steps: []Step{{Pass: true, Drops: Counters{"A tun tx_dropped": 3}}}},
				}},
				{Variant: VariantVcpe, Error: missing},
			}},
			{Case: Case{Proto: "tcp", Streams: 1, Sites: HubSites}, Results: []Result{
				{Variant: VariantRaw, Runs: runs(0, 20e9)},
				{Variant: VariantUpstream, Runs: runs(100, 1e9)},
				{Variant: VariantVcpe, Error: missing},
			}},
		},
	}
	r.Summarize()
	return r
}

func TestSummarize(t *testing.T) {
	r := sampleReport()
	up := r.Rows[0].result(VariantUpstream)
	if up.BitsPerSecond != 2.1e9 {
		t.Errorf("upstream TCP median = %v; want 2.1e9", up.BitsPerSecond)
	}
	if got := r.Rows[0].Ratio(VariantUpstream, VariantRaw); got == nil || *got != 2.1/15 {
		t.Errorf("upstream/raw = %v; want %v", got, 2.1/15)
	}
	if r.Rows[0].Ratio(VariantVcpe, VariantUpstream) != nil || r.Rows[0].Ratio(VariantVcpe, VariantRaw) != nil {
		t.Error("ratios against a missing vcpe are set; want nil")
	}
	var names []string
	for _, rt := range r.Rows[0].Ratios {
		names = append(names, rt.Name())
	}
	if diff := cmp.Diff([]string{"upstream/raw", "vcpe/raw", "vcpe/upstream"}, names); diff != "" {
		t.Errorf("ratio columns (-want +got):\n%s", diff)
	}
	udp := r.Rows[1].result(VariantUpstream)
	if udp.MeetsSpec == nil || *udp.MeetsSpec {
		t.Errorf("upstream UDP at 310 Mbit/s MeetsSpec = %v; want false", udp.MeetsSpec)
	}
	if r.Rows[1].result(VariantRaw).MeetsSpec != nil {
		t.Error("raw veth is marked against the spec target; only tunnels are")
	}
	if got := cpuPerGbit(*r.Rows[0].result(VariantUpstream)); got != "79" {
		t.Errorf("upstream TCP ends per Gbit/s = %s; want 79 ((80+85)%% at 2.1 Gbit/s)", got)
	}
	if got := cpuPerGbit(*r.Rows[0].result(VariantRaw)); got != "—" {
		t.Errorf("raw ends per Gbit/s = %s; want — (no tunnel ends)", got)
	}
}

// TestRoundByRound: the vcpe/upstream ratio is also given round by round,
// pairing only samples of the same round (a failed round drops out of the
// pairs, not the medians), and the report shows them.
func TestRoundByRound(t *testing.T) {
	sample := func(round int, mbps float64) Sample {
		return Sample{Measurement: Measurement{BitsPerSecond: mbps * 1e6}, Round: round}
	}
	r := &Report{
		Settings: FullSettings,
		Variants: []VariantInfo{{Name: VariantUpstream}, {Name: VariantVcpe}},
		Rows: []Row{{Case: Case{Proto: "tcp", Streams: 1}, Results: []Result{
			// Round 2 was slow for both; upstream's round 3 failed.
			{Variant: VariantUpstream, Runs: []Sample{sample(1, 2000), sample(2, 1000), sample(4, 2200)}},
			{Variant: VariantVcpe, Runs: []Sample{sample(1, 2600), sample(2, 1250), sample(3, 2700), sample(4, 2640)}},
		}}},
	}
	r.Summarize()
	rt := r.Rows[0].Ratios[0]
	if rt.Name() != "vcpe/upstream" || rt.Value == nil {
		t.Fatalf("ratio %+v; want vcpe/upstream with a value", rt)
	}
	if got, want := *rt.Value, 2620.0/2000; math.Abs(got-want) > 1e-9 {
		t.Errorf("ratio of the medians = %v; want %v", got, want)
	}
	if diff := cmp.Diff([]float64{1.3, 1.25, 1.2}, rt.Paired, cmpopts.EquateApprox(0, 1e-9)); diff != "" {
		t.Errorf("paired ratios (-want +got):\n%s", diff)
	}
	if got := rt.PairedMedian(); math.Abs(got-1.25) > 1e-9 {
		t.Errorf("median of the rounds = %v; want 1.25", got)
	}
	var b bytes.Buffer
	if err := r.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"## vcpe over upstream, round by round",
		"| TCP, -P 1 | vcpe/upstream | 1.31 | 1.25 | 1.20–1.30 | 1.30, 1.25, 1.20 |",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
	// Samples without a round (reports written before rounds were kept)
	// pair nothing, and the section is left out.
	for i := range r.Rows[0].Results {
		for j := range r.Rows[0].Results[i].Runs {
			r.Rows[0].Results[i].Runs[j].Round = 0
		}
	}
	r.Summarize()
	b.Reset()
	if err := r.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	if p := r.Rows[0].Ratios[0].Paired; p != nil || strings.Contains(b.String(), "round by round") {
		t.Errorf("without rounds: paired %v, section shown %v; want none", p, strings.Contains(b.String(), "round by round"))
	}
}

func TestMarkdownGolden(t *testing.T) {
	var b bytes.Buffer
	if err := sampleReport().WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	goldenfile.Check(t, filepath.Join("testdata", "report.golden.md"), b.Bytes())
}

func TestParseSpec(t *testing.T) {
	tests := []struct {
		in      string
		want    Spec
		wantErr string
	}{
		{in: "vcpe", want: Spec{Name: "vcpe", Base: "vcpe"}},
		{in: "upstream+pin+GOMAXPROCS=1+txqlen=5000", want: Spec{Name: "upstream+pin+GOMAXPROCS=1+txqlen=5000", Base: "upstream", Tuning: "pin+GOMAXPROCS=1+txqlen=5000", Env: []string{"GOMAXPROCS=1"}, Pin: true, TxQLen: 5000}},
		{in: "kernel", wantErr: `unknown base "kernel"`},
		{in: "raw+pin", wantErr: "raw has no tunnel to tune"},
		{in: "vcpe+txqlen=lots", wantErr: "txqlen=lots is not a queue length"},
		{in: "vcpe+fast", wantErr: `unknown tuning "fast"`},
		{in: "vcpe+gomaxprocs=1", wantErr: `unknown tuning "gomaxprocs=1"`},
		{in: "vcpe+hub:GOMAXPROCS=2", want: Spec{Name: "vcpe+hub:GOMAXPROCS=2", Base: "vcpe", Tuning: "hub:GOMAXPROCS=2", HubEnv: []string{"GOMAXPROCS=2"}}},
		{in: "vcpe+hub:gomaxprocs=2", wantErr: `unknown tuning "hub:gomaxprocs=2"`},
		{in: "vcpe+hub:=2", wantErr: `unknown tuning "hub:=2"`},
		{in: "vcpe+X:Y=2", wantErr: `unknown tuning "X:Y=2"`},
		{in: "vcpe+vcped=/tmp/v+pin", want: Spec{Name: "vcpe+vcped=/tmp/v+pin", Base: "vcpe", Tuning: "vcped=/tmp/v+pin", Vcped: "/tmp/v", Pin: true}},
		{in: "upstream+vcped=/tmp/v", wantErr: "for the vcpe variant only"},
		{in: "vcpe+vcped=", wantErr: "vcped=PATH names a vcped binary"},
	}
	for _, tt := range tests {
		got, err := ParseSpec(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseSpec(%q) error = %v; want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseSpec(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseSpec(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
	if got := (Spec{Base: VariantVcpe, Tuning: "pin"}).counterpart(); got != "upstream+pin" {
		t.Errorf("counterpart of vcpe+pin = %q; want upstream+pin", got)
	}
	for tuning, want := range map[string]string{"vcped=/x": "upstream", "pin+vcped=/x": "upstream+pin", "vcped=/x+pin": "upstream+pin"} {
		if got := (Spec{Base: VariantVcpe, Tuning: tuning}).counterpart(); got != want {
			t.Errorf("counterpart of vcpe+%s = %q; want %s", tuning, got, want)
		}
	}
}

func TestUAPISet(t *testing.T) {
	var priv, peer api.Key
	priv[0], peer[31] = 1, 2
	got := UAPISet(priv, 4500, UAPIPeer{
		PublicKey:  peer,
		Endpoint:   netip.MustParseAddrPort("198.18.0.12:4500"),
		AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.18.64.12/32")},
	})
	want := "set=1\n" +
		"private_key=0100000000000000000000000000000000000000000000000000000000000000\n" +
		"listen_port=4500\nreplace_peers=true\n" +
		"public_key=0000000000000000000000000000000000000000000000000000000000000002\n" +
		"endpoint=198.18.0.12:4500\nreplace_allowed_ips=true\nallowed_ip=198.18.64.12/32\n\n"
	if got != want {
		t.Errorf("UAPISet =\n%s\nwant\n%s", got, want)
	}
}

// fakeUAPI answers every request on a unix socket with errno.
func fakeUAPI(t *testing.T, errno string) (string, <-chan string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "wg.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	got := make(chan string, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		var req strings.Builder
		sc := bufio.NewScanner(c)
		for sc.Scan() && sc.Text() != "" {
			req.WriteString(sc.Text() + "\n")
		}
		got <- req.String()
		c.Write([]byte("errno=" + errno + "\n\n"))
	}()
	return path, got
}

func TestUAPIDo(t *testing.T) {
	path, got := fakeUAPI(t, "0")
	if err := UAPIDo(context.Background(), path, "set=1\nlisten_port=4500\n\n"); err != nil {
		t.Fatalf("UAPIDo: %v", err)
	}
	if req := <-got; req != "set=1\nlisten_port=4500\n" {
		t.Errorf("device got %q", req)
	}
	path, _ = fakeUAPI(t, "22")
	if err := UAPIDo(context.Background(), path, "set=1\n\n"); err == nil || !strings.Contains(err.Error(), "errno=22") {
		t.Errorf("UAPIDo error = %v; want errno=22", err)
	}
}

func TestOptionsCheck(t *testing.T) {
	o := Options{NewNamespace: func() (string, error) { return "", nil }}
	o.Apply(QuickSettings)
	o.Variants = []string{"kernel"}
	if err := o.check(); err == nil || !strings.Contains(err.Error(), `unknown base "kernel"`) {
		t.Errorf("check error = %v; want one naming the variant", err)
	}
	o = Options{NewNamespace: func() (string, error) { return "", nil }}
	if err := o.check(); err == nil || !strings.Contains(err.Error(), "runs") {
		t.Errorf("check of zero settings = %v; want an error naming runs", err)
	}
}

func TestMissingTools(t *testing.T) {
	have := map[string]bool{"ip": true, "iperf3": true}
	got := MissingTools(func(c string) (string, error) {
		if have[c] {
			return "/usr/bin/" + c, nil
		}
		return "", errors.New("not found")
	})
	if want := []string{"iproute2", "iputils-ping"}; !slices.Equal(got, want) {
		t.Errorf("MissingTools = %v; want %v", got, want)
	}
	if got := MissingTools(func(c string) (string, error) { return c, nil }); len(got) != 0 {
		t.Errorf("MissingTools with everything = %v; want none", got)
	}
}
