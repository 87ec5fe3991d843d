package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLogFileRotatesBySize writes 3.5 MiB of log through a 1 MiB
// --log-file: the live file stays under the limit, older logs are kept
// up to --log-max-backups, and every file is 0600.
func TestLogFileRotatesBySize(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vcped.log")
	log, closer, err := newLogger("info", logOptions{file: path, maxMiB: 1, backups: 2})
	if err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 1000)
	for i := 0; i < 3500; i++ {
		log.Info("filler", "i", i, "pad", pad)
	}
	closer.Close()
	fi, err := os.Stat(path)
	if err != nil || fi.Size() > 1<<20 || fi.Size() == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("live log: %v, %d bytes, mode %v; want under 1 MiB, 0600", err, fi.Size(), fi.Mode().Perm())
	}
	for _, name := range []string{path + ".1", path + ".2"} {
		if fi, err := os.Stat(name); err != nil || fi.Size() == 0 || fi.Mode().Perm() != 0o600 {
			t.Errorf("rotated log %s: %v; want it kept, 0600", name, err)
		}
	}
	if _, err := os.Stat(path + ".3"); err == nil {
		t.Error("a third rotated log kept; want --log-max-backups 2")
	}
}

func TestLogFileNeedsAnAbsolutePath(t *testing.T) {
	if _, _, err := newLogger("info", logOptions{file: "vcped.log", maxMiB: 1}); err == nil || !strings.Contains(err.Error(), "--log-file") {
		t.Errorf("relative --log-file: %v; want a usage error naming it", err)
	}
}
