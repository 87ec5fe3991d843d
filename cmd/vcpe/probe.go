package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/time/rate"

	"github.com/openvcpe/vcpe/cmd/internal/cli"
	"github.com/openvcpe/vcpe/diag"
)

func newProbeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "probe",
		Short: "Measure loss, latency, jitter and path MTU to a target; run a probe reflector",
		Long: `Probes send ICMP echo or UDP probes (to a vcpe reflector on UDP 12345) and
report a line per reply and a summary: sent, received, loss, min/avg/max/p50/p95
RTT, RFC 3550 jitter, duplicates and reordering. ICMP errors that come back
(port unreachable, fragmentation needed, TTL exceeded, ...) are named with the
router that sent them. --size is the whole IP packet, headers included.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newProbeEchoCmd("icmp"), newProbeEchoCmd("udp"), newProbeMTUCmd(), newProbeReflectCmd(), newProbeReachCmd())
	return cmd
}

type echoFlags struct {
	count    int
	interval time.Duration
	timeout  time.Duration
	size     int
	df       bool
	ttl      int
	source   string
	json     bool
}

func newProbeEchoCmd(proto string) *cobra.Command {
	var f echoFlags
	use, short := "icmp TARGET", "ICMP echo to TARGET (raw socket as root, unprivileged ICMP socket otherwise)"
	if proto == "udp" {
		use, short = "udp TARGET[:PORT]", fmt.Sprintf("UDP probes to the vcpe reflector on TARGET (port %d unless given)", diag.ReflectorPort)
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runProbeEcho(cmd.Context(), cmd.OutOrStdout(), proto, args[0], f)
		},
	}
	fl := cmd.Flags()
	fl.IntVarP(&f.count, "count", "c", 5, "number of probes")
	fl.DurationVarP(&f.interval, "interval", "i", time.Second, "time between probes")
	fl.DurationVarP(&f.timeout, "timeout", "W", 2*time.Second, "how long to wait for the last reply")
	fl.IntVar(&f.size, "size", 84, "probe size in bytes, IP and ICMP/UDP headers included")
	fl.BoolVar(&f.df, "df", false, "set Don't Fragment: a probe larger than the path MTU gets 'fragmentation needed'")
	fl.IntVar(&f.ttl, "ttl", 0, "IP time to live (0: system default)")
	fl.StringVar(&f.source, "source", "", "source IPv4 address to send from")
	fl.BoolVar(&f.json, "json", false, "print one JSON document with every sample and the summary")
	return cmd
}

func signalContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if ctx == nil {
		ctx = context.Background()
	}
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}

func runProbeEcho(ctx context.Context, out io.Writer, proto, target string, f echoFlags) error {
	ctx, cancel := signalContext(ctx)
	defer cancel()
	o := diag.Options{Count: f.count, Interval: f.interval, Timeout: f.timeout, Size: f.size, DF: f.df, TTL: f.ttl}
	switch {
	case f.count < 1 || f.count > diag.MaxCount:
		return cli.Usagef("--count %d: give a number from 1 to %d", f.count, diag.MaxCount)
	case f.interval < time.Millisecond:
		return cli.Usagef("--interval %v: give a duration of at least 1ms, e.g. -i 200ms", f.interval)
	case f.timeout <= 0:
		return cli.Usagef("--timeout %v: give a positive duration, e.g. -W 2s", f.timeout)
	case f.ttl < 0 || f.ttl > 255:
		return cli.Usagef("--ttl %d: give a number from 1 to 255", f.ttl)
	}
	minSize := 28
	if proto == "udp" {
		minSize = diag.MinUDPProbeSize
	}
	if f.size < minSize || f.size > 65535 {
		return cli.Usagef("--size %d: give a packet size from %d to 65535 bytes (IP and %s headers included)", f.size, minSize, proto)
	}
	if f.source != "" {
		a, err := netip.ParseAddr(f.source)
		if err != nil || !a.Unmap().Is4() {
			return cli.Usagef("--source %q: give an IPv4 address of this host, e.g. --source 198.18.0.11", f.source)
		}
		o.Source = a.Unmap()
	}
	if !f.json {
		o.OnSample = func(s diag.Sample) { fmt.Fprintln(out, sampleLine(s)) }
	}
	var (
		res diag.Result
		err error
	)
	if proto == "icmp" {
		addr, uerr := resolveTarget(ctx, target)
		if uerr != nil {
			return uerr
		}
		res, err = diag.PingICMP(ctx, addr, o)
	} else {
		ap, uerr := resolveTargetPort(ctx, target)
		if uerr != nil {
			return uerr
		}
		res, err = diag.PingUDP(ctx, ap, o)
	}
	if err != nil && len(res.Samples) == 0 {
		return fmt.Errorf("probe %s %s: %w", proto, target, err)
	}
	if f.json {
		if werr := cli.WriteJSON(out, res); werr != nil {
			return werr
		}
	} else {
		printSummary(out, res)
	}
	switch {
	case err != nil:
		return fmt.Errorf("probe %s %s: %w", proto, target, err)
	case res.Stats.Received == 0 && f.json:
		return cli.Failed(fmt.Errorf("no reply from %s", targetString(res)))
	case res.Stats.Received == 0:
		return fmt.Errorf("no reply from %s%s", targetString(res), noReplyHint(res))
	}
	return nil
}

func sampleLine(s diag.Sample) string {
	switch s.Status() {
	case "reply", "duplicate":
		dup := ""
		if s.Duplicate {
			dup = " (DUP!)"
		}
		return fmt.Sprintf("%d bytes from %s: seq=%d time=%s ms%s", s.Size, s.From, s.Seq, ms(s.RTT), dup)
	case "icmp-error":
		line := fmt.Sprintf("from %s: seq=%d %s", s.ICMP.From, s.Seq, s.ICMP.Name)
		if s.ICMP.MTU > 0 {
			line += fmt.Sprintf(" (next-hop MTU %d)", s.ICMP.MTU)
		}
		return line
	case "send-error":
		return fmt.Sprintf("seq=%d not sent: %s", s.Seq, s.SendError)
	}
	return fmt.Sprintf("seq=%d no reply", s.Seq)
}

// noReplyHint says what to check when nothing answered.
func noReplyHint(r diag.Result) string {
	for _, s := range r.Samples {
		if s.SendError != "" && strings.Contains(s.SendError, "message too long") {
			return "; probes were larger than the path MTU this host knows: use a smaller --size, drop --df, or measure it with 'vcpe probe mtu'"
		}
		if s.ICMP == nil {
			continue
		}
		switch {
		case r.Protocol == "udp" && s.ICMP.Name == "port unreachable":
			return fmt.Sprintf(": nothing listens on UDP %d there; start the reflector (vcpe-hub and vcped run one; or 'vcpe probe reflect') or open the port", r.Port)
		case s.ICMP.FragNeeded():
			return fmt.Sprintf(": probes are larger than the path MTU (%d); use a smaller --size or drop --df", s.ICMP.MTU)
		}
		return ": " + s.ICMP.Error()
	}
	return ""
}

func targetString(r diag.Result) string {
	if r.Protocol == "icmp" {
		return r.Target.String()
	}
	return netip.AddrPortFrom(r.Target, r.Port).String()
}

func printSummary(w io.Writer, r diag.Result) {
	st := r.Stats
	fmt.Fprintf(w, "--- %s %s probe statistics ---\n", targetString(r), r.Protocol)
	fmt.Fprintf(w, "%d sent, %d received, %.1f%% loss, %d errors, %d duplicates, %d reordered\n",
		st.Sent, st.Received, st.LossPct, st.Errors, st.Duplicates, st.Reordered)
	if st.Received > 0 {
		fmt.Fprintf(w, "rtt min/avg/max/p50/p95 = %s/%s/%s/%s/%s ms, jitter %s ms\n",
			ms(st.Min), ms(st.Avg), ms(st.Max), ms(st.P50), ms(st.P95), ms(st.Jitter))
	}
}

func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 3, 64) }

// resolveTarget parses an IPv4 address or resolves a host name to one.
func resolveTarget(ctx context.Context, s string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		if !a.Unmap().Is4() {
			return netip.Addr{}, cli.Usagef("TARGET %q: only IPv4 targets are supported for now", s)
		}
		return a.Unmap(), nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", s)
	if err != nil || len(addrs) == 0 {
		return netip.Addr{}, cli.Usagef("TARGET %q: not an IPv4 address and not a host name that resolves to one (%v)", s, err)
	}
	return addrs[0].Unmap(), nil
}

func resolveTargetPort(ctx context.Context, s string) (netip.AddrPort, error) {
	host, port := s, uint16(diag.ReflectorPort)
	if h, p, err := net.SplitHostPort(s); err == nil {
		n, perr := strconv.ParseUint(p, 10, 16)
		if perr != nil || n == 0 {
			return netip.AddrPort{}, cli.Usagef("TARGET %q: port %q is not a number from 1 to 65535", s, p)
		}
		host, port = h, uint16(n)
	}
	a, err := resolveTarget(ctx, host)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(a, port), nil
}

func newProbeMTUCmd() *cobra.Command {
	var (
		source  string
		timeout time.Duration
		maxSize int
		asJSON  bool
		useUDP  bool
	)
	cmd := &cobra.Command{
		Use:   "mtu TARGET[:PORT]",
		Short: "Find the path MTU to TARGET with DF set, and say when the path black-holes large packets",
		Long: `Sends ICMP echo with Don't Fragment set, starting at the MTU of the route to
