package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openvcpe/vcpe/cmd/internal/cli"
)

func TestBadFlagsAreUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		o     options
		field string
	}{
		{options{stateDir: t.TempDir(), logLevel: "info", metricsListen: "0.0.0.0:9586"}, "--metrics-listen"},
		{options{stateDir: t.TempDir(), logLevel: "info", metricsListen: "localhost"}, "--metrics-listen"},
		{options{stateDir: t.TempDir(), logLevel: "loud"}, "--log-level"},
		{options{stateDir: t.TempDir(), logLevel: "info", gomaxprocs: -2}, "--gomaxprocs"},
		{options{stateDir: t.TempDir(), logLevel: "info", memoryLimit: 8}, "--memory-limit"},
		{options{stateDir: t.TempDir(), logLevel: "info", cpuProfile: filepath.Join(t.TempDir(), "missing", "cpu.pprof")}, "--cpu-profile"},
	} {
		err := run(context.Background(), tc.o)
		var ue *cli.UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%+v: err = %v; want a usage error naming %s", tc.o, err, tc.field)
		}
	}
}

// TestCPUProfileWrittenOnExit: the profile is whole on disk once run
// returns, whatever it returns with.
func TestCPUProfileWrittenOnExit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.pprof")
	err := run(context.Background(), options{stateDir: t.TempDir(), logLevel: "info", cpuProfile: path})
	if err == nil || !strings.Contains(err.Error(), "register") {
		t.Fatalf("err = %v; want it to say to register first", err)
	}
	b, err := os.ReadFile(path)
	if err != nil || !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		t.Fatalf("profile %s: %v, %d bytes; want a gzip'd pprof profile", path, err, len(b))
	}
}

func TestMissingStateNamesRegistration(t *testing.T) {
	err := run(context.Background(), options{stateDir: t.TempDir(), logLevel: "info"})
	if err == nil || !strings.Contains(err.Error(), "register") {
		t.Errorf("err = %v; want it to say to register first", err)
	}
}
