package bench

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/internal/namespace"
)

func TestMain(m *testing.M) { namespace.Main(m) }

// TestRunReportsMissingVcped: without a vcped binary the vcpe variant is an
// error row in every case, with no number and no ratio, and no namespace
// is made for it.
func TestRunReportsMissingVcped(t *testing.T) {
	o := Options{
		Bins:         Binaries{VcpedErr: "not available: cmd/vcped not present"},
		NewNamespace: func() (string, error) { return "", errors.New("no namespace wanted") },
		Variants:     []string{VariantVcpe},
	}
	o.Apply(QuickSettings)
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(rep.Variants) != 1 || rep.Variants[0].Error != "not available: cmd/vcped not present" {
		t.Fatalf("variants = %+v; want vcpe with the not-available error", rep.Variants)
	}
	if len(rep.Rows) != len(DefaultCases()) {
		t.Fatalf("%d rows; want %d", len(rep.Rows), len(DefaultCases()))
	}
	for _, row := range rep.Rows {
		r := row.result(VariantVcpe)
		if r == nil || r.Error == "" || len(r.Runs) != 0 || r.BitsPerSecond != 0 {
			t.Errorf("row %s: vcpe result %+v; want an error and no numbers", row.Name, r)
		}
	}
}

// TestSmoke keeps the harness from rotting: one short TCP run over raw
// veth, upstream wireguard-go and two vcped, in real namespaces with real
// processes, must parse to a non-zero rate, with CPU and memory readings
// for the daemons. It asserts nothing about speed.
func TestSmoke(t *testing.T) {
	namespace.RequireRoot(t)
	newNS := func() (string, error) { return namespace.New(t).Name, nil }
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	root, err := ModuleRoot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bins, err := Build(ctx, root, t.TempDir(), "")
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if bins.Vcped == "" {
		t.Fatalf("Build: vcped %s", bins.VcpedErr)
	}
	// The same vcped once more through vcped=PATH, and every vcpe daemon
	// profiled.
	other := VariantVcpe + "+vcped=" + bins.Vcped
	profiles := t.TempDir()
	o := Options{
		Bins:         bins,
		NewNamespace: newNS,
		TempDir:      t.TempDir(),
		ProfileDir:   profiles,
		Variants:     []string{VariantRaw, VariantUpstream, VariantVcpe, other},
		Cases:        []Case{{Proto: "tcp", Streams: 1}},
		Runs:         1, Seconds: 1, ProbeSeconds: 1,
		Search: QuickSettings.Search,
	}
	rep, err := Run(ctx, o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, v := range rep.Variants {
		if v.Error != "" {
			t.Fatalf("variant %s: %s", v.Name, v.Error)
		}
	}
	row := rep.Rows[0]
	for _, v := range []string{VariantRaw, VariantUpstream, VariantVcpe} {
		r := row.result(v)
		if r == nil || r.Error != "" || len(r.Runs) != 1 || r.Runs[0].Round != 1 {
			t.Fatalf("%s: result %+v; want one run, of round 1", v, r)
		}
		if r.BitsPerSecond <= 0 {
			t.Errorf("%s: %v bit/s; want more than 0", v, r.BitsPerSecond)
		}
		if cpuOf(*r, "iperf3-client") == "—" || cpuOf(*r, "iperf3-server") == "—" {
			t.Errorf("%s: CPU %+v; want iperf3 client and server readings", v, r.CPU)
		}
	}
	for _, v := range []string{VariantUpstream, VariantVcpe} {
		if r := row.result(v); cpuOf(*r, "a") == "—" || cpuOf(*r, "b") == "—" {
			t.Errorf("%s: CPU %+v; want readings for both tunnel ends", v, r.CPU)
		}
		if mem := rep.variant(v).Memory; len(mem) != 2 || mem[0].IdleKiB <= 0 || mem[1].PeakKiB <= 0 {
			t.Errorf("%s memory = %+v; want idle and peak RSS of both ends", v, mem)
		}
	}
	if r := row.result(other); r == nil || r.Error != "" || r.BitsPerSecond <= 0 {
		t.Errorf("%s: result %+v; want a rate", other, r)
	}
	for _, f := range []string{"vcpe-a.pprof", "vcpe-b.pprof", profileName(other) + "-a.pprof", profileName(other) + "-b.pprof"} {
		if b, err := os.ReadFile(filepath.Join(profiles, f)); err != nil || !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
			t.Errorf("profile %s: %v (%d bytes); want a pprof profile", f, err, len(b))
		}
	}
	for _, pair := range [][2]string{{VariantUpstream, VariantRaw}, {VariantVcpe, VariantRaw}, {VariantVcpe, VariantUpstream}, {other, VariantUpstream}} {
		if v := row.Ratio(pair[0], pair[1]); v == nil || *v <= 0 {
			t.Errorf("%s/%s ratio = %v; want a positive number", pair[0], pair[1], v)
		}
	}
	for _, rt := range row.Ratios {
		if len(rt.Paired) != 1 || rt.Paired[0] <= 0 {
			t.Errorf("%s: round-by-round %v; want the one round's ratio", rt.Name(), rt.Paired)
		}
	}
	var md strings.Builder
	if err := rep.WriteMarkdown(&md); err != nil || !strings.Contains(md.String(), "| TCP, -P 1 |") {
		t.Errorf("WriteMarkdown: %v\n%s", err, md.String())
	}
}