TARGET: a router's "fragmentation needed" gives the next-hop MTU directly,
otherwise a binary search finds the largest size that gets a reply. When
large probes vanish without any "fragmentation needed", the path black-holes
them, and the result says so. TARGET may be across the WAN or through the
tunnel. With --udp the probes go to a vcpe reflector (PORT, default 12345)
instead, for paths that filter ICMP echo; the reflector answers up to 1,500
bytes.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := signalContext(cmd.Context())
			defer cancel()
			out := cmd.OutOrStdout()
			o := diag.MTUOptions{Timeout: timeout, Max: maxSize}
			if timeout <= 0 {
				return cli.Usagef("--timeout %v: give a positive duration, e.g. --timeout 1s", timeout)
			}
			if maxSize != 0 && (maxSize < 68 || maxSize > 65535) {
				return cli.Usagef("--max %d: give a packet size from 68 to 65535 bytes", maxSize)
			}
			if source != "" {
				a, err := netip.ParseAddr(source)
				if err != nil || !a.Unmap().Is4() {
					return cli.Usagef("--source %q: give an IPv4 address of this host, e.g. --source 198.18.0.11", source)
				}
				o.Source = a.Unmap()
			}
			var target netip.Addr
			if useUDP {
				ap, err := resolveTargetPort(ctx, args[0])
				if err != nil {
					return err
				}
				target, o.UDP, o.Port = ap.Addr(), true, ap.Port()
			} else {
				a, err := resolveTarget(ctx, args[0])
				if err != nil {
					return err
				}
				target = a
			}
			if !asJSON {
				o.OnStep = func(s diag.MTUStep) {
					line := fmt.Sprintf("%5d bytes: %s", s.Size, s.Outcome)
					if s.From.IsValid() && s.Outcome != "reply" {
						line += " from " + s.From.String()
					}
					if s.MTU > 0 {
						line += fmt.Sprintf(" (next-hop MTU %d)", s.MTU)
					}
					if s.Outcome == "silent" {
						line += fmt.Sprintf(" (%d probes)", s.Probes)
					}
					fmt.Fprintln(out, line)
				}
			}
			res, err := diag.PathMTU(ctx, target, o)
			if err != nil {
				return fmt.Errorf("probe mtu %s: %w", args[0], err)
			}
			if asJSON {
				return cli.WriteJSON(out, res)
			}
			fmt.Fprintf(out, "path MTU to %s: %d (%s)\n%s\n", res.Target, res.MTU, res.Verdict, res.Detail)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&source, "source", "", "source IPv4 address to send from")
	fl.DurationVar(&timeout, "timeout", time.Second, "wait for each probe's answer")
	fl.IntVar(&maxSize, "max", 0, "largest size to try (default: the MTU of the route to TARGET)")
	fl.BoolVar(&asJSON, "json", false, "print the result as JSON")
	fl.BoolVar(&useUDP, "udp", false, "probe a vcpe reflector over UDP instead of ICMP echo")
	return cmd
}

