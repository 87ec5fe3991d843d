// Package profile writes a daemon's CPU profile for --cpu-profile, the
// input of the profile-guided builds (make pgo) and of a performance
// report.
package profile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
)

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
