package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/openvcpe/vcpe/api"
	"github.com/openvcpe/vcpe/internal/atomicfile"
	"github.com/openvcpe/vcpe/internal/command"
	"github.com/openvcpe/vcpe/internal/device"
)

// JournalFile is the name of the change journal inside the state dir.
const JournalFile = device.JournalFile

// Change kinds.
const (
	ChangeSysctl = "sysctl" // Target: a sysctl key such as net.ipv4.ip_forward
	ChangeFile   = "file"   // Target: an absolute path
	ChangeDir    = "dir"    // Target: an absolute path
	// ChangeRegistration is a registration at the controller. Target is
	// the state dir whose state file holds the credential; undo gives the
	// registration back (POST /v1/device/release).
	ChangeRegistration = "registration"
)

// Change is one change to the host, written to the journal before it is
// made, with what is needed to undo it.
type Change struct {
	Kind   string `json:"kind"`
	Target string `json:"target"`
	// Existed tells whether a file or directory was there before.
	Existed bool `json:"existed"`
	// Before is the previous value (sysctl) or content (file).
	Before []byte `json:"before,omitempty"`
	// Mode is the previous file mode when Existed.
	Mode fs.FileMode `json:"mode,omitempty"`
	// After is the value the change sets (sysctl), for the plan.
	After string `json:"after,omitempty"`
	// Owner (process) is the token set in the daemon's environment
	// (OwnerEnv) before it is started, by which undo finds it even when
	// its pid file was never written.
	Owner string `json:"owner,omitempty"`
	// Registration is what undoing a registration needs whether or not its
	// answer arrived: written before the request is sent.
	Registration *RegistrationIntent `json:"registration,omitempty"`
	At           time.Time           `json:"at"`
}

// RegistrationIntent is a registration at the controller, journalled before
// the request is sent. The WireGuard private key is both what the SN gets
// bound to and the proof (api.KeyProof) with which the device gives the
// slot back without the credential, which only the answer carries. It stays
// in the journal (0600, like device.json) until the release is confirmed.
type RegistrationIntent struct {
	Controller  string  `json:"controller"`
	Fingerprint string  `json:"controller_fingerprint"`
	SN          string  `json:"sn"`
	PrivateKey  api.Key `json:"private_key"`
}

// RunInfo identifies the install or uninstall that is writing the journal.
// It is saved with the run's first change and cleared when the run ends; a
// journal that still holds one was left by a run that was killed, whose
// changes the next install undoes before it starts afresh.
type RunInfo struct {
	PID     int       `json:"pid"`
	Command string    `json:"command"`
	Started time.Time `json:"started"`
	// Start is the number of changes in the journal when the run began.
	Start int `json:"start"`
}

// Describe is a one-line human description of the change.
func (c Change) Describe() string {
	switch c.Kind {
	case ChangeSysctl:
		return fmt.Sprintf("set %s %s → %s", c.Target, strings.TrimSpace(string(c.Before)), c.After)
	case ChangeFile:
		if c.Existed {
			return "rewrite " + c.Target
		}
		return "create " + c.Target
	case ChangeDir:
		return "create directory " + c.Target
	case ChangeRegistration:
		return "register with the controller (state in " + c.Target + ")"
	case ChangeUnit:
		return "install and start systemd unit " + filepath.Base(c.Target)
	case ChangeProcess:
		return "start " + filepath.Base(c.After) + " (pid file " + c.Target + ")"
	}
	return c.Kind + " " + c.Target
}

// Sysctl reads and writes kernel parameters. The real one uses
// /proc/sys; tests pass a fake or point Root at a directory.
type Sysctl interface {
	Get(key string) (string, error)
	Set(key, value string) error
}

// ProcSysctl is the Sysctl of the running kernel (of the caller's network
// namespace for net.* keys). Root defaults to /proc/sys.
type ProcSysctl struct{ Root string }

func (p ProcSysctl) path(key string) string {
	root := p.Root
	if root == "" {
		root = "/proc/sys"
	}
	return filepath.Join(root, strings.ReplaceAll(key, ".", "/"))
}