func newProbeReflectCmd() *cobra.Command {
	var (
		listen string
		perSrc float64
		burst  int
	)
	cmd := &cobra.Command{
		Use:   "reflect",
		Short: fmt.Sprintf("Run a UDP probe reflector in the foreground (default on UDP %d)", diag.ReflectorPort),
		Long: `Answers well-formed vcpe UDP probes with a reply of the same size, refuses
malformed and oversized ones, and rate-limits every source so it cannot be
used as an amplifier. Runs until interrupted; prints its counters on exit.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ap, err := netip.ParseAddrPort(listen)
			if err != nil || !ap.Addr().Unmap().Is4() {
				return cli.Usagef("--listen %q: give an IPv4 address and port, e.g. --listen 0.0.0.0:%d", listen, diag.ReflectorPort)
			}
			if perSrc <= 0 || burst < 1 {
				return cli.Usagef("--rate %v --burst %d: give a positive rate and a burst of at least 1", perSrc, burst)
			}
			ctx, cancel := signalContext(cmd.Context())
			defer cancel()
			pc, err := net.ListenPacket("udp4", ap.String())
			if err != nil {
				return fmt.Errorf("listen on UDP %s: %w", ap, err)
			}
			defer pc.Close()
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			r := &diag.Reflector{PerSource: rate.Limit(perSrc), PerSourceBurst: burst, Logger: log}
			log.Info("reflector listening", "addr", pc.LocalAddr().String())
			err = r.Serve(ctx, pc)
			st := r.Stats()
			log.Info("reflector stopped", "answered", st.Answered, "malformed", st.Malformed, "oversized", st.Oversized, "rate_limited", st.RateLimited)
			if err != nil {
				return fmt.Errorf("reflector on %s: %w", ap, err)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&listen, "listen", fmt.Sprintf("0.0.0.0:%d", diag.ReflectorPort), "UDP address to listen on")
	fl.Float64Var(&perSrc, "rate", 100, "replies per second to one source")
	fl.IntVar(&burst, "burst", 20, "burst of replies allowed to one source")
	return cmd
}
