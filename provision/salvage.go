package provision

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/openvcpe/vcpe/internal/atomicfile"
	"github.com/openvcpe/vcpe/internal/device"
)

// SalvageResult is what an uninstall without a readable journal did and
// what it could not do.
type SalvageResult struct {
	Undone []string
	Left   []string
}

// UninstallWithoutJournal undoes what the state dir itself still shows
// when its journal is missing or corrupt: it gives the registration back
// (WireGuard key proof from device.json), stops the vcped processes that
// run on this state dir, and removes vcpe's own files. What only the
// journal knew (the earlier value of ip_forward, a unit file, whether the
// directory existed before) is listed in Left with the command that
// undoes it by hand; it is never claimed as done.
func UninstallWithoutJournal(ctx context.Context, stateDir string, client device.ClientOptions) SalvageResult {
	var r SalvageResult
	abs, _ := filepath.Abs(stateDir)
	st, err := device.LoadState(stateDir)
	switch {
	case err == nil:
		cl, cerr := device.NewClient(st.Controller, st.ControllerFingerprint, client)
		if cerr == nil {
			ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			_, cerr = cl.ReleaseWithKey(ctx, st.SN, st.PrivateKey)
			cancel()
		}
		if cerr != nil {
			r.Left = append(r.Left, fmt.Sprintf("give registration %s back to %s: %v (run vcpe uninstall --yes again when the controller answers; device.json is kept for it)", st.SN, st.Controller, cerr))
		} else {
			r.Undone = append(r.Undone, "give registration "+st.SN+" back to "+st.Controller)
		}
	case errors.Is(err, device.ErrNoState):
	default:
		r.Left = append(r.Left, fmt.Sprintf("%v: the registration cannot be given back from it; run 'vcpe install --yes' with the same inputs to repair it first, or ask the operator to run 'vcpe-hub device reset-key SN'", err))
	}
	if pids := daemonProcs("", "", abs); len(pids) > 0 {
		exe := map[int]string{}
		for _, p := range pids {
			exe[p], _ = os.Readlink(fmt.Sprintf("/proc/%d/exe", p))
		}
		stopPIDs(pids, func(p int) bool { return procIs(p, exe[p]) })
		for _, p := range pids {
			if procIs(p, exe[p]) {
				r.Left = append(r.Left, fmt.Sprintf("stop vcped pid %d: still running", p))
			} else {
				r.Undone = append(r.Undone, fmt.Sprintf("stop vcped (pid %d) running on %s", p, abs))
			}
		}
	}
	regLeft := len(r.Left) > 0 && strings.Contains(r.Left[0], "give registration")
	for _, f := range []string{PIDFile, LogFile, device.PendingKeyFile, "vcped.sock", device.StateFile} {
		if f == device.StateFile && regLeft {
			continue
		}
		p := filepath.Join(stateDir, f)
		if err := os.Remove(p); err == nil {
			r.Undone = append(r.Undone, "remove "+p)
		} else if !errors.Is(err, os.ErrNotExist) {
			r.Left = append(r.Left, fmt.Sprintf("remove %s: %v", p, err))
		}
	}
	for _, t := range atomicfile.RemoveTemps(stateDir) {
		r.Undone = append(r.Undone, "remove leftover temporary file "+filepath.Join(stateDir, t))
	}
	if v, err := (ProcSysctl{}).Get("net.ipv4.ip_forward"); err == nil && v == "1" {
		r.Left = append(r.Left, "net.ipv4.ip_forward is 1 and its value before the install was only in the journal: if it was off, run 'sysctl -w net.ipv4.ip_forward=0'")
	}
	if _, err := os.Stat(filepath.Join("/etc/systemd/system", UnitName)); err == nil {
		r.Left = append(r.Left, "systemd unit "+UnitName+" is installed: 'systemctl disable --now "+UnitName+" && rm /etc/systemd/system/"+UnitName+" && systemctl daemon-reload'")
	}
	if ents, err := os.ReadDir(stateDir); err == nil {
		if len(ents) == 0 {
			r.Left = append(r.Left, "the state dir "+abs+" is empty and kept: the journal that knew whether vcpe created it is lost; remove it with 'rmdir "+abs+"' if it did")
		} else {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			r.Left = append(r.Left, "the state dir "+abs+" still holds "+strings.Join(names, ", "))
		}
	}
	return r
}
