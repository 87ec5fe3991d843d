// Command vcpe-bench is what make bench runs: it builds upstream
// wireguard-go and vcped, measures raw veth, upstream wireguard-go and vcpe
// side by side in throw-away network namespaces, prints the Markdown table
// and writes it, with the JSON report, to the output directory. It needs
// root. The work lives in package bench.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/openvcpe/vcpe/internal/bench"
)

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }

// options parses the command line into bench options and the output
// directory; bad input is an error naming the flag.
func options(args []string, stderr io.Writer) (o bench.Options, out, vcped string, err error) {
	fs := flag.NewFlagSet("vcpe-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quickDefault := os.Getenv("BENCH_QUICK") != "" && os.Getenv("BENCH_QUICK") != "0"
	fs.StringVar(&out, "out", "bench-results", "directory for the JSON and Markdown reports")
	quick := fs.Bool("quick", quickDefault, "short smoke pass: 1 run of 2 s per cell, at most 4 UDP probes of 1 s (also BENCH_QUICK=1)")
	variants := fs.String("variants", "raw,upstream,vcpe", "comma-separated variants to measure; tune one with +: vcpe+pin, upstream+GOMAXPROCS=1, vcpe+txqlen=5000")
	runs := fs.Int("runs", 0, "runs per cell (default 3, quick 1)")
	seconds := fs.Int("seconds", 0, "seconds per measured TCP run (default 4, quick 2)")
	cases := fs.String("cases", "all", "which cases to measure: all, tcp, udp or hub (4 sites sending to one hub at once); or a comma-separated list of them")
	fs.StringVar(&vcped, "vcped", "", "use this vcped binary instead of building ./cmd/vcped")
	fs.StringVar(&o.ProfileDir, "cpu-profile", "", "write a CPU profile of every vcped and vcpe-hub the bench starts into this directory, as VARIANT-ROLE.pprof (make pgo builds the daemons from them)")
	if err := fs.Parse(args); err != nil {
		return o, "", "", err
	}
	if fs.NArg() > 0 {
		return o, "", "", fmt.Errorf("unexpected argument %q (see -help)", fs.Arg(0))
	}
	if *runs < 0 || *seconds < 0 {
		return o, "", "", fmt.Errorf("-runs %d / -seconds %d: use a positive number (or 0 for the default)", *runs, *seconds)
	}
	if *quick {
		o.Apply(bench.QuickSettings)
	} else {
		o.Apply(bench.FullSettings)
	}
	if *runs > 0 {
		o.Runs = *runs
	}
	if *seconds > 0 {
		o.Seconds = *seconds
	}
	if *cases != "all" {
		for _, kind := range strings.Split(*cases, ",") {
			if kind != "tcp" && kind != "udp" && kind != "hub" {
				return o, "", "", fmt.Errorf("-cases %q: want all, tcp, udp or hub, or a comma-separated list of them", *cases)
			}
			for _, c := range bench.DefaultCases() {
				if (kind == "hub" && c.Sites > 0) || (c.Sites == 0 && c.Proto == kind) {
					o.Cases = append(o.Cases, c)
				}
			}
		}
	}
	o.Variants = strings.Split(*variants, ",")
	for _, v := range o.Variants {
		spec, err := bench.ParseSpec(v)
		if err != nil {
			return o, "", "", fmt.Errorf("-variants: %w", err)
		}
		if spec.Vcped != "" {
			if _, err := exec.LookPath(spec.Vcped); err != nil {
				return o, "", "", fmt.Errorf("-variants %s: %w; build it first, e.g. go build -pgo=off -o %s ./cmd/vcped", v, err, spec.Vcped)
			}
		}
	}
	if o.ProfileDir != "" {
		if err := os.MkdirAll(o.ProfileDir, 0o755); err != nil {
			return o, "", "", fmt.Errorf("-cpu-profile: %w", err)
		}
		abs, err := filepath.Abs(o.ProfileDir)
		if err != nil {
			return o, "", "", fmt.Errorf("-cpu-profile: %w", err)
		}
		o.ProfileDir = abs
	}
	return o, out, vcped, nil
}

func run(args []string, stderr io.Writer) int {
	o, out, vcped, err := options(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "vcpe-bench: %v\n", err)
		return 2
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(stderr, "vcpe-bench: needs root for network namespaces: run sudo make bench")
		return 2
	}
	if missing := bench.MissingTools(exec.LookPath); len(missing) > 0 {
		fmt.Fprintf(stderr, "vcpe-bench: missing system packages: %s; install them (apt-get install %s) or run sudo make bench, which does\n",
			strings.Join(missing, " "), strings.Join(missing, " "))
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	began := time.Now()
	o.Log = log

	tmp, err := os.MkdirTemp("", "vcpe-benchrun-")
	if err != nil {
		fmt.Fprintf(stderr, "vcpe-bench: %v\n", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	o.TempDir = tmp
	root, err := bench.ModuleRoot(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "vcpe-bench: %v\n", err)
		return 1
	}
	log.Info("building wireguard-go and vcped")
	if o.Bins, err = bench.Build(ctx, root, tmp, vcped); err != nil {
		fmt.Fprintf(stderr, "vcpe-bench: %v\n", err)
		return 1
	}
	var ns bench.Namespaces
	defer func() {
		if err := ns.Close(); err != nil {
			fmt.Fprintf(stderr, "vcpe-bench: %v (make clean-netns removes leftovers)\n", err)
		}
	}()
	o.NewNamespace = ns.New

	rep, runErr := bench.Run(ctx, o)
	if rep == nil {
		fmt.Fprintf(stderr, "vcpe-bench: %v\n", runErr)
		return 1
	}
	if err := write(rep, out, stderr); err != nil {
		fmt.Fprintf(stderr, "vcpe-bench: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "vcpe-bench: total time %s\n", time.Since(began).Round(time.Second))
	if runErr != nil {
		fmt.Fprintf(stderr, "vcpe-bench: stopped early: %v\n", runErr)
		return 1
	}
	code := 0
	for _, v := range rep.Variants {
		if v.Error == "" {
			continue
		}
		fmt.Fprintf(stderr, "vcpe-bench: %s: %s\n", v.Name, firstLine(v.Error))
		// A vcped that is not in the tree yet is reported, not a failure.
		if spec, _ := bench.ParseSpec(v.Name); !(spec.Base == bench.VariantVcpe && o.Bins.Vcped == "") {
			code = 1
		}
	}
	return code
}

// write saves the report as bench-<time>.json and .md in dir and prints
// the Markdown to stdout.
func write(rep *bench.Report, dir string, stderr io.Writer) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	base := filepath.Join(dir, "bench-"+rep.Started.UTC().Format("20060102T150405Z"))
	j, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.WriteFile(base+".json", append(j, '\n'), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	var md strings.Builder
	if err := rep.WriteMarkdown(&md); err != nil {
		return fmt.Errorf("render report: %w", err)
	}
	if err := os.WriteFile(base+".md", []byte(md.String()), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	fmt.Print(md.String())
	fmt.Fprintf(stderr, "vcpe-bench: wrote %s.json and %s.md\n", base, base)
	return nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
