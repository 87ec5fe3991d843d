package deptest

import (
	"strings"
	"testing"
)

const mod = "github.com/openvcpe/vcpe/"

// heavy are the packages that make a binary big and Linux-bound; the
// controller's build must not include them (the hub wiring that needs them
// lives in cmd/vcpe-hub).
var heavy = []string{
	"golang.zx2c4.com/wireguard/device",
	"github.com/vishvananda/netlink",
	"github.com/google/nftables",
	"github.com/gopacket/gopacket/...",
}

func p(names ...string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = mod + n
	}
	return out
}

// Layers, top to bottom: cmd → tui → provision (the install Engine) →
// diag → precheck, dataplane, controller (siblings) → internal/device →
// api, internal/atomicfile, internal/namespace, internal/jsonhttp,
// internal/command, internal/clock, internal/goldenfile (leaves). An import
// only ever points down.
var rules = []Rule{
	{From: mod + "api/...", Deny: p("..."), Why: "the wire types are a leaf that imports nothing of the project"},
	{From: mod + "internal/atomicfile", Deny: p("..."), Why: "a leaf helper imports nothing of the project"},
	{From: mod + "internal/namespace", Deny: p("..."), Why: "a leaf helper imports nothing of the project"},
	{From: mod + "internal/jsonhttp", Deny: p("..."), Why: "a leaf helper imports nothing of the project"},
	{From: mod + "internal/command", Deny: p("..."), Why: "a leaf helper imports nothing of the project"},
	{From: mod + "internal/clock", Deny: p("..."), Why: "a leaf helper imports nothing of the project"},
	{From: mod + "internal/goldenfile", Deny: p("..."), Why: "a leaf helper imports nothing of the project"},
	{From: mod + "internal/logfile", Deny: p("..."), Why: "a leaf helper imports nothing of the project"},
	{From: mod + "internal/device", Deny: p("dataplane/...", "diag/...", "precheck/...", "provision/...", "tui/...", "controller/...", "cmd/..."), Why: "device state and the device API client sit below every layer that reads them"},
	{From: mod + "controller/...", Deny: append(p("dataplane/...", "diag/...", "precheck/...", "provision/...", "tui/...", "cmd/..."), heavy...), Why: "the controller is the cloud side's control plane: no device code and no packet machinery in its build"},
	{From: mod + "dataplane/...", Deny: p("provision/...", "diag/...", "precheck/...", "tui/...", "controller/...", "cmd/..."), Why: "the dataplane is below the Engine and the diagnosis, beside precheck and the controller"},
	{From: mod + "precheck/...", Deny: p("provision/...", "diag/...", "dataplane/...", "tui/...", "controller/...", "internal/device", "cmd/..."), Why: "precheck judges a host snapshot; it knows nothing of a device"},
	{From: mod + "diag/...", Deny: p("provision/...", "tui/...", "controller/...", "cmd/..."), Why: "the diagnosis is below the install Engine and never reaches the cloud side's code"},
	{From: mod + "provision/...", Deny: p("tui/...", "controller/...", "cmd/..."), Why: "the install Engine is the top library layer"},
	{From: mod + "tui/...", Deny: p("controller/...", "cmd/..."), Why: "the TUI renders the Engine's events; it is wired by cmd, never the reverse"},
	{From: mod + "internal/...", Deny: p("cmd/...", "tui/...", "provision/..."), Why: "internal holds tools and helpers below the Engine"},
}

func TestLayers(t *testing.T) {
	for _, goos := range []string{"linux", "darwin"} {
		g, err := Load("../..", goos, "./...")
		if err != nil {
			t.Fatal(err)
		}
		if len(g) < 20 {
			t.Fatalf("GOOS=%s: go list found %d packages; want the whole module", goos, len(g))
		}
		for _, msg := range g.Check(rules) {
			t.Errorf("GOOS=%s: %s", goos, msg)
		}
	}
}

// TestCheckNamesTheForbiddenEdge shows the checker fails, and how it says
// so, on a graph with one forbidden import.
func TestCheckNamesTheForbiddenEdge(t *testing.T) {
	g := Graph{
		mod + "controller":       {mod + "controller/store", mod + "internal/device"},
		mod + "controller/store": {mod + "api"},
		mod + "internal/device":  {mod + "api", mod + "dataplane"},
		mod + "dataplane":        {"github.com/vishvananda/netlink"},
		mod + "api":              nil,
	}
	got := g.Check(rules)
	if len(got) == 0 {
		t.Fatal("Check found nothing; want the controller → dataplane and device → dataplane edges")
	}
	want := "forbidden edge " + mod + "controller → " + mod + "dataplane"
	var found bool
	for _, m := range got {
		if strings.HasPrefix(m, want) && strings.Contains(m, mod+"internal/device → "+mod+"dataplane") {
			found = true
		}
	}
	if !found {
		t.Errorf("Check = %q; want a message starting %q with the import chain", got, want)
	}
	if g := (Graph{mod + "api": {"fmt"}}); len(g.Check(rules)) != 0 {
		t.Errorf("a clean graph was reported: %q", g.Check(rules))
	}
}

func TestMatches(t *testing.T) {
	for _, tc := range []struct {
		pattern, path string
		want          bool
	}{
		{"a/b/...", "a/b", true},
		{"a/b/...", "a/b/c", true},
		{"a/b/...", "a/bc", false},
		{"a/b", "a/b/c", false},
	} {
		if got := Matches(tc.pattern, tc.path); got != tc.want {
			t.Errorf("Matches(%q, %q) = %v; want %v", tc.pattern, tc.path, got, tc.want)
		}
	}
}
