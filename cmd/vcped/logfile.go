package main

import (
	"io"
	"os"
	"path/filepath"

	"github.com/openvcpe/vcpe/cmd/internal/cli"
	"github.com/openvcpe/vcpe/internal/logfile"
)

// logOptions are the flags of vcped's own log file (detached mode, where
// no journal collects stderr).
type logOptions struct {
	file    string
	maxMiB  int
	backups int
}

// writer returns where vcped logs: stderr, or --log-file rotated by size
// into FILE.1 … FILE.N (fixed names the install journal records, so
// vcpe uninstall removes them all).
func (o logOptions) writer(stderr io.Writer) (io.Writer, io.Closer, error) {
	if o.file == "" {
		return stderr, io.NopCloser(nil), nil
	}
	if !filepath.IsAbs(o.file) {
		return nil, nil, cli.Usagef("--log-file %q: want an absolute path", o.file)
	}
	if o.maxMiB < 1 || o.backups < 0 {
		return nil, nil, cli.Usagef("--log-max-size %d, --log-max-backups %d: want at least 1 MiB and 0 or more backups", o.maxMiB, o.backups)
	}
	if err := os.MkdirAll(filepath.Dir(o.file), 0o700); err != nil {
		return nil, nil, err
	}
	w, err := logfile.Open(o.file, int64(o.maxMiB)<<20, o.backups)
	if err != nil {
		return nil, nil, err
	}
	return w, w, nil
}
