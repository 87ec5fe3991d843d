// Package deptest pins vcpe's layering: which project packages (and which
// heavy third-party packages) each package may reach, transitively, in its
// non-test build. It reads the graph from `go list -deps` the way
// tailscale's tstest/deptest does, and reports a forbidden edge with the
// chain of imports that reaches it.
package deptest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
)

// Graph is a package import graph: import path → direct imports.
type Graph map[string][]string

// Load runs `go list -deps -json` on patterns (run from dir, "" for the
// current directory) and returns the graph of every package it lists.
func Load(dir string, goos string, patterns ...string) (Graph, error) {
	args := append([]string{"list", "-deps", "-json=ImportPath,Imports"}, patterns...)
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	if goos != "" {
		cmd.Env = append(cmd.Environ(), "GOOS="+goos, "CGO_ENABLED=0")
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	g := Graph{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			return nil, fmt.Errorf("decode go list output: %w", err)
		}
		g[p.ImportPath] = p.Imports
	}
	return g, nil
}

// Path returns the chain of imports from "from" to the first package for
// which match is true, or nil when none is reachable. The chain starts
// with from and ends with the matching package.
func (g Graph) Path(from string, match func(string) bool) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p != from && match(p) {
			var chain []string
			for q := p; q != ""; q = prev[q] {
				chain = append(chain, q)
			}
			slices.Reverse(chain)
			return chain
		}
		for _, d := range g[p] {
			if _, seen := prev[d]; !seen {
				prev[d] = p
				queue = append(queue, d)
			}
		}
	}
	return nil
}

// Rule forbids the packages matching From to reach any package matching
// Deny. Why is printed with a violation.
type Rule struct {
	From string   // import path, or a prefix ending in "/..."
	Deny []string // import paths or prefixes ending in "/..."
	Why  string
}

// Matches reports whether path matches pattern: equal, or under it when the
// pattern ends in "/...".
func Matches(pattern, path string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return path == base || strings.HasPrefix(path, base+"/")
	}
	return path == pattern
}

// Check applies rules to every package of g and returns one message per
// forbidden edge, naming the edge and the chain that reaches it.
func (g Graph) Check(rules []Rule) []string {
	var bad []string
	pkgs := make([]string, 0, len(g))
	for p := range g {
		pkgs = append(pkgs, p)
	}
	slices.Sort(pkgs)
	for _, r := range rules {
		for _, p := range pkgs {
			if !Matches(r.From, p) {
				continue
			}
			for _, d := range r.Deny {
				chain := g.Path(p, func(q string) bool { return Matches(d, q) && !Matches(r.From, q) })
				if chain == nil {
					continue
				}
				bad = append(bad, fmt.Sprintf("forbidden edge %s → %s (%s); import chain: %s",
					p, chain[len(chain)-1], r.Why, strings.Join(chain, " → ")))
			}
		}
	}
	return bad
}
