package main

import (
	"strings"
	"testing"
	"time"

	"github.com/openvcpe/vcpe/dataplane"
)

func TestJudgeHA(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	chk := dataplane.HealthCheck{}.WithDefaults()
	no := false
	for _, c := range []struct {
		name   string
		st     dataplane.Status
		ok     bool
		detail string
	}{
		{"daemon down", dataplane.Status{Role: "standby", Source: "state file"}, false, "not running"},
		{"hub silent", dataplane.Status{Role: "standby", Source: "daemon", HA: &dataplane.HAStatus{Check: chk, LastReply: now.Add(-5 * time.Second)}}, false, "does not answer"},
		{"LAN broken", dataplane.Status{Role: "standby", Source: "daemon", HA: &dataplane.HAStatus{Check: chk, LastReply: now, LANOK: &no}}, true, "LAN targets"},
		{"fine", dataplane.Status{Role: "active", Source: "daemon", HA: &dataplane.HAStatus{Check: chk, LastReply: now}}, true, "role active"},
	} {
		rep := judgeHA(c.st, now)
		if rep.OK != c.ok || !strings.Contains(rep.Detail, c.detail) {
			t.Errorf("%s: ok %t, detail %q; want ok %t, detail with %q", c.name, rep.OK, rep.Detail, c.ok, c.detail)
		}
	}
}

func TestParseHAFlags(t *testing.T) {
	gw, ts, err := parseHAFlags("198.19.1.254/24", []string{"198.19.1.10", " 198.19.1.11"})
	if err != nil || gw.String() != "198.19.1.254/24" || len(ts) != 2 {
		t.Fatalf("got %v %v %v", gw, ts, err)
	}
	for _, c := range []struct{ gw, target, field string }{
		{"198.19.1.254", "", "--lan-gateway"},
		{"198.19.1.254/32", "", "--lan-gateway"},
		{"", "lan-a", "--lan-target"},
	} {
		var targets []string
		if c.target != "" {
			targets = []string{c.target}
		}
		if _, _, err := parseHAFlags(c.gw, targets); err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%q %q: %v; want an error naming %s", c.gw, c.target, err, c.field)
		}
	}
}
