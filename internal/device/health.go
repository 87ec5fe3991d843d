package device

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Files an install keeps in the state dir besides the device state. The
// install Engine owns their content; they are named here so that the
// state dir's health can be judged from below it (vcpe status, the
// diagnosis suite).
const (
	JournalFile = "journal.json"
	PIDFile     = "vcped.pid"
)

// StateProblem is a damaged, missing or left-over file of the state dir,
// with the exact repair.
type StateProblem struct {
	ID      string `json:"id"` // "state.corrupt", "journal.missing", "pidfile.stale", …
	File    string `json:"file"`
	Problem string `json:"problem"`
	Fix     string `json:"fix"`
}

// CheckStateDir judges the files of a state dir: device.json, the
// journal, vcped's pid file and temporary files of interrupted writes. An
// empty or absent state dir (nothing installed) has no problems. It
// changes nothing.
func CheckStateDir(dir string) []StateProblem {
	var out []StateProblem
	add := func(id, file, problem, fix string) {
		out = append(out, StateProblem{ID: id, File: filepath.Join(dir, file), Problem: problem, Fix: fix})
	}
	install := fmt.Sprintf("run 'vcpe install --yes --state-dir %s' with the same inputs (controller, SN, key, advertised prefixes)", dir)
	uninstall := fmt.Sprintf("'vcpe uninstall --yes --state-dir %s'", dir)

	_, stErr := LoadState(dir)
	hasState := stErr == nil
	var journal struct {
		Changes []struct {
			Kind   string `json:"kind"`
			Target string `json:"target"`
		} `json:"changes"`
		Open *struct {
			PID     int       `json:"pid"`
			Command string    `json:"command"`
			Started time.Time `json:"started"`
		} `json:"open"`
	}
	jb, jErr := os.ReadFile(filepath.Join(dir, JournalFile))
	hasJournal := jErr == nil
	if hasJournal {
		if err := json.Unmarshal(jb, &journal); err != nil {
			add("journal.corrupt", JournalFile, fmt.Sprintf("the journal is corrupt (%v): an uninstall cannot know every change the install made", err),
				uninstall+" undoes what the state dir shows and lists the rest with the commands to undo it by hand; then install again")
			hasJournal = false
		}
	} else if !errors.Is(jErr, os.ErrNotExist) {
		add("journal.unreadable", JournalFile, jErr.Error(), "check the state dir's permissions and disk")
	}
	registered, process := false, false
	for _, c := range journal.Changes {
		registered = registered || c.Kind == "registration"
		process = process || c.Kind == "process"
	}
	if o := journal.Open; o != nil {
		add("journal.interrupted", JournalFile, fmt.Sprintf("vcpe %s (pid %d, started %s) did not end: its changes may be half made", o.Command, o.PID, o.Started.Format(time.RFC3339)),
			install+" to undo them and install again, or "+uninstall)
	}

	switch {
	case hasState:
	case errors.Is(stErr, ErrNoState):
		if registered || fileExists(filepath.Join(dir, PIDFile)) {
			add("state.missing", StateFile, "the device state is missing although this host was installed",
				install+": it registers again with the WireGuard key the journal holds (the controller accepts it) and rewrites the file")
		}
	default:
		fix := install + ": it moves the damaged file aside (kept for undo) and registers again with the WireGuard key the journal holds"
		if !registered {
			fix = "the journal holds no WireGuard key to register again with: " + uninstall + ", then ask the operator to free the SN (vcpe-hub device reset-key SN) and install again"
		}
		add("state.corrupt", StateFile, stErr.Error(), fix)
	}
	// vcpe register alone keeps no journal; the files only an install
	// writes (the detached vcped's pid file and log) tell an install.
	if hasState && !fileExists(filepath.Join(dir, JournalFile)) && (fileExists(filepath.Join(dir, PIDFile)) || fileExists(filepath.Join(dir, "vcped.log"))) {
		add("journal.missing", JournalFile, "the device is installed but its journal is gone: an uninstall cannot know every change the install made",
			uninstall+" undoes what the state dir shows (registration, vcped, vcpe's files) and lists the rest with the commands to undo it by hand")
	}

	pidPath := filepath.Join(dir, PIDFile)
	if b, err := os.ReadFile(pidPath); err == nil {
		pid, perr := strconv.Atoi(strings.TrimSpace(string(b)))
		switch {
		case perr != nil || pid <= 1:
			add("pidfile.corrupt", PIDFile, fmt.Sprintf("the pid file holds %q, not a process id", strings.TrimSpace(string(b))),
				install+": it finds vcped by its journal entry and rewrites the pid file, or starts it")
		case !isVcped(pid) && fileExists(filepath.Join(dir, "vcped.sock")):
			add("pidfile.stale", PIDFile, fmt.Sprintf("the pid file names pid %d, which is not vcped, while a vcped control socket is there: the pid file is damaged, or vcped died", pid),
				install+": it finds vcped by its journal entry and rewrites the pid file, or starts it")
		case !isVcped(pid):
			add("pidfile.stale", PIDFile, fmt.Sprintf("pid %d is not a running vcped: the daemon is not running", pid),
				install+" to start it again")
		}
	} else if errors.Is(err, os.ErrNotExist) && process {
		add("pidfile.missing", PIDFile, "the journal records a detached vcped but its pid file is gone",
			install+": it finds vcped by its journal entry and rewrites the pid file, or starts it")
	}
	if tmps, _ := filepath.Glob(filepath.Join(dir, ".*.tmp-*")); len(tmps) > 0 {
		var names []string
		for _, t := range tmps {
			names = append(names, filepath.Base(t))
		}
		add("state.tempfiles", filepath.Base(tmps[0]), "temporary files of interrupted writes are left: "+strings.Join(names, ", "),
			"the next 'vcpe install' or 'vcpe uninstall' removes them")
	}
	return out
}

func fileExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// isVcped reports whether pid is a running vcped.
func isVcped(pid int) bool {
	link, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return err == nil && filepath.Base(strings.TrimSuffix(link, " (deleted)")) == "vcped"
}
