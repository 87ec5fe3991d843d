package provision

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"

	"github.com/openvcpe/vcpe/internal/atomicfile"
)

// Change kinds for the daemon hand-off.
const (
	ChangeUnit    = "unit"    // Target: unit file path; installed, enabled and started
	ChangeProcess = "process" // Target: pid file of a detached supervised daemon
)

// SystemdRunning reports whether systemd is PID 1 on this host (the test
// sd_booted(3) uses).
func SystemdRunning() bool {
	fi, err := os.Stat("/run/systemd/system")
	return err == nil && fi.IsDir()
}

// UnitName is the systemd unit of the device daemon.
const UnitName = "vcped.service"

// UnitOptions fill the unit template.
type UnitOptions struct {
	Vcped    string // absolute path of the vcped binary
	StateDir string
	UAPIDir  string // /run/wireguard unless set
}

var unitTemplate = template.Must(template.New("unit").Parse(`# Installed by vcpe install; removed by vcpe uninstall.
[Unit]
Description=vcpe dataplane daemon (userspace WireGuard to the hub)
Documentation=https://github.com/openvcpe/vcpe
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
NotifyAccess=main
ExecStart={{.Vcped}} --state-dir {{.StateDir}} --uapi-dir {{.UAPIDir}}
Restart=always
RestartSec=1s
WatchdogSec=30s
# Least privilege: the daemon needs only to configure its TUN, addresses
# and routes (CAP_NET_ADMIN) and to send probes (CAP_NET_RAW).
CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW
AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
SystemCallArchitectures=native
ReadWritePaths={{.StateDir}} {{.UAPIDir}} /proc/sys/net/ipv4
RuntimeDirectory=wireguard
RuntimeDirectoryPreserve=yes
DevicePolicy=closed
DeviceAllow=/dev/net/tun rw
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK AF_PACKET
UMask=0077

[Install]
WantedBy=multi-user.target
`))

// Unit renders the systemd unit of the device daemon.
func Unit(o UnitOptions) ([]byte, error) {
	if o.UAPIDir == "" {
		o.UAPIDir = "/run/wireguard"
	}
	for name, v := range map[string]string{"vcped path": o.Vcped, "state dir": o.StateDir, "UAPI dir": o.UAPIDir} {
		if !filepath.IsAbs(v) || strings.ContainsAny(v, " \t\n\"'\\%$") {
			return nil, fmt.Errorf("unit: %s %q must be an absolute path without spaces, quotes or %%", name, v)
		}
	}
	var b bytes.Buffer
	if err := unitTemplate.Execute(&b, o); err != nil {
		return nil, fmt.Errorf("render unit: %w", err)
	}
	return b.Bytes(), nil
}

// InstallUnit writes a unit file, reloads systemd and enables and starts
// the unit, recording it first. An identical unit that is already active
// is left alone (changed=false).
func (j *Journal) InstallUnit(ctx context.Context, path string, content []byte) (changed bool, err error) {
	run := j.runner()
	name := filepath.Base(path)
	old, rerr := os.ReadFile(path)
	if rerr == nil && bytes.Equal(old, content) {
		if _, err := run.Output(ctx, "systemctl", "is-active", "--quiet", name); err == nil {
			return false, nil
		}
	}
	c := Change{Kind: ChangeUnit, Target: path, Existed: rerr == nil, Before: old, Mode: 0o644}
	if err := j.record(c); err != nil {
		return false, err
	}
	if err := atomicfile.WriteFile(path, content, 0o644); err != nil {
		return true, err
	}
	for _, args := range [][]string{{"daemon-reload"}, {"enable", name}, {"restart", name}} {
		if _, err := run.Output(ctx, "systemctl", args...); err != nil {
			return true, fmt.Errorf("start %s: %w", name, err)
		}
	}
	return true, nil
}

