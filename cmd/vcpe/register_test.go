package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRegisterBadInputExitsTwo(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	os.WriteFile(key, []byte("k"), 0o600)
	fp := "sha256:" + "00000000000000000000000000000000000000000000000000000000000000aa"
	base := []string{"register", "--state-dir", dir, "--key-file", key}
	t.Setenv("VCPE_KEY", "")
	for _, args := range [][]string{
		append(base, "--controller-fingerprint", fp, "--sn", "S"),                                                   // no --controller
		append(base, "--controller", "http://198.18.0.1:8443", "--controller-fingerprint", fp, "--sn", "S"),         // not https
		append(base, "--controller", "https://198.18.0.1:8443", "--controller-fingerprint", "sha1:00", "--sn", "S"), // bad fingerprint
		append(base, "--controller", "https://198.18.0.1:8443", "--controller-fingerprint", fp, "--sn", "S", "--advertise", "198.19.1.0/33"),
		{"register", "--state-dir", dir, "--controller", "https://198.18.0.1:8443", "--controller-fingerprint", fp, "--sn", "S", "--key-file", filepath.Join(dir, "missing")},
	} {
		if code := run(args); code != 2 {
			t.Errorf("vcpe %v: exit %d; want 2", args, code)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "device.json")); err == nil {
		t.Error("bad input wrote device state")
	}
}
