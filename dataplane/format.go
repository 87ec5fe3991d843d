package dataplane

import (
	"cmp"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/openvcpe/vcpe/api"
)

// WriteText renders a Status for people (vcpe status without --json).
func WriteText(w io.Writer, st Status, now time.Time) {
	src := "live from vcped"
	if st.Source != "daemon" {
		src = "from the " + st.Source + " (vcped is not running)"
	}
	fmt.Fprintf(w, "%-10s %s (%s)\n", "state:", st.State, src)
	if st.Reason != "" {
		fmt.Fprintf(w, "%-10s %s\n", "reason:", st.Reason)
	}
	if st.Role == "active" || st.Role == "standby" {
		fmt.Fprintf(w, "%-10s %s\n", "role:", st.Role)
	}
	fmt.Fprintf(w, "%-10s %s, UDP %d, public key %s\n", "interface:", st.Interface, st.ListenPort, st.PublicKey)
	if st.OverlayAddr.IsValid() {
		fmt.Fprintf(w, "%-10s %s (config generation %d)\n", "overlay:", st.OverlayAddr, st.Generation)
	}
	for _, p := range st.Peers {
		name := p.Name
		if name == "" {
			name = "peer"
		}
		fmt.Fprintf(w, "%-10s %s at %s", name+":", p.PublicKey, orNone(p.Endpoint))
		if p.CCN != "" {
			fmt.Fprintf(w, ", ccn %s", p.CCN)
		}
		if p.Active {
			fmt.Fprint(w, ", active")
		}
		fmt.Fprintln(w)
		hs := "none yet"
		if !p.LastHandshake.IsZero() {
			hs = ago(now, p.LastHandshake) + " ago"
		}
		fmt.Fprintf(w, "  last handshake %s, transfer %d B received, %d B sent\n", hs, p.RxBytes, p.TxBytes)
		if c := p.Claims; c != nil && c.Loss >= 0.005 {
			fmt.Fprintf(w, "  claims: %.0f%% of copies lost, counted as stopped after %v of silence\n", 100*c.Loss, c.DeadAfter.Round(time.Millisecond))
		}
		if p.Problem != "" {
			fmt.Fprintf(w, "  problem: %s\n", p.Problem)
		}
	}
	writeHubs(w, st.Hubs, now)
	if l := st.Link; l != nil {
		line := fmt.Sprintf("%s, %d of the last %d probes lost", l.State, l.Lost, l.Probes)
		if l.RTT > 0 {
			line += fmt.Sprintf(", median RTT %v (max %v)", l.RTT.Round(10*time.Microsecond), l.RTTMax.Round(10*time.Microsecond))
		}
		if l.Handshakes > 0 {
			line += fmt.Sprintf(", %d handshakes started beside the session", l.Handshakes)
		}
		fmt.Fprintf(w, "%-10s %s\n", "link:", line)
	}
	if st.MTU > 0 {
		line := fmt.Sprint(st.MTU)
		if p := st.PathMTU; p != nil && p.Current < p.Configured {
			line += fmt.Sprintf(" (lowered from %d: path-MTU black hole)", p.Configured)
		}
		fmt.Fprintf(w, "%-10s %s\n", "mtu:", line)
	}
	for _, ev := range st.Events {
		line := ev.Message
		if ev.Detail != "" {
			line += ": " + ev.Detail
		}
		fmt.Fprintf(w, "  %s %s%s\n", ev.Time.Format(time.RFC3339Nano), line, times(ev.Times(), ev.Last))
	}
	fmt.Fprintf(w, "%-10s %s\n", "routes:", cmp.Or(api.JoinPrefixes(st.Routes, ", "), "(none)"))
	writeHubGroup(w, st.HubGroup, now)
	if s := st.Sync; s != nil {
		line := s.Mode + ", " + string(s.State)
		if !s.UnreachableSince.IsZero() {
			line += fmt.Sprintf(" since %s (%s ago; forwarding on the last configuration, generation %d)",
				s.UnreachableSince.UTC().Format(time.RFC3339), ago(now, s.UnreachableSince), s.Generation)
		}
		if !s.LastSuccess.IsZero() {
			line += fmt.Sprintf(", last success %s ago", ago(now, s.LastSuccess))
		}
		if s.LastError != "" {
			line += ", last error: " + s.LastError
		}
		fmt.Fprintf(w, "%-10s %s\n", "sync:", line)
	}
	if ha := st.HA; ha != nil {
		line := fmt.Sprintf("claims every %v, down after %d", ha.Check.Interval, ha.Check.Failures)
		if ha.LANGateway.IsValid() {
			line += ", LAN gateway " + ha.LANGateway.String()
		}
		if ha.LANOK != nil {
			line += fmt.Sprintf(", LAN targets ok: %t", *ha.LANOK)
		}
		fmt.Fprintf(w, "%-10s %s\n", "ha:", line)
		for _, ev := range ha.Events {
			who := ev.SN
			if ev.Instance != "" {
				who = ev.Instance + "/" + ev.SN
			}
			fmt.Fprintf(w, "  %s %s became %s: %s%s\n", ev.Time.Format(time.RFC3339Nano), who, ev.Role, ev.Reason, times(ev.Times(), ev.Last))
		}
	}
}

// times describes a folded event: "" once, " (×N, last at T)" more often.
func times(n int, last time.Time) string {
	if n <= 1 {
		return ""
	}
	return fmt.Sprintf(" (×%d, last at %s)", n, last.Format(time.RFC3339Nano))
}

func orNone(s string) string {
	if s == "" {
		return "(no endpoint)"
	}
	return s
}

// writeHubs renders the hub sessions of a device in a hub group as a
// table: which hub carries the traffic, each one's state, last claim
// reply, liveness and handshake.
func writeHubs(w io.Writer, hubs []HubSession, now time.Time) {
	if len(hubs) == 0 {
		return
	}
	line := fmt.Sprintf("%d in the group", len(hubs))
	for _, h := range hubs {
		if h.Carrying {
			line += ", " + h.Name + " carries the traffic"
			if !h.Primary {
				line += " (the secondary: the primary " + hubs[0].Name + " is " + hubs[0].State + ")"
			}
		}
	}
	fmt.Fprintf(w, "%-10s %s\n", "hubs:", line)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tASSIGNED\tSTATE\tCARRYING\tLAST REPLY\tLINK\tHANDSHAKE\tSWITCHES\tENDPOINT")
	for _, h := range hubs {
		assigned, carrying := "secondary", "-"
		if h.Primary {
			assigned = "primary"
		}
		if h.Carrying {
			carrying = "carrying"
		}
		state := h.State
		if !h.Since.IsZero() {
			state += " " + ago(now, h.Since)
		}
		reply := "never"
		if !h.LastReply.IsZero() {
			reply = ago(now, h.LastReply) + " ago"
		}
		link := "-"
		if l := h.Link; l != nil {
			link = fmt.Sprintf("%d/%d lost", l.Lost, l.Probes)
			if l.RTT > 0 {
				link += ", rtt " + l.RTT.Round(10*time.Microsecond).String()
			}
		}
		hs := "none yet"
		if !h.LastHandshake.IsZero() {
			hs = ago(now, h.LastHandshake) + " ago"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", h.Name, assigned, state, carrying, reply, link, hs, h.Switches, orNone(h.Endpoint))
	}
	_ = tw.Flush()
	for _, h := range hubs {
		if h.Problem != "" {
			fmt.Fprintf(w, "  hub %s: %s\n", h.Name, h.Problem)
		}
	}
}
