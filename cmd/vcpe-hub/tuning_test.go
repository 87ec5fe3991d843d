package main

import (
	"errors"
	"testing"

	"github.com/openvcpe/vcpe/cmd/internal/cli"
)

func TestTuningChoice(t *testing.T) {
	for _, tt := range []struct {
		name             string
		opts             tuningOptions
		dataplane        bool
		envProcs, envMem string
		wantProcs        int
		wantMiB          int64
		wantSource       string
	}{
		{"hub on 2 CPUs: half, 256 MiB", tuningOptions{}, true, "", "", 1, 256, "auto"},
		{"controller alone: every CPU, no limit", tuningOptions{}, false, "", "", 2, 0, "none"},
		{"flags win", tuningOptions{gomaxprocs: 2, memoryLimit: 512}, true, "1", "100MiB", 2, 512, "flag"},
		{"environment kept", tuningOptions{}, true, "2", "1GiB", 2, 0, "env"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, m, err := tt.opts.choose(tt.dataplane, 2, tt.envProcs, tt.envMem)
			if err != nil {
				t.Fatal(err)
			}
			if p.N != tt.wantProcs || m.MiB != tt.wantMiB || m.Source != tt.wantSource {
				t.Errorf("choose = %d procs, %d MiB (%s); want %d, %d (%s)", p.N, m.MiB, m.Source, tt.wantProcs, tt.wantMiB, tt.wantSource)
			}
		})
	}
	_, _, err := tuningOptions{memoryLimit: 10}.choose(true, 2, "", "")
	var ue *cli.UsageError
	if !errors.As(err, &ue) {
		t.Errorf("--memory-limit 10: err %v; want a usage error", err)
	}
}