// TestHubSmoke keeps the hub case from rotting: one short run of four
// sites sending to one hub at once, on upstream wireguard-go and on
// vcpe-hub with four vcped, must give a non-zero aggregate, CPU readings
// for the hub and the sites, and memory of the hub and every site. It
// asserts nothing about speed.
func TestHubSmoke(t *testing.T) {
	namespace.RequireRoot(t)
	newNS := func() (string, error) { return namespace.New(t).Name, nil }
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	root, err := ModuleRoot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bins, err := Build(ctx, root, t.TempDir(), "")
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if bins.Vcped == "" || bins.Hub == "" {
		t.Fatalf("Build: vcped %q, vcpe-hub %q", bins.VcpedErr, bins.HubErr)
	}
	hub := Case{Proto: "tcp", Streams: 1, Sites: HubSites}
	o := Options{
		Bins:         bins,
		NewNamespace: newNS,
		TempDir:      t.TempDir(),
		Variants:     []string{VariantUpstream, VariantVcpe},
		Cases:        []Case{hub},
		Runs:         1, Seconds: 1, ProbeSeconds: 1,
		Search: QuickSettings.Search,
	}
	rep, err := Run(ctx, o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	row := rep.Rows[0]
	for _, v := range []string{VariantUpstream, VariantVcpe} {
		r := row.result(v)
		if r == nil || r.Error != "" || len(r.Runs) != 1 || r.Runs[0].Round != 1 {
			t.Fatalf("%s: result %+v; want one run, of round 1", v, r)
		}
		if r.BitsPerSecond <= 0 {
			t.Errorf("%s: %v bit/s; want more than 0", v, r.BitsPerSecond)
		}
		for _, role := range []string{"a", "b", "iperf3-client", "iperf3-server"} {
			if cpuOf(*r, role) == "—" {
				t.Errorf("%s: CPU %+v; want a reading for %s", v, r.CPU, role)
			}
		}
		roles := map[string]bool{}
		for _, m := range rep.variant(v).Memory {
			if m.IdleKiB > 0 && m.PeakKiB > 0 {
				roles[m.Role] = true
			}
		}
		for _, role := range []string{"hub", "site1", "site2", "site3", "site4"} {
			if !roles[role] {
				t.Errorf("%s memory = %+v; want idle and peak RSS of %s", v, rep.variant(v).Memory, role)
			}
		}
		if len(rep.variant(v).Memory) != 5 {
			t.Errorf("%s memory = %+v; want the hub and four sites only (no two-end topology for a hub-only run)", v, rep.variant(v).Memory)
		}
	}
	if v := row.Ratio(VariantVcpe, VariantUpstream); v == nil || *v <= 0 {
		t.Errorf("vcpe/upstream ratio = %v; want a positive number", v)
	}
	var md strings.Builder
	if err := rep.WriteMarkdown(&md); err != nil || !strings.Contains(md.String(), "| "+hub.String()+" |") || !strings.Contains(md.String(), "end B is the hub's daemon") {
		t.Errorf("WriteMarkdown: %v\n%s", err, md.String())
	}
}
