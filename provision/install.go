package provision

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/dataplane"
	"github.com/openvcpe/vcpe/diag"
	"github.com/openvcpe/vcpe/diag/suite"
	"github.com/openvcpe/vcpe/internal/command"
	"github.com/openvcpe/vcpe/internal/device"
	"github.com/openvcpe/vcpe/internal/logfile"
	"github.com/openvcpe/vcpe/precheck"
)

// Service modes of the daemon hand-off.
const (
	ServiceAuto    = "auto"    // systemd when it is PID 1, a detached process otherwise
	ServiceSystemd = "systemd" // a unit in UnitDir
	ServiceProcess = "process" // a detached process with a pid file in the state dir
)

// Files the install keeps in the state dir besides the state itself.
const (
	PIDFile = device.PIDFile
	LogFile = "vcped.log"
	// LogBackups is how many rotated logs (vcped.log.1, …) a detached
	// vcped keeps; each log file holds up to 10 MiB.
	LogBackups = 3
)

// InstallOptions configure an install run. Zero values take the defaults
// named on each field.
type InstallOptions struct {
	StateDir     string // DefaultStateDir
	Vcped        string // absolute path of the vcped binary
	UAPIDir      string // passed to vcped; empty: vcped's default
	Service      string // ServiceAuto
	UnitDir      string // /etc/systemd/system
	LANInterface string // the LAN-facing interface; guessed from the advertised prefixes when empty
	WANInterface string // the WAN interface; the default route's when empty
	// LANGateway (multi-attach) is the gateway address LAN hosts use, with
	// the LAN's prefix length; the active device of the pair holds it.
	// LANTargets are LAN hosts vcped probes to detect a broken LAN side.
	LANGateway netip.Prefix
	LANTargets []netip.Addr
	// SSHConnection is the value of SSH_CONNECTION: the plan refuses routes
	// that would capture the SSH client.
	SSHConnection string
	// TunnelTimeout bounds the wait for the first handshake (30 s).
	TunnelTimeout time.Duration
	// ProbeCount is how many probes the connectivity test sends per
	// target (5).
	ProbeCount int

	Prompter Prompter
	// Given is what flags, environment or config file already say: the
	// wizard shows it prefilled, precheck reaches its controller.
	Given Registration
	// Gather takes the host snapshot precheck judges; precheck.Gather when nil.
	Gather func(ctx context.Context) (*precheck.Snapshot, error)
	Sysctl Sysctl         // ProcSysctl{} when nil
	Runner command.Runner // command.Exec when nil
	Client device.ClientOptions
	Log    *slog.Logger
	Now    func() time.Time
}

