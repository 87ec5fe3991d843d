package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/cmd/internal/cli"
	"github.com/openvcpe/vcpe/diag"
	"github.com/openvcpe/vcpe/internal/atomicfile"
	"github.com/openvcpe/vcpe/internal/device"
	"github.com/openvcpe/vcpe/precheck"
	"github.com/openvcpe/vcpe/provision"
	"github.com/openvcpe/vcpe/tui"
)

type installFlags struct {
	yes, json, force                       bool
	config, controller, fingerprint, sn    string
	advertise                              []string
	lanIf, wanIf, stateDir, keyFile, vcped string
	uapiDir, service                       string
	tunnelTimeout                          time.Duration
	lanGateway                             string
	lanTargets                             []string
}

// installResult is the --json document of vcpe install.
type installResult struct {
	OK           bool                   `json:"ok"`
	Changed      bool                   `json:"changed"`
	Result       string                 `json:"result"` // "changed", "unchanged" or "failed"
	Steps        []provision.StepResult `json:"steps"`
	Plan         *provision.Plan        `json:"plan,omitempty"`
	Connectivity []diag.Result          `json:"connectivity,omitempty"`
	Precheck     []precheck.Result      `json:"precheck,omitempty"`
	Error        string                 `json:"error,omitempty"`
	RolledBack   bool                   `json:"rolled_back,omitempty"`
}

