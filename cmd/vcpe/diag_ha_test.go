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