func (o *InstallOptions) defaults() {
	if o.StateDir == "" {
		o.StateDir = device.DefaultStateDir
	}
	if o.Service == "" {
		o.Service = ServiceAuto
	}
	if o.UnitDir == "" {
		o.UnitDir = "/etc/systemd/system"
	}
	if o.TunnelTimeout == 0 {
		o.TunnelTimeout = 30 * time.Second
	}
	if o.ProbeCount == 0 {
		o.ProbeCount = 5
	}
	if o.Gather == nil {
		o.Gather = func(ctx context.Context) (*precheck.Snapshot, error) {
			return precheck.Gather(ctx, precheck.GatherOptions{})
		}
	}
	if o.Sysctl == nil {
		o.Sysctl = ProcSysctl{}
	}
	if o.Runner == nil {
		o.Runner = command.Exec{}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// install is one install run's shared state, filled step by step.
type install struct {
	o       InstallOptions
	j       *Journal
	snap    *precheck.Snapshot
	report  precheck.Report
	reg     Registration
	state   *device.State
	plan    Plan
	service string
	forward bool // ip_forward must be turned on
	protect []Protected
	lanGW   netip.Addr
	results []diag.Result
	// repaired: the device state was re-registered; a running vcped holds
	// the old credential and is restarted.
	repaired bool
	precheck precheck.Options
}

// NewInstall returns the install Engine: precheck → register → plan →
// review → apply → start → tunnel → connectivity, every host change
// journalled in the state dir.
func NewInstall(o InstallOptions) (*Engine, error) {
	o.defaults()
	if o.Prompter == nil {
		return nil, errors.New("install: no Prompter")
	}
	if !filepath.IsAbs(o.Vcped) {
		return nil, &api.InputError{Field: "--vcped", Msg: fmt.Sprintf("%q must be the absolute path of the vcped binary", o.Vcped)}
	}
	switch o.Service {
	case ServiceAuto:
		o.Service = ServiceProcess
		if SystemdRunning() {
			o.Service = ServiceSystemd
		}
	case ServiceSystemd, ServiceProcess:
	default:
		return nil, &api.InputError{Field: "--service", Msg: fmt.Sprintf("%q: use auto, systemd or process", o.Service)}
	}
	j, err := OpenJournal(o.StateDir, o.Sysctl, o.Now)
	if err != nil {
		return nil, err
	}
	j.Run = o.Runner
	j.Client = o.Client
	in := &install{o: o, j: j, service: o.Service}
	return &Engine{
		Journal: j,
		Now:     o.Now,
		Log:     o.Log,
		Steps: []Step{
			{ID: StepPrecheck, Title: "Check the host", Run: in.stepPrecheck},
			{ID: StepRegister, Title: "Register with the controller", Run: in.stepRegister},
			{ID: StepPlan, Title: "Plan the changes", Run: in.stepPlan},
			{ID: StepReview, Title: "Review the plan", Run: in.stepReview},
			{ID: StepApply, Title: "Enable forwarding", Run: in.stepApply},
			{ID: StepStart, Title: "Start the dataplane daemon", Run: in.stepStart},
			{ID: StepTunnel, Title: "Wait for the tunnel", Run: in.stepTunnel},
			{ID: StepConnectivity, Title: "Test connectivity", Run: in.stepConnectivity},
		},
	}, nil
}

// hubEndpoints asks the controller given which hubs its devices dial, for
// wan.internet to probe them; nil (probe the controller's host, as for a
// one-host set-up) when no fingerprint is given yet or the controller does
// not say (an older controller, or unreachable: wan.internet reports that).
func (in *install) hubEndpoints(ctx context.Context) []netip.AddrPort {
	if in.o.Given.Fingerprint == "" {
		return nil
	}
	cl, err := device.NewClient(in.o.Given.Controller, in.o.Given.Fingerprint, in.o.Client)
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	eps, err := cl.HubEndpoints(ctx)
	if err != nil {
		in.o.Log.Debug("the controller names no hub endpoints; wan.internet probes its host", "err", err)
		return nil
	}
	return eps
}

func (in *install) stepPrecheck(ctx context.Context, r *Run) (Status, string, error) {
	in.precheck = precheck.Options{WANInterface: in.o.WANInterface}
	if u, err := url.Parse(in.o.Given.Controller); err == nil && u.Host != "" {
		in.precheck.Controller = u
		in.precheck.HubEndpoints = in.hubEndpoints(ctx)
	}
	for {
		snap, err := in.o.Gather(ctx)
		if err != nil {
			return StatusFailed, "", fmt.Errorf("gather host snapshot: %w", err)
		}
		rep := precheck.Run(ctx, snap, in.precheck)
		for _, res := range rep.Checks {
			r.Progress(fmt.Sprintf("%s %s: %s", res.Status, res.ID, res.Detail), res)
		}
		in.snap, in.report = snap, rep
		dec, err := in.o.Prompter.AfterPrecheck(ctx, rep)
		if err != nil {
			return StatusFailed, "", err
		}
		switch dec {
		case PrecheckRerun:
			continue
		case PrecheckAbort:
			return StatusFailed, "", errors.New("stopped after precheck; nothing was changed")
		}
		c := rep.Counts()
		msg := fmt.Sprintf("%d pass, %d warn, %d fail, %d skip", c[precheck.Pass], c[precheck.Warn], c[precheck.Fail], c[precheck.Skip])
		if c[precheck.Warn] > 0 || c[precheck.Fail] > 0 {
			return StatusWarn, msg, nil
		}
		return StatusUnchanged, msg, nil
	}
}

// suggestions offers the LAN prefixes of the host's non-WAN interfaces.
func (in *install) suggestions() Suggestions {
	s := Suggestions{WANInterface: in.snap.WANInterface(in.o.WANInterface), Given: in.o.Given}
	addrs, _ := in.snap.Addresses()
	names := make([]string, 0, len(addrs))
	for n := range addrs {
		names = append(names, n)
	}
	slices.Sort(names)
	def := in.snap.WANInterface("")
	for _, n := range names {
		if n != "lo" && !strings.HasPrefix(n, "vcpe") {
			s.Interfaces = append(s.Interfaces, Interface{Name: n, Addrs: addrs[n], DefaultRoute: n == def})
		}
	}
	for _, n := range names {
		if n == s.WANInterface || n == "lo" || strings.HasPrefix(n, "vcpe") {
			continue
		}
		for _, p := range addrs[n] {
			if p.Addr().Is4() && !p.Addr().IsLoopback() && !p.Addr().IsLinkLocalUnicast() && !slices.Contains(s.LANPrefixes, p.Masked()) {
				s.LANPrefixes = append(s.LANPrefixes, p.Masked())
			}
		}
	}
	return s
}

func (in *install) stepRegister(ctx context.Context, r *Run) (Status, string, error) {
	reg, err := in.o.Prompter.Registration(ctx, in.suggestions())
	if err != nil {
		return StatusFailed, "", err
	}
	if err := validateRegistration(&reg); err != nil {
		return StatusFailed, "", err
	}
	if err := in.takeNetwork(reg); err != nil {
		return StatusFailed, "", err
	}
	in.reg = reg
	var corrupt *device.CorruptStateError
	if st, err := device.LoadState(in.o.StateDir); err == nil && st.SN == reg.SN && st.Controller == reg.Controller &&
		st.ControllerFingerprint == reg.Fingerprint && slices.Equal(st.Advertise, reg.Advertise) && st.Credential != "" {
		in.state = st
		if err := in.askAttach(ctx); err != nil {
			return StatusFailed, "", err
		}
		return StatusUnchanged, fmt.Sprintf("already registered as %s (overlay %s)", st.SN, st.Config.OverlayAddr), nil
	} else if err != nil && !errors.Is(err, device.ErrNoState) && !errors.As(err, &corrupt) {
		return StatusFailed, "", err
	}
	if _, err := in.j.MkdirAll(in.o.StateDir, 0o700); err != nil {
		return StatusFailed, "", err
	}
	for _, f := range []string{device.StateFile, device.PendingKeyFile} {
		if err := in.j.RecordFile(filepath.Join(in.o.StateDir, f)); err != nil {
			return StatusFailed, "", err
		}
	}
	if corrupt != nil {
		// Repair: the damaged file is in the journal (an undo puts it
		// back); registering again with the journal's WireGuard key gives
		// a new credential and configuration.
		if _, ok := in.j.RegistrationKey(reg.SN, reg.Fingerprint); !ok {
			return StatusFailed, "", fmt.Errorf("%w; the journal holds no WireGuard key of %s to register again with: run 'vcpe uninstall --yes', ask the operator to free the SN (vcpe-hub device reset-key %s), then install again", corrupt, reg.SN, reg.SN)
		}
		r.Progress("repairing the corrupt "+corrupt.Path+" (kept in the journal)", nil)
		if err := os.Remove(corrupt.Path); err != nil {
			return StatusFailed, "", fmt.Errorf("move the corrupt device state aside: %w", err)
		}
	}
	// Write-ahead: the WireGuard key the SN will be bound to is journalled
	// before the request is sent, so that an undo can give the slot back
	// whether or not the answer arrives (a kill, a lost connection, a full
	// disk when the state is saved). A key a killed install journalled is
	// used again: the controller accepts the same key twice.
	priv, err := in.registrationKey(reg)
	if err != nil {
		return StatusFailed, "", err
	}
	if err := in.j.RecordRegistration(in.o.StateDir, RegistrationIntent{
		Controller: reg.Controller, Fingerprint: reg.Fingerprint, SN: reg.SN, PrivateKey: priv,
	}); err != nil {
		return StatusFailed, "", err
	}
	testPause("register:journalled")
	r.Progress("registering "+reg.SN+" with "+reg.Controller, nil)
	register := func() (*device.State, error) {
		return device.Register(ctx, device.RegisterParams{
			StateDir: in.o.StateDir, Controller: reg.Controller, Fingerprint: reg.Fingerprint,
			SN: reg.SN, Key: reg.Key.Reveal(), Advertise: reg.Advertise, Client: in.o.Client,
			ExcludeProbe: in.o.LANGateway.Addr(), LANGateway: in.o.LANGateway, PrivateKey: priv,
			Answered: func() { testPause("register:answered") },
		})
	}
	registeredGW := in.o.LANGateway
	st, err := register()
	if err != nil {
		return StatusFailed, "", err
	}
	in.state = st
	if err := in.askAttach(ctx); err != nil {
		return StatusFailed, "", err
	}
	if in.o.LANGateway != registeredGW {
		// The gateway was chosen after the controller answered: register
		// again (same key) so the instance's other device is told it.
		r.Progress("telling the controller the shared gateway "+in.o.LANGateway.String(), nil)
		if st, err = register(); err != nil {
			return StatusFailed, "", err
		}
		in.state = st
	}
	// A running vcped holds the credential of the earlier registration.
	in.repaired = true
	return StatusOK, fmt.Sprintf("registered %s: overlay %s, hub %s, role %s", st.SN, st.Config.OverlayAddr, st.Config.HubEndpoint, st.Config.Role), nil
}

// takeNetwork checks the interfaces and multi-attach settings of the
// answers against the host and takes them over the options: the same
// checks for --yes and the wizard.
func (in *install) takeNetwork(reg Registration) error {
	ifs := in.suggestions().Interfaces
	if reg.WANInterface != "" {
		if err := ValidateInterface("--wan-if", reg.WANInterface, ifs); err != nil {
			return err
		}
		in.o.WANInterface = reg.WANInterface
	}
	if reg.LANInterface != "" {
		if err := ValidateInterface("--lan-if", reg.LANInterface, ifs); err != nil {
			return err
		}
		in.o.LANInterface = reg.LANInterface
	}
	if in.o.LANInterface != "" && in.o.LANInterface == in.o.WANInterface {
		return &api.InputError{Field: "--lan-if", Msg: fmt.Sprintf("%s is also the WAN interface; the LAN must be another interface", in.o.LANInterface)}
	}
	if reg.LANGateway.IsValid() {
		in.o.LANGateway = reg.LANGateway
	}
	if len(reg.LANTargets) > 0 {
		in.o.LANTargets = reg.LANTargets
	}
	if in.o.LANGateway.IsValid() {
		if _, err := ParseLANGateway(in.o.LANGateway.String(), reg.Advertise); err != nil {
			return err
		}
	}
	return nil
}

// askAttach asks a Prompter that can (the wizard) for the multi-attach
// settings, now that the controller has told about the instance.
func (in *install) askAttach(ctx context.Context) error {
	ap, ok := in.o.Prompter.(AttachPrompter)
	if !ok {
		return nil
	}
	cfg := in.state.Config
	q := AttachQuestion{Instance: cfg.InstanceName, Role: cfg.Role, LAN: cfg.Advertised, Given: in.reg}
	q.Given.LANGateway, q.Given.LANTargets, q.Given.LANInterface = in.o.LANGateway, in.o.LANTargets, in.o.LANInterface
	attachFromConfig(&q, cfg)
	if !q.MultiDevice() {
		return nil
	}
	a, err := ap.Attach(ctx, q)
	if err != nil {
		return err
	}
	if a.LANGateway.IsValid() {
		if _, err := ParseLANGateway(a.LANGateway.String(), cfg.Advertised); err != nil {
			return err
		}
	}
	in.o.LANGateway, in.o.LANTargets = a.LANGateway, a.LANTargets
	return nil
}

// registrationKey is the WireGuard key to register: the state's (a
// device registering again), a killed install's from the journal, or a new
// one.
func (in *install) registrationKey(reg Registration) (api.Key, error) {
	if st, err := device.LoadState(in.o.StateDir); err == nil && st.SN == reg.SN && st.ControllerFingerprint == reg.Fingerprint && !st.PrivateKey.IsZero() {
		return st.PrivateKey, nil
	}
	if k, ok := in.j.RegistrationKey(reg.SN, reg.Fingerprint); ok {
		return k, nil
	}
	return api.GeneratePrivateKey()
}

// validateRegistration checks the operator's answers and normalises the
// fingerprint.
func validateRegistration(reg *Registration) error {
	// The URLs of several controller replicas may be given comma-separated.
	for _, u := range strings.Split(reg.Controller, ",") {
		if _, err := device.ParseControllerURL(strings.TrimSpace(u)); err != nil {
			return err
		}
	}
	fp, err := device.ParseFingerprint(reg.Fingerprint)
	if err != nil {
		return err
	}
	reg.Fingerprint = fp
	if err := api.ValidateSN(reg.SN); err != nil {
		return err
	}
	if reg.Key.IsZero() {
		return &api.InputError{Field: "key", Msg: "missing; pass --key-file FILE, set VCPE_KEY, or pipe the key on standard input"}
	}
	if len(reg.Advertise) == 0 {
		return &api.InputError{Field: "--advertise", Msg: "missing; pass the LAN prefixes behind this device, e.g. --advertise 198.19.1.0/24"}
	}
	return nil
}

func (in *install) stepPlan(ctx context.Context, r *Run) (Status, string, error) {
	cfg := in.state.Config
	p := Plan{
		StateDir: in.o.StateDir, SN: in.state.SN, OverlayAddr: cfg.OverlayAddr, HubEndpoint: cfg.HubEndpoint,
		Role: cfg.Role, Advertised: cfg.Advertised, Routes: cfg.Routes,
	}
	// Never cut off the operator or the path to the controller and hub.
	if a, ok := SSHClient(in.o.SSHConnection); ok {
		in.protect = append(in.protect, Protected{a, "the SSH client (SSH_CONNECTION)"})
	}
	if a, err := hostAddr(ctx, in.reg.Controller); err == nil {
		in.protect = append(in.protect, Protected{a, "the controller"})
	}
	if cfg.HubEndpoint.IsValid() {
		in.protect = append(in.protect, Protected{cfg.HubEndpoint.Addr(), "the hub endpoint"})
	}
	tunnel := append(slices.Clone(cfg.Routes), cfg.OverlayAddr.Masked())
	if err := CheckLockout(tunnel, in.protect); err != nil {
		force := in.reg.Force
		var le *LockoutError
		if lp, ok := in.o.Prompter.(LockoutPrompter); ok && !force && errors.As(err, &le) {
			var perr error
			if force, perr = lp.OverrideLockout(ctx, le); perr != nil {
				return StatusFailed, "", perr
			}
		}
		if !force {
			return StatusFailed, "", err
		}
		in.reg.Force = true
		p.Warnings = append(p.Warnings, "forced: "+err.Error())
	}
	if v, err := in.o.Sysctl.Get("net.ipv4.ip_forward"); err != nil || v != "1" {
		in.forward = true
		p.Changes = append(p.Changes, fmt.Sprintf("set net.ipv4.ip_forward %s → 1", orUnknown(v)))
	}
	if pid, ok := RunningPID(filepath.Join(in.o.StateDir, PIDFile), in.o.Vcped); ok && in.service == ServiceProcess {
		p.Changes = append(p.Changes, fmt.Sprintf("vcped already running (pid %d): leave it", pid))
	} else if in.service == ServiceSystemd {
		p.Changes = append(p.Changes, "install, enable and start systemd unit "+filepath.Join(in.o.UnitDir, UnitName))
	} else {
		p.Changes = append(p.Changes, "start "+in.o.Vcped+" as a detached, supervised daemon (pid file "+filepath.Join(in.o.StateDir, PIDFile)+")")
	}
	in.lanGW = in.lanGateway(cfg.Advertised)
	if in.o.LANGateway.IsValid() {
		// Multi-attach: LAN hosts use the shared gateway, whichever device
		// of the pair is active, never this device's own address.
		in.lanGW = in.o.LANGateway.Addr()
	}
	if in.lanGW.IsValid() {
		p.LANCommands = LANCommands(cfg.Routes, in.lanGW)
	} else if len(cfg.Routes) > 0 {
		p.Warnings = append(p.Warnings, "no LAN interface found with an address in "+api.JoinPrefixes(cfg.Advertised, ", ")+": pass --lan-if to get the LAN-side route commands")
	}
	p.Warnings = append(p.Warnings, peerGatewayWarnings(cfg.Peers, in.o.LANGateway)...)
	for _, res := range in.report.Checks {
		if res.Status == precheck.Warn {
			p.Warnings = append(p.Warnings, string(res.ID)+": "+res.Detail)
		}
	}
	in.plan = p
	r.Progress("plan ready", p)
	if len(p.Changes) == 0 {
		return StatusUnchanged, "nothing to change", nil
	}
	return StatusOK, strings.Join(p.Changes, "; "), nil
}

// lanGateway is this device's address on the LAN: on --lan-if, or on the
// interface with an address inside an advertised prefix.
func (in *install) lanGateway(advertised []netip.Prefix) netip.Addr {
	addrs, _ := in.snap.Addresses()
	if in.o.LANInterface != "" {
		for _, p := range addrs[in.o.LANInterface] {
			if p.Addr().Is4() {
				return p.Addr()
			}
		}
		return netip.Addr{}
	}
	for _, ps := range addrs {
		for _, p := range ps {
			for _, adv := range advertised {
				if adv.Contains(p.Addr()) {
					return p.Addr()
				}
			}
		}
	}
	return netip.Addr{}
}

func (in *install) stepReview(ctx context.Context, r *Run) (Status, string, error) {
	if err := in.o.Prompter.Confirm(ctx, in.plan); err != nil {
		return StatusFailed, "", err
	}
	return StatusOK, "plan accepted", nil
}

func (in *install) stepApply(ctx context.Context, r *Run) (Status, string, error) {
	changed, err := in.j.SetSysctl("net.ipv4.ip_forward", "1")
	if err != nil {
		return StatusFailed, "", err
	}
	if !changed {
		return StatusUnchanged, "IPv4 forwarding already on", nil
	}
	return StatusOK, "IPv4 forwarding on", nil
}

func (in *install) vcpedArgs() []string {
	// Detached, vcped runs under its own supervisor, which writes the pid
	// file before the daemon starts and restarts it if it dies.
	args := []string{in.o.Vcped, "--supervise", "--pid-file", filepath.Join(in.o.StateDir, PIDFile), "--state-dir", in.o.StateDir,
		"--log-file", filepath.Join(in.o.StateDir, LogFile), "--log-max-backups", strconv.Itoa(LogBackups)}
	if in.o.UAPIDir != "" {
		args = append(args, "--uapi-dir", in.o.UAPIDir)
	}
	if in.o.LANGateway.IsValid() {
		args = append(args, "--lan-gateway", in.o.LANGateway.String())
		if in.o.LANInterface != "" {
			args = append(args, "--lan-if", in.o.LANInterface)
		}
	}
	for _, t := range in.o.LANTargets {
		args = append(args, "--lan-target", t.String())
	}
	return args
}

func (in *install) stepStart(ctx context.Context, r *Run) (Status, string, error) {
	var (
		changed bool
		err     error
		what    string
	)
	switch in.service {
	case ServiceSystemd:
		var unit []byte
		if unit, err = Unit(UnitOptions{Vcped: in.o.Vcped, StateDir: in.o.StateDir, UAPIDir: in.o.UAPIDir}); err != nil {
			return StatusFailed, "", err
		}
		path := filepath.Join(in.o.UnitDir, UnitName)
		changed, err = in.j.InstallUnit(ctx, path, unit)
		what = "systemd unit " + UnitName
		if err == nil && !changed && in.repaired {
			if _, err = in.o.Runner.Output(ctx, "systemctl", "restart", UnitName); err == nil {
				return StatusOK, "restarted " + what + " with the new registration", nil
			}
		}
	default:
		if pid, ok := RunningPID(filepath.Join(in.o.StateDir, PIDFile), in.o.Vcped); ok && in.repaired {
			// The daemon runs on the credential the damaged state held.
			stopPIDs([]int{pid}, func(p int) bool { return procIs(p, in.o.Vcped) })
		}
		// vcped rotates its log into fixed names: record them all, so
		// uninstall removes them.
		if _, running := RunningPID(filepath.Join(in.o.StateDir, PIDFile), in.o.Vcped); !running {
			for _, name := range logfile.Names(filepath.Join(in.o.StateDir, LogFile), LogBackups)[1:] {
				if err := in.j.RecordFile(name); err != nil {
					return StatusFailed, "", err
				}
			}
		}
		changed, err = in.j.StartProcess(ProcessSpec{
			Argv:    in.vcpedArgs(),
			PIDFile: filepath.Join(in.o.StateDir, PIDFile),
			LogFile: filepath.Join(in.o.StateDir, LogFile),
		})
		what = "vcped (pid file " + filepath.Join(in.o.StateDir, PIDFile) + ")"
	}
	if err != nil {
		return StatusFailed, "", err
	}
	if !changed {
		return StatusUnchanged, what + " already running", nil
	}
	return StatusOK, "started " + what, nil
}

func (in *install) stepTunnel(ctx context.Context, r *Run) (Status, string, error) {
	sock := filepath.Join(in.o.StateDir, dataplane.ControlSocket)
	ctx, cancel := context.WithTimeout(ctx, in.o.TunnelTimeout)
	defer cancel()
	var last dataplane.Status
	var lastErr error
	for {
		st, err := dataplane.ReadStatus(sock)
		if err == nil {
			last = st
			if st.State == dataplane.StateUp {
				r.Progress("tunnel up", st)
				return StatusOK, fmt.Sprintf("tunnel up: %s to hub %s", st.OverlayAddr, in.state.Config.HubEndpoint), nil
			}
		}
		lastErr = err
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				why := last.State
				if last.Reason != "" {
					why += ": " + last.Reason
				}
				if why == "" && lastErr != nil {
					why = "vcped does not answer on " + sock + " (see " + filepath.Join(in.o.StateDir, LogFile) + "): " + lastErr.Error()
				}
				return StatusFailed, "", fmt.Errorf("tunnel not up after %v (%s); check that UDP %d reaches the hub (vcpe precheck --controller …)",
					in.o.TunnelTimeout, why, in.state.Config.HubEndpoint.Port())
			}
			return StatusFailed, "", ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stepConnectivity probes, through the tunnel, the same targets as vcpe
// diag: the hub's reflector and the default target of every learned
// prefix, concurrently; each series is reported under its label.
func (in *install) stepConnectivity(ctx context.Context, r *Run) (Status, string, error) {
	targets := suite.TunnelTargets(in.state.Config, nil)
	if len(targets) == 0 {
		return StatusSkipped, "no hub overlay address to probe", nil
	}
	o := diag.Options{Count: in.o.ProbeCount, Interval: 200 * time.Millisecond, Timeout: time.Second}
	type outcome struct {
		res diag.Result
		err error
	}
	outs := make([]outcome, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() {
			res, err := diag.PingUDP(ctx, t.Addr, o)
			outs[i] = outcome{res, err}
		})
	}
	wg.Wait()
	var lines []string
	worst := StatusOK
	for i, t := range targets {
		res, err := outs[i].res, outs[i].err
		if err != nil {
			worst = StatusWarn
			lines = append(lines, t.Label+": "+err.Error())
			continue
		}
		in.results = append(in.results, res)
		r.Progress(t.Label, res)
		st := res.Stats
		lines = append(lines, fmt.Sprintf("%s %s: %d/%d answered, avg %v", t.Label, t.Addr, st.Received, st.Sent, st.Avg.Round(10*time.Microsecond)))
		if st.Received < st.Sent {
			worst = StatusWarn
		}
	}
	return worst, strings.Join(lines, "; "), nil
}

func hostAddr(ctx context.Context, controller string) (netip.Addr, error) {
	u, err := url.Parse(controller)
	if err != nil {
		return netip.Addr{}, err
	}
	if a, err := netip.ParseAddr(u.Hostname()); err == nil {
		return a.Unmap(), nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", u.Hostname())
	if err != nil || len(ips) == 0 {
		return netip.Addr{}, fmt.Errorf("resolve %s: %w", u.Hostname(), err)
	}
	return ips[0].Unmap(), nil
}

func orUnknown(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

// peerGatewayWarnings compare this device's multi-attach gateway with the
// one the instance's other devices registered with: both must hold the
// same, or LAN hosts lose their gateway when the role moves.
func peerGatewayWarnings(peers []api.InstancePeer, gw netip.Prefix) []string {
	var out []string
	for _, p := range peers {
		switch {
		case !p.LANGateway.IsValid() || p.LANGateway == gw:
		case !gw.IsValid():
			out = append(out, fmt.Sprintf("device %s of this instance holds the shared LAN gateway %s, but this device has none, so it will never take it over: pass --lan-gateway %s", p.SN, p.LANGateway, p.LANGateway))
		default:
			out = append(out, fmt.Sprintf("device %s of this instance uses the shared LAN gateway %s, this device %s: LAN hosts lose their gateway when the role moves; use the same --lan-gateway on both", p.SN, p.LANGateway, gw))
		}
	}
	return out
}

// attachFromConfig reads what the controller told about the instance's
// other devices: the active one, and the gateway they registered with.
func attachFromConfig(q *AttachQuestion, cfg api.DeviceConfig) {
	q.Slots = cfg.Slots
	for _, p := range cfg.Peers {
		if p.Active {
			q.ActiveSN = p.SN
		}
		if p.LANGateway.IsValid() && (!q.PeerGateway.IsValid() || p.Active) {
			q.PeerGateway = p.LANGateway
		}
	}
}