// Get implements Sysctl.
func (p ProcSysctl) Get(key string) (string, error) {
	b, err := os.ReadFile(p.path(key))
	if err != nil {
		return "", fmt.Errorf("read sysctl %s: %w", key, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// Set implements Sysctl.
func (p ProcSysctl) Set(key, value string) error {
	if err := os.WriteFile(p.path(key), []byte(value+"\n"), 0o644); err != nil {
		return fmt.Errorf("write sysctl %s=%s: %w", key, value, err)
	}
	return nil
}

// Journal records every change vcpe makes to the host before making it, so
// a failed install and `vcpe uninstall` can undo exactly what was done and
// nothing else. It is kept in the state dir (0600, written atomically after
// every entry), so an undo works across processes and after a crash.
type Journal struct {
	path   string
	sysctl Sysctl
	now    func() time.Time
	// Run runs systemctl for unit changes; nil means command.Exec.
	Run command.Runner `json:"-"`
	// Client reaches the controller to undo a registration (tests dial
	// in memory).
	Client  device.ClientOptions `json:"-"`
	Changes []Change             `json:"changes"`
	// Open is the run in progress, or one that was killed.
	Open *RunInfo `json:"open,omitempty"`
	// saved tells whether Open was written to disk.
	saved bool
}

// BeginRun marks the start of an install run and returns how many changes
// it must keep on rollback: those of completed earlier runs. The Engine
// undoes a killed run's changes before it begins; any it could not see
// (an open run with nothing recorded) are adopted by this one.
func (j *Journal) BeginRun(command string) int {
	start := len(j.Changes)
	if j.Open != nil && j.Open.Start <= start {
		start = j.Open.Start
	}
	j.Open = &RunInfo{PID: os.Getpid(), Command: command, Started: j.now().UTC(), Start: start}
	return start
}

// EndRun marks the run as ended (completed or rolled back).
func (j *Journal) EndRun() error {
	j.Open = nil
	if !j.saved || len(j.Changes) == 0 {
		return nil
	}
	return j.save()
}

// Interrupted returns the run that was killed before it ended, if any.
func (j *Journal) Interrupted() *RunInfo { return j.Open }

// OpenJournal loads the journal in dir, or starts an empty one. dir is
// created (0700) when the first change is recorded.
func OpenJournal(dir string, sysctl Sysctl, now func() time.Time) (*Journal, error) {
	if now == nil {
		now = time.Now
	}
	j := &Journal{path: filepath.Join(dir, JournalFile), sysctl: sysctl, now: now}
	b, err := os.ReadFile(j.path)
	if errors.Is(err, os.ErrNotExist) {
		return j, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read journal: %w", err)
	}
	if err := json.Unmarshal(b, j); err != nil {
		return nil, &CorruptJournalError{Path: j.path, Err: err}
	}
	j.saved = j.Open != nil
	return j, nil
}

// CorruptJournalError means journal.json cannot be read as a journal. Its
// message says how to repair by hand; `vcpe uninstall --yes` falls back to
// what the state dir itself shows (device state, pid file).
type CorruptJournalError struct {
	Path string
	Err  error
}

func (e *CorruptJournalError) Error() string {
	return fmt.Sprintf("journal %s is corrupt (%v): 'vcpe uninstall --yes' undoes what the state dir still shows (registration, daemon) and lists the rest; or move it aside and undo by hand the changes it lists", e.Path, e.Err)
}

func (e *CorruptJournalError) Unwrap() error { return e.Err }

func (j *Journal) runner() command.Runner {
	if j.Run != nil {
		return j.Run
	}
	return command.Exec{}
}

// Len is the number of recorded changes.
func (j *Journal) Len() int { return len(j.Changes) }

func (j *Journal) record(c Change) error {
	c.At = j.now().UTC()
	j.Changes = append(j.Changes, c)
	if err := j.save(); err != nil {
		j.Changes = j.Changes[:len(j.Changes)-1]
		return err
	}
	return nil
}

func (j *Journal) save() error {
	j.saved = j.Open != nil
	if len(j.Changes) == 0 {
		err := os.Remove(j.path)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return fmt.Errorf("encode journal: %w", err)
	}
	dir := filepath.Dir(j.path)
	_, statErr := os.Stat(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}
	if err := atomicfile.WriteFile(j.path, b, 0o600); err != nil {
		// The directory was made only to hold this journal (its first
		// entry records it): a journal that could not be written must not
		// leave it behind (a full disk).
		if errors.Is(statErr, os.ErrNotExist) {
			_ = os.Remove(dir)
		}
		return err
	}
	return nil
}

// SetSysctl sets a kernel parameter, recording the old value first. When
// the value is already set it records nothing and reports changed=false.
func (j *Journal) SetSysctl(key, value string) (changed bool, err error) {
	old, err := j.sysctl.Get(key)
	if err != nil {
		return false, err
	}
	if old == value {
		return false, nil
	}
	if err := j.record(Change{Kind: ChangeSysctl, Target: key, Before: []byte(old), After: value}); err != nil {
		return false, err
	}
	return true, j.sysctl.Set(key, value)
}

// WriteFile writes a file atomically, recording its previous content (or
// its absence) first. Identical content records nothing and reports
// changed=false.
func (j *Journal) WriteFile(path string, data []byte, perm fs.FileMode) (changed bool, err error) {
	c := Change{Kind: ChangeFile, Target: path}
	old, err := os.ReadFile(path)
	switch {
	case err == nil:
		fi, err := os.Stat(path)
		if err != nil {
			return false, fmt.Errorf("stat %s: %w", path, err)
		}
		if string(old) == string(data) && fi.Mode().Perm() == perm {
			return false, nil
		}
		c.Existed, c.Before, c.Mode = true, old, fi.Mode().Perm()
	case errors.Is(err, os.ErrNotExist):
	default:
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	if err := j.record(c); err != nil {
		return false, err
	}
	return true, atomicfile.WriteFile(path, data, perm)
}

// RecordFile records the current content (or absence) of a file that
// other code is about to write, so an undo restores it.
func (j *Journal) RecordFile(path string) error {
	c := Change{Kind: ChangeFile, Target: path}
	old, err := os.ReadFile(path)
	switch {
	case err == nil:
		fi, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("stat %s: %w", path, err)
		}
		c.Existed, c.Before, c.Mode = true, old, fi.Mode().Perm()
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("read %s: %w", path, err)
	}
	return j.record(c)
}

// undoRegistration gives the registration back to the controller. With the
// intent's WireGuard key it works whether or not the registration's answer
// arrived (api.KeyProof); the controller says whether the SN was bound to
// that key at all. Older journals name only the state dir, whose credential
// is used. A registration the controller no longer holds leaves nothing to
// undo.
func (j *Journal) undoRegistration(c Change) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if ri := c.Registration; ri != nil {
		cl, err := device.NewClient(ri.Controller, ri.Fingerprint, j.client())
		if err != nil {
			return err
		}
		if _, err := cl.ReleaseWithKey(ctx, ri.SN, ri.PrivateKey); err != nil {
			return fmt.Errorf("give registration %s back to %s: %w (the journal keeps what is needed: run vcpe uninstall again when the controller answers)", ri.SN, ri.Controller, err)
		}
		return nil
	}
	st, err := device.LoadState(c.Target)
	if errors.Is(err, device.ErrNoState) {
		return nil
	}
	if err != nil {
		return err
	}
	cl, err := device.NewClientFromState(st, j.client())
	if err != nil {
		return err
	}
	err = cl.Release(ctx)
	var ae *api.Error
	if errors.As(err, &ae) && (ae.Code == api.CodeReleased || ae.Code == api.CodeUnauthorized || ae.Code == api.CodeRevoked || ae.Code == api.CodeKeyReset) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("give registration %s back to %s: %w (the slot stays bound until 'vcpe-hub device reset-key %s')", st.SN, st.Controller, err, st.SN)
	}
	return nil
}

func (j *Journal) client() device.ClientOptions {
	o := j.Client
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	return o
}

// RecordRegistration journals a registration before its request is sent.
// An identical intent already in the journal (a repeated or resumed
// install) is not recorded twice.
func (j *Journal) RecordRegistration(stateDir string, ri RegistrationIntent) error {
	for _, c := range j.Changes {
		if c.Kind == ChangeRegistration && c.Registration != nil && *c.Registration == ri {
			return nil
		}
	}
	return j.record(Change{Kind: ChangeRegistration, Target: stateDir, Registration: &ri})
}

// RegistrationKey returns the WireGuard key of a registration of sn at the
// controller with this fingerprint that the journal holds (a killed
// install's), so that a repeated install registers the same key.
func (j *Journal) RegistrationKey(sn, fingerprint string) (api.Key, bool) {
	for i := len(j.Changes) - 1; i >= 0; i-- {
		if ri := j.Changes[i].Registration; ri != nil && ri.SN == sn && ri.Fingerprint == fingerprint {
			return ri.PrivateKey, true
		}
	}
	return api.Key{}, false
}

// MkdirAll creates a directory (and its missing parents), recording each
// directory it creates.
func (j *Journal) MkdirAll(path string, perm fs.FileMode) (changed bool, err error) {
	var missing []string
	for p := filepath.Clean(path); ; p = filepath.Dir(p) {
		if _, err := os.Stat(p); err == nil {
			break
		} else if !errors.Is(err, os.ErrNotExist) {
			return false, fmt.Errorf("stat %s: %w", p, err)
		}
		missing = append(missing, p)
		if filepath.Dir(p) == p {
			break
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := j.record(Change{Kind: ChangeDir, Target: missing[i]}); err != nil {
			return true, err
		}
		if err := os.Mkdir(missing[i], perm); err != nil && !errors.Is(err, os.ErrExist) {
			return true, fmt.Errorf("create %s: %w", missing[i], err)
		}
	}
	return len(missing) > 0, nil
}

// Undo reverts every recorded change, newest first, and empties the
// journal. It goes on past a failing entry, keeps the entries it could not
// undo in the journal, and returns their errors together.
func (j *Journal) Undo(ctx context.Context) error { return j.UndoSince(ctx, 0) }

// UndoSince reverts the changes recorded after the first n, newest first,
// leaving the first n in place.
func (j *Journal) UndoSince(ctx context.Context, n int) error {
	var errs []error
	var kept []Change
	for i := len(j.Changes) - 1; i >= n; i-- {
		if err := ctx.Err(); err != nil {
			kept = append(append([]Change{}, j.Changes[n:i+1]...), kept...)
			errs = append(errs, err)
			break
		}
		c := j.Changes[i]
		if err := j.undo(c); err != nil {
			errs = append(errs, fmt.Errorf("undo %q: %w", c.Describe(), err))
			kept = append([]Change{c}, kept...)
		}
	}
	j.Changes = append(j.Changes[:n:n], kept...)
	kept = j.Changes
	// The journal may live in a directory the undo just removed: only
	// write it back when something is left to undo.
	if len(kept) > 0 {
		if err := j.save(); err != nil {
			errs = append(errs, err)
		}
	} else if err := os.Remove(j.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("remove journal: %w", err))
	}
	return errors.Join(errs...)
}

func (j *Journal) undo(c Change) error {
	switch c.Kind {
	case ChangeSysctl:
		return j.sysctl.Set(c.Target, string(c.Before))
	case ChangeFile:
		if c.Existed {
			return atomicfile.WriteFile(c.Target, c.Before, c.Mode)
		}
		if err := os.Remove(c.Target); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	case ChangeRegistration:
		return j.undoRegistration(c)
	case ChangeUnit:
		return j.undoUnit(c)
	case ChangeProcess:
		return j.undoProcess(c)
	case ChangeDir:
		// The journal itself lives here, and the temporary files of
		// interrupted atomic writes; anything else left inside was not made
		// by vcpe and keeps the directory.
		_ = os.Remove(filepath.Join(c.Target, JournalFile))
		atomicfile.RemoveTemps(c.Target)
		if err := os.Remove(c.Target); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", c.Target, err)
		}
		return nil
	}
	return fmt.Errorf("unknown change kind %q", c.Kind)
}
