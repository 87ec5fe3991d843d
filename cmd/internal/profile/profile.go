// Package profile writes a daemon's CPU profile for --cpu-profile, the
// input of the profile-guided builds (make pgo) and of a performance
// report.
package profile

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"

	"github.com/openvcpe/vcpe/cmd/internal/cli"
)

// Flag starts the profile --cpu-profile asks for (none when path is
// empty) and returns what writes it, logging a failure to log. A path that
// cannot be created is a usage error naming the flag.
func Flag(path string, log *slog.Logger) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	stopCPU, err := StartCPU(path)
	if err != nil {
		return nil, cli.Usagef("--cpu-profile: %v", err)
	}
	return func() {
		if err := stopCPU(); err != nil {
			log.Error("writing the cpu profile", "err", err)
		}
	}, nil
}

// StartCPU starts a CPU profile that stop writes to path, mode 0600. The
// profile goes to a temporary file beside path and is renamed into place
// by stop, so path only ever holds a whole profile.
func StartCPU(path string) (stop func() error, err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("cpu profile %s: %w", path, err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("cpu profile %s: %w", path, err)
	}
	return func() error {
		pprof.StopCPUProfile()
		err := errors.Join(f.Sync(), f.Close())
		if err == nil {
			err = os.Rename(f.Name(), path)
		}
		if err != nil {
			os.Remove(f.Name())
			return fmt.Errorf("cpu profile %s: %w", path, err)
		}
		return nil
	}, nil
}
