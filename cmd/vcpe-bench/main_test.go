package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/openvcpe/vcpe/internal/bench"
)

func TestBadInputExitsTwo(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-variants", "raw,kernel"}, `unknown base "kernel"`},
		{[]string{"-variants", "vcpe+turbo"}, `unknown tuning "turbo"`},
		{[]string{"-runs", "-1"}, "-runs -1"},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"-nope"}, "flag provided but not defined: -nope"},
		{[]string{"-cases", "icmp"}, `-cases "icmp": want all, tcp, udp or hub, or a comma-separated list of them`},
		{[]string{"-variants", "vcpe+vcped=/nonexistent/vcped"}, "build it first, e.g. go build -pgo=off -o /nonexistent/vcped ./cmd/vcped"},
	} {
		var stderr bytes.Buffer
		if code := run(tt.args, &stderr); code != 2 || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("run(%q) = %d, stderr %q; want 2 and %q", tt.args, code, stderr.String(), tt.want)
		}
	}
}

func TestOptionsDefaultsAndQuick(t *testing.T) {
	t.Setenv("BENCH_QUICK", "")
	o, out, vcped, err := options(nil, &bytes.Buffer{})
	if err != nil || o.Runs != 3 || o.Quick || out != "bench-results" || vcped != "" || strings.Join(o.Variants, ",") != "raw,upstream,vcpe" {
		t.Errorf("defaults: %+v %q %q %v", o, out, vcped, err)
	}
	t.Setenv("BENCH_QUICK", "1")
	o, _, _, err = options([]string{"-runs", "2"}, &bytes.Buffer{})
	if err != nil || !o.Quick || o.Runs != 2 || o.Seconds != 2 {
		t.Errorf("BENCH_QUICK=1 -runs 2: runs %d, seconds %d, quick %v, %v; want 2, 2, true", o.Runs, o.Seconds, o.Quick, err)
	}
}

func TestCasesFilter(t *testing.T) {
	o, _, _, err := options([]string{"-cases", "udp"}, &bytes.Buffer{})
	if err != nil || len(o.Cases) != 2 {
		t.Fatalf("-cases udp: %d cases, %v; want the 2 UDP cases", len(o.Cases), err)
	}
	for _, c := range o.Cases {
		if c.Proto != "udp" {
			t.Errorf("-cases udp kept %+v", c)
		}
	}
	o, _, _, err = options([]string{"-cases", "tcp,hub"}, &bytes.Buffer{})
	if err != nil || len(o.Cases) != 5 {
		t.Fatalf("-cases tcp,hub: %d cases, %v; want the 4 two-end TCP cases and the hub case", len(o.Cases), err)
	}
	if last := o.Cases[4]; last.Sites != bench.HubSites || last.Proto != "tcp" {
		t.Errorf("-cases tcp,hub: last case %+v; want the hub case", last)
	}
	if o, _, _, err := options(nil, &bytes.Buffer{}); err != nil || len(o.Cases) != 0 {
		t.Errorf("default: %d cases, %v; want none set (the harness then takes all)", len(o.Cases), err)
	}
}