func (j *Journal) undoUnit(c Change) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := filepath.Base(c.Target)
	var errs []error
	if c.Existed {
		if err := atomicfile.WriteFile(c.Target, c.Before, c.Mode); err != nil {
			errs = append(errs, err)
		}
		_, _ = j.runner().Output(ctx, "systemctl", "daemon-reload")
		if _, err := j.runner().Output(ctx, "systemctl", "restart", name); err != nil {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	}
	if _, err := j.runner().Output(ctx, "systemctl", "disable", "--now", name); err != nil {
		errs = append(errs, err)
	}
	if err := os.Remove(c.Target); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	if _, err := j.runner().Output(ctx, "systemctl", "daemon-reload"); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ProcessSpec is a daemon started as a detached process where systemd is
// not PID 1 (containers, the lab).
type ProcessSpec struct {
	Argv    []string // Argv[0] is an absolute path
	PIDFile string
	LogFile string
	// Env is added to the daemon's environment. Never put a secret in
	// Argv: it shows in ps.
	Env []string
}

// OwnerEnv is the environment variable that ties a detached daemon to its
// journal entry: set to a random token recorded before the daemon starts,
// so that undo finds the daemon, and only it, even when a kill came
// between its start and its pid file.
const OwnerEnv = "VCPE_OWNER"

// StartProcess starts a detached daemon (its own session, stdin from
// /dev/null, output to LogFile) and writes its pid file, recording it
// first with an owner token the daemon carries in its environment. A
// daemon already running from the same pid file and binary is left alone
// (changed=false).
func (j *Journal) StartProcess(spec ProcessSpec) (changed bool, err error) {
	if len(spec.Argv) == 0 || !filepath.IsAbs(spec.Argv[0]) {
		return false, fmt.Errorf("start daemon: program %v must be an absolute path", spec.Argv)
	}
	if _, ok := RunningPID(spec.PIDFile, spec.Argv[0]); ok {
		return false, nil
	}
	// A daemon this journal started may run without a usable pid file
	// (deleted, damaged): find it by its owner token and write the pid
	// file again rather than start a second copy.
	if pid, ok := j.ownedDaemon(spec.PIDFile, spec.Argv[0]); ok {
		if err := atomicfile.WriteFile(spec.PIDFile, []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
			return false, fmt.Errorf("rewrite the pid file of %s (pid %d): %w", spec.Argv[0], pid, err)
		}
		return false, nil
	}
	if err := j.RecordFile(spec.LogFile); err != nil {
		return false, err
	}
	owner := hex.EncodeToString(randomBytes(16))
	if err := j.record(Change{Kind: ChangeProcess, Target: spec.PIDFile, After: spec.Argv[0], Owner: owner}); err != nil {
		return false, err
	}
	logf, err := os.OpenFile(spec.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return true, fmt.Errorf("open daemon log: %w", err)
	}
	defer logf.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return true, err
	}
	defer devnull.Close()
	cmd := exec.Command(spec.Argv[0], spec.Argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, logf, logf
	cmd.Env = append(append(daemonEnv(os.Environ()), spec.Env...), OwnerEnv+"="+owner)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	testPause("start:before-exec")
	if err := cmd.Start(); err != nil {
		return true, fmt.Errorf("start %s: %w", spec.Argv[0], err)
	}
	pid := cmd.Process.Pid
	// The daemon outlives us: release it so it is not reaped by us.
	_ = cmd.Process.Release()
	testPause("start:before-pidfile")
	if err := atomicfile.WriteFile(spec.PIDFile, []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		return true, err
	}
	return true, nil
}

// ownedDaemon finds the running daemon a journal entry for pidFile and exe
// owns: the eldest of the processes carrying its owner token (a
// supervisor rather than its child).
func (j *Journal) ownedDaemon(pidFile, exe string) (int, bool) {
	for i := len(j.Changes) - 1; i >= 0; i-- {
		c := j.Changes[i]
		if c.Kind != ChangeProcess || c.Target != pidFile || c.After != exe || c.Owner == "" {
			continue
		}
		pids := daemonProcs(exe, c.Owner, "")
		if len(pids) == 0 {
			continue
		}
		slices.Sort(pids)
		for _, p := range pids {
			if !slices.Contains(pids, parentPID(p)) {
				return p, true
			}
		}
		return pids[0], true
	}
	return 0, false
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// RunningPID returns the pid in pidFile when that process is alive and
// runs exe.
func RunningPID(pidFile, exe string) (int, bool) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, false
	}
	link, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return 0, false
	}
	if strings.TrimSuffix(link, " (deleted)") != exe {
		return 0, false
	}
	return pid, true
}

// undoProcess stops the daemon of the pid file and every process of the
// same program that carries the entry's owner token (a daemon started by a
// run killed before it wrote the pid file, or the children of a
// supervisor), and nothing else.
func (j *Journal) undoProcess(c Change) error {
	// Scan again after each stop: a supervisor may have started a new
	// daemon between the scan and its own signal.
	for round := 0; ; round++ {
		var pids []int
		if pid, ok := RunningPID(c.Target, c.After); ok {
			pids = append(pids, pid)
		}
		if c.Owner != "" {
			for _, p := range daemonProcs(c.After, c.Owner, "") {
				if !slices.Contains(pids, p) {
					pids = append(pids, p)
				}
			}
		}
		if len(pids) == 0 {
			break
		}
		if round == 3 {
			return fmt.Errorf("stop %s (pids %v): still running", c.After, pids)
		}
		stopPIDs(pids, func(pid int) bool { return procIs(pid, c.After) })
		time.Sleep(50 * time.Millisecond)
	}
	if err := os.Remove(c.Target); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// daemonEnv is the environment a detached daemon inherits: ours without
// the device key (VCPE_KEY, VCPE_KEY_FILE), which the daemon never needs
// and must not keep in /proc/PID/environ.
func daemonEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k == "VCPE_KEY" || k == "VCPE_KEY_FILE" {
			continue
		}
		out = append(out, kv)
	}
	return out
}
