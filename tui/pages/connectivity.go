package pages

import (
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/openvcpe/vcpe/tui/components"
)

// Connectivity shows live probe results: one sparkline, loss, RTT and
// jitter per target.
type Connectivity struct {
	Probes []components.Probe
	// Finished is set when the install is over; enter then moves on.
	Finished bool
	scroll   scroller
}

// SetProbe replaces the probe with the same name, or appends it.
func (c *Connectivity) SetProbe(p components.Probe) {
	for i := range c.Probes {
		if c.Probes[i].Name == p.Name {
			c.Probes[i] = p
			return
		}
	}
	c.Probes = append(c.Probes, p)
}

func (*Connectivity) Title() string { return "Connectivity" }

func (c *Connectivity) Update(msg tea.Msg, f Frame) tea.Cmd {
	c.scroll.update(msg, f)
	if k, ok := msg.(tea.KeyPressMsg); ok && c.Finished && key.Matches(k, f.Keys.Continue) {
		return msgCmd(FinishMsg{})
	}
	return nil
}

func (c *Connectivity) View(f Frame) string {
	head := []string{"Probing through the tunnel (ICMP and UDP).", ""}
	if len(c.Probes) == 0 {
		head[0] = f.Spin + " Waiting for the first probe results…"
	}
	var body []string
	for _, p := range c.Probes {
		body = append(body, strings.Split(components.ProbeView(f.Styles, p, f.Spin, f.Width), "\n")...)
		body = append(body, "")
	}
	sub := f
	sub.Height = f.Height - len(head)
	return strings.Join(head, "\n") + "\n" + c.scroll.clip(body, sub)
}

func (c *Connectivity) Help(f Frame) []key.Binding {
	if c.Finished {
		return append([]key.Binding{f.Keys.Continue}, append(scrollKeys(f), f.Keys.Quit)...)
	}
	return append(scrollKeys(f), f.Keys.Quit)
}
