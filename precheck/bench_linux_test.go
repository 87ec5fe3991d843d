package precheck

import (
	"context"
	"os/exec"
	"testing"

	"github.com/openvcpe/vcpe/internal/command"
	"github.com/openvcpe/vcpe/internal/namespace"
)

// BenchmarkLivePrecheck is a full live precheck of this host: gather (files,
// iptables-save, ip6tables-save, nft, sockets, netlink) and every check.
// Read-only; it reports the wall time per run.
func BenchmarkLivePrecheck(b *testing.B) {
	ctx := context.Background()
	for b.Loop() {
		s, err := Gather(ctx, GatherOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if rep := Run(ctx, s, Options{}); len(rep.Checks) != len(Catalogue()) {
			b.Fatalf("%d results", len(rep.Checks))
		}
	}
}

// BenchmarkRunChecks is the checks alone on a fixture (no gathering).
func BenchmarkRunChecks(b *testing.B) {
	s, err := Load(snapDir("debian12-vm"))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		Run(context.Background(), s, Options{})
	}
}

// BenchmarkBaselineIptablesSave is one iptables-save run: the baseline the
// live precheck is compared with.
func BenchmarkBaselineIptablesSave(b *testing.B) {
	if _, err := exec.LookPath("iptables-save"); err != nil {
		namespace.Skipf(b, "iptables-save not installed")
	}
	for b.Loop() {
		if _, err := (command.Exec{}).Output(context.Background(), "iptables-save"); err != nil {
			namespace.Skipf(b, "iptables-save: %v (needs root)", err)
		}
	}
}