func newInstallCmd() *cobra.Command {
	f := &installFlags{}
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Make this host a vCPE: precheck, register, plan, apply, start the daemon, test",
		Long: `install runs the whole flow: precheck the host, register with the controller,
plan and show the changes, enable forwarding, start vcped (a systemd unit, or a
detached process where systemd is not PID 1), wait for the tunnel and probe the hub.
Every change is journalled first; a failure undoes everything this run did, and
'vcpe uninstall' undoes a completed install. A second run with the same inputs
changes nothing and says so.

With --yes nothing is asked: values come from flags, VCPE_* environment variables
or --config FILE (YAML; flags win over the environment, which wins over the file).
The device key comes from --key-file, VCPE_KEY or standard input, never a flag.
Without --yes, on a terminal, the wizard asks for what is missing.

One install or uninstall runs at a time per state dir and per host: a second one
says who holds the lock and exits 2 without changing anything. An install that was
killed is undone by the next install before it starts afresh (or by uninstall).

Exit 0 installed or unchanged, 1 a step failed (the host is as it was), 2 bad input
or another install or uninstall running.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runInstall(cmd, f) },
	}
	fl := cmd.Flags()
	fl.BoolVarP(&f.yes, "yes", "y", false, "no prompts: take every value from flags, environment or --config")
	fl.BoolVar(&f.json, "json", false, "print a JSON summary on stdout (progress goes to stderr)")
	fl.StringVar(&f.config, "config", "", "YAML file with the install values (keys: controller, controller_fingerprint, sn, advertise, lan_if, wan_if, state_dir, key_file, force, lan_gateway, lan_targets)")
	fl.StringVar(&f.controller, "controller", "", "controller URL, https://HOST:PORT")
	fl.StringVar(&f.fingerprint, "controller-fingerprint", "", "the controller CA's sha256:… fingerprint, as vcpe-hub serve prints it")
	fl.StringVar(&f.sn, "sn", "", "the device's serial number")
	fl.StringSliceVar(&f.advertise, "advertise", nil, "LAN prefixes behind this device, comma separated (e.g. 198.19.1.0/24)")
	fl.StringVar(&f.lanIf, "lan-if", "", "LAN-facing interface (default: the one with an address in an advertised prefix)")
	fl.StringVar(&f.wanIf, "wan-if", "", "Internet-facing interface (default: the IPv4 default route's)")
	fl.StringVar(&f.stateDir, "state-dir", "", "device state directory (default "+device.DefaultStateDir+")")
	fl.StringVar(&f.keyFile, "key-file", "", "file holding the device key")
	fl.BoolVar(&f.force, "force", false, "accept routes that would capture the SSH client or the controller")
	fl.StringVar(&f.vcped, "vcped", "", "path of the vcped binary (default: next to vcpe, else on PATH)")
	fl.StringVar(&f.uapiDir, "uapi-dir", os.Getenv("VCPE_UAPI_DIR"), "directory for vcped's WireGuard UAPI socket ($VCPE_UAPI_DIR; default /var/run/wireguard)")
	fl.StringVar(&f.service, "service", provision.ServiceAuto, "how to run vcped: auto, systemd or process")
	fl.StringVar(&f.lanGateway, "lan-gateway", "", "multi-attach: the LAN hosts' gateway ADDR/LEN, held by whichever device of the pair is active (e.g. 198.19.1.254/24)")
	fl.StringSliceVar(&f.lanTargets, "lan-target", nil, "multi-attach: LAN hosts to probe; when none answers the device gives up the active role")
	fl.DurationVar(&f.tunnelTimeout, "tunnel-timeout", 30*time.Second, "how long to wait for the first handshake")
	return cmd
}

// inputs resolves the install values: config file, then environment, then
// the flags that were given.
func (f *installFlags) inputs(cmd *cobra.Command) (provision.InstallInput, error) {
	var file provision.InstallInput
	cfg := f.config
	if cfg == "" {
		cfg = os.Getenv("VCPE_CONFIG")
	}
	if cfg != "" {
		var err error
		if file, err = provision.LoadInstallConfig(cfg); err != nil {
			return file, err
		}
	}
	env, err := provision.InstallInputFromEnv(os.Getenv)
	if err != nil {
		return env, err
	}
	flags := provision.InstallInput{
		Controller: f.controller, ControllerFingerprint: f.fingerprint, SN: f.sn, Advertise: f.advertise,
		LANInterface: f.lanIf, WANInterface: f.wanIf, StateDir: f.stateDir, KeyFile: f.keyFile, Force: f.force,
		LANGateway: f.lanGateway, LANTargets: f.lanTargets,
	}
	in := file.Merge(env).Merge(flags)
	if in.StateDir == "" {
		in.StateDir = device.DefaultStateDir
	}
	return in, nil
}

func runInstall(cmd *cobra.Command, f *installFlags) error {
	in, err := f.inputs(cmd)
	if err != nil {
		return &cli.UsageError{Err: err}
	}
	adv, err := provision.ParseAdvertise(in.Advertise)
	if err != nil {
		return &cli.UsageError{Err: err}
	}
	vcped, err := findVcped(f.vcped)
	if err != nil {
		return err
	}
	given := provision.Registration{
		Controller: in.Controller, Fingerprint: in.ControllerFingerprint, SN: strings.TrimSpace(in.SN),
		Advertise: adv, Force: in.Force,
	}
	opts := provision.InstallOptions{
		StateDir: in.StateDir, Vcped: vcped, UAPIDir: f.uapiDir, Service: f.service,
		LANInterface: in.LANInterface, WANInterface: in.WANInterface,
		SSHConnection: os.Getenv("SSH_CONNECTION"), TunnelTimeout: f.tunnelTimeout,
	}
	if opts.LANGateway, err = provision.ParseLANGateway(in.LANGateway, adv); err != nil {
		return &cli.UsageError{Err: err}
	}
	if opts.LANTargets, err = provision.ParseLANTargets(in.LANTargets); err != nil {
		return &cli.UsageError{Err: err}
	}
	given.WANInterface, given.LANInterface = in.WANInterface, in.LANInterface
	given.LANGateway, given.LANTargets = opts.LANGateway, opts.LANTargets
	// One install or uninstall at a time, per state dir and per host; the
	// lock is freed by the kernel if this process is killed.
	lock, err := provision.AcquireLock(in.StateDir, "install")
	if err != nil {
		return &cli.UsageError{Err: err}
	}
	defer lock.Release()
	// Temporary files of atomic writes a killed run left behind.
	atomicfile.RemoveTemps(in.StateDir)
	if !f.yes {
		if in.KeyFile != "" || os.Getenv("VCPE_KEY") != "" {
			key, err := readDeviceKey(cmd, in.KeyFile)
			if err != nil {
				return err
			}
			given.Key = provision.NewSecret(key)
		}
		opts.Given = given
		return runWizard(cmd, opts)
	}
	key, err := installKey(cmd, in.KeyFile)
	if err != nil {
		return err
	}
	given.Key = provision.NewSecret(key)
	opts.Given, opts.Prompter = given, provision.AutoPrompter{Reg: given}
	res := installResult{Steps: []provision.StepResult{}}
	eng, err := provision.NewInstall(opts)
	if err != nil {
		return installInputError(err)
	}
	progress := cmd.ErrOrStderr()
	eng.Emit = func(ev provision.Event) {
		writeEvent(progress, ev)
		res.collect(ev)
	}
	// Ctrl-C or SIGTERM cancels the run; the Engine rolls back by itself.
	sum, runErr := eng.Run(cmd.Context())
	res.OK, res.Changed, res.Steps, res.RolledBack = sum.OK, sum.Changed, sum.Steps, sum.RolledBack
	switch {
	case runErr != nil:
		res.Result, res.Error = "failed", runErr.Error()
	case sum.Changed:
		res.Result = "changed"
	default:
		res.Result = "unchanged"
	}
	out := cmd.OutOrStdout()
	if f.json {
		if err := cli.WriteJSON(out, res); err != nil {
			return err
		}
	} else if runErr == nil {
		writeInstallSummary(out, res)
	}
	if runErr != nil {
		err := runErr
		if f.json {
			err = cli.Failed(runErr) // already in the document
		}
		var ie *api.InputError
		if errors.As(runErr, &ie) {
			return &cli.UsageError{Err: err}
		}
		return err
	}
	return nil
}

// runWizard runs the same install Engine behind the TUI wizard, which asks
// for what flags, environment and config file did not give.
func runWizard(cmd *cobra.Command, opts provision.InstallOptions) error {
	// Check the options once before the wizard starts, so bad flags fail
	// at once with exit 2 instead of inside the wizard.
	if _, err := provision.NewInstall(withPrompter(opts, provision.AutoPrompter{})); err != nil {
		return installInputError(err)
	}
	newEngine := func(p provision.Prompter, emit func(provision.Event)) tui.Installer {
		eng, err := provision.NewInstall(withPrompter(opts, p))
		if err != nil { // checked above; only a vanished state dir gets here
			return failedInstall{err}
		}
		eng.Emit = emit
		return eng
	}
	sum, err := tui.Run(cmd.Context(), newEngine, tui.Options{})
	switch {
	case errors.Is(err, tui.ErrNoTTY):
		return &cli.UsageError{Err: err}
	case errors.Is(err, tui.ErrQuit):
		return cli.Failed(err)
	case err != nil:
		return err
	}
	res := installResult{OK: sum.OK, Changed: sum.Changed, Steps: sum.Steps}
	writeInstallSummary(cmd.OutOrStdout(), res)
	return nil
}

func withPrompter(o provision.InstallOptions, p provision.Prompter) provision.InstallOptions {
	o.Prompter = p
	return o
}

type failedInstall struct{ err error }

func (f failedInstall) Run(context.Context) (provision.Summary, error) {
	return provision.Summary{Error: f.err.Error()}, f.err
}

func installInputError(err error) error {
	var ie *api.InputError
	if errors.As(err, &ie) {
		return &cli.UsageError{Err: err}
	}
	return err
}

// collect keeps the result documents the Engine's events carry.
func (res *installResult) collect(ev provision.Event) {
	switch d := ev.Data.(type) {
	case provision.Plan:
		res.Plan = &d
	case diag.Result:
		res.Connectivity = append(res.Connectivity, d)
	case precheck.Result:
		res.Precheck = append(res.Precheck, d)
	}
}

// writeEvent prints one Engine event as a progress line: steps as they
// start and finish, and the precheck findings that are not a pass.
func writeEvent(w io.Writer, ev provision.Event) {
	switch ev.Kind {
	case provision.EventStarted:
		fmt.Fprintf(w, "==> %s: %s\n", ev.Step, ev.Message)
	case provision.EventProgress:
		if r, ok := ev.Data.(precheck.Result); ok {
			if r.Status == precheck.Warn || r.Status == precheck.Fail {
				fmt.Fprintf(w, "    %s %s: %s\n", strings.ToUpper(string(r.Status)), r.ID, r.Detail)
				if r.Fix != "" {
					fmt.Fprintf(w, "         fix: %s\n", r.Fix)
				}
			}
			return
		}
		fmt.Fprintf(w, "    %s\n", ev.Message)
	case provision.EventFinished:
		fmt.Fprintf(w, "    %s: %s\n", strings.ToUpper(string(ev.Status)), ev.Message)
	}
}

func writeInstallSummary(w io.Writer, res installResult) {
	if !res.Changed {
		fmt.Fprintln(w, "vcpe install: unchanged — this host is already installed with these values")
	} else {
		fmt.Fprintln(w, "vcpe install: installed")
	}
	if p := res.Plan; p != nil {
		fmt.Fprintf(w, "  device %s, overlay %s, hub %s, role %s\n", p.SN, p.OverlayAddr, p.HubEndpoint, p.Role)
		if len(p.LANCommands) > 0 {
			fmt.Fprintln(w, "  on the LAN's router (or each LAN host), send the learned prefixes to this device:")
			for _, c := range p.LANCommands {
				fmt.Fprintf(w, "    %s\n", c)
			}
		}
		for _, warn := range p.Warnings {
			fmt.Fprintf(w, "  warning: %s\n", warn)
		}
	}
	fmt.Fprintln(w, "  status: vcpe status; undo: vcpe uninstall")
}

// installKey reads the device key from --key-file, VCPE_KEY or standard
// input (when it is not a terminal: --yes never prompts).
func installKey(cmd *cobra.Command, keyFile string) (string, error) {
	if keyFile != "" || os.Getenv("VCPE_KEY") != "" {
		return readDeviceKey(cmd, keyFile)
	}
	if term.IsTerminal(int(os.Stdin.Fd())) {
		return "", cli.Usagef("no device key: pass --key-file FILE, set VCPE_KEY, or pipe the key on standard input")
	}
	line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the device key from standard input: %w", err)
	}
	if k := strings.TrimSpace(line); k != "" {
		return k, nil
	}
	return "", cli.Usagef("no device key: pass --key-file FILE, set VCPE_KEY, or pipe the key on standard input")
}

// findVcped returns the vcped binary: the flag, the one next to this
// vcpe, or the one on PATH.
func findVcped(flag string) (string, error) {
	if flag != "" {
		p, err := filepath.Abs(flag)
		if err != nil {
			return "", cli.Usagef("--vcped %q: %v", flag, err)
		}
		if _, err := os.Stat(p); err != nil {
			return "", cli.Usagef("--vcped %s: %v", p, err)
		}
		return p, nil
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "vcped")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		p := filepath.Join(dir, "vcped")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return filepath.Abs(p)
		}
	}
	return "", cli.Usagef("vcped not found next to vcpe or on PATH: install it (make build puts it in bin/) or pass --vcped PATH")
}
