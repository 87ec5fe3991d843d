package tui

import (
	"testing"

	"github.com/openvcpe/vcpe/provision"
)

// BenchmarkRender draws one frame at 80×24: the welcome page (baseline),
// the precheck report and the connectivity page with three probe series.
func BenchmarkRender(b *testing.B) {
	cases := map[string]func(d *driver){
		"welcome": func(d *driver) {},
		"precheck": func(d *driver) {
			d.keys("enter")
			d.send(precheckPromptMsg{Report: report(failPorts, warnICMP, skipWAN), reply: make(chan provision.PrecheckDecision, 1)})
		},
		"connectivity": func(d *driver) {
			d.keys("enter")
			d.send(confirmPromptMsg{Plan: testPlan(), reply: make(chan bool, 1)})
			d.keys("y")
			for _, p := range testProbes() {
				d.send(engineEventMsg{provision.Event{Step: provision.StepConnectivity, Kind: provision.EventProgress, Data: p}})
			}
		},
	}
	for _, name := range []string{"welcome", "precheck", "connectivity"} {
		b.Run(name, func(b *testing.B) {
			d := newDriver(b, 80, 24)
			cases[name](d)
			b.ReportAllocs()
			for b.Loop() {
				_ = d.m.render()
			}
		})
	}
}
