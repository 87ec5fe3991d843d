package dataplane

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports a Status to Prometheus. It reads status() on every
// scrape, so metrics are never staler than the scrape.
type Collector struct {
	status func() Status

	up, handshake, rx, tx, routes, syncOK *prometheus.Desc
	loss, rtt, mtu                        *prometheus.Desc
	// per hub session of a device in a hub group (label hub)
	hubUp, hubCarrying, hubRTT, hubLost, hubSwitches *prometheus.Desc
	group                                            groupMetrics
}

// NewCollector returns a Collector over status.
func NewCollector(status func() Status) *Collector {
	return &Collector{
		status:    status,
		up:        prometheus.NewDesc("vcpe_tunnel_up", "1 when the tunnel is up (a fresh handshake with the hub), else 0.", []string{"role", "interface", "state"}, nil),
		handshake: prometheus.NewDesc("vcpe_peer_last_handshake_seconds", "Unix time of the last completed handshake with the peer (0: never).", []string{"peer", "public_key"}, nil),
		rx:        prometheus.NewDesc("vcpe_peer_receive_bytes_total", "Bytes received from the peer through the tunnel.", []string{"peer", "public_key"}, nil),
		tx:        prometheus.NewDesc("vcpe_peer_transmit_bytes_total", "Bytes sent to the peer through the tunnel.", []string{"peer", "public_key"}, nil),
		routes:    prometheus.NewDesc("vcpe_routes", "Routes vcpe installed into the tunnel.", nil, nil),
		syncOK:    prometheus.NewDesc("vcpe_controller_sync_ok", "1 when the last controller sync succeeded (static mode: 1).", []string{"state"}, nil),
		loss:      prometheus.NewDesc("vcpe_link_probe_loss_ratio", "Share of the liveness window's probes to the hub that got no answer.", []string{"state"}, nil),
		rtt:       prometheus.NewDesc("vcpe_link_rtt_seconds", "Median round-trip time of the liveness window's answered probes.", nil, nil),
		mtu:       prometheus.NewDesc("vcpe_tunnel_mtu_bytes", "The tunnel interface's MTU (lowered when a path-MTU black hole is found).", nil, nil),

		hubUp:       prometheus.NewDesc("vcpe_hub_session_up", "1 when the hub answers claims through its tunnel and is not degraded (up or lossy), else 0.", []string{"hub"}, nil),
		hubCarrying: prometheus.NewDesc("vcpe_hub_session_carrying", "1 for the hub of the group that carries the device's traffic now.", []string{"hub"}, nil),
		hubRTT:      prometheus.NewDesc("vcpe_hub_session_rtt_seconds", "Median round-trip time of the liveness probes to the hub.", []string{"hub"}, nil),
		hubLost:     prometheus.NewDesc("vcpe_hub_session_lost_probes", "Liveness probes to the hub lost in the window.", []string{"hub"}, nil),
		hubSwitches: prometheus.NewDesc("vcpe_hub_switches_total", "Times the device's traffic moved onto the hub.", []string{"hub"}, nil),
		group:       newGroupMetrics(),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.handshake, c.rx, c.tx, c.routes, c.syncOK, c.loss, c.rtt, c.mtu,
		c.hubUp, c.hubCarrying, c.hubRTT, c.hubLost, c.hubSwitches} {
		ch <- d
	}
	c.group.describe(ch)
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.status()
	up := 0.0
	if st.State == StateUp {
		up = 1
	}
	// The label keeps "edge" on a device: a failover must not start a new
	// series.
	role := st.Role
	if role != "hub" {
		role = "edge"
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up, role, st.Interface, st.State)
	// In a hub group the carrying hub's peer is "hub" in the status; the
	// metrics name every hub peer "hub NAME", so a switch does not move a
	// series to another peer.
	hubName := map[string]string{}
	for _, h := range st.Hubs {
		hubName[h.PublicKey.String()] = "hub " + h.Name
	}
	for _, p := range st.Peers {
		k := p.PublicKey.String()
		if n, ok := hubName[k]; ok {
			p.Name = n
		}
		hs := 0.0
		if !p.LastHandshake.IsZero() {
			hs = float64(p.LastHandshake.UnixNano()) / 1e9
		}
		ch <- prometheus.MustNewConstMetric(c.handshake, prometheus.GaugeValue, hs, p.Name, k)
		ch <- prometheus.MustNewConstMetric(c.rx, prometheus.CounterValue, float64(p.RxBytes), p.Name, k)
		ch <- prometheus.MustNewConstMetric(c.tx, prometheus.CounterValue, float64(p.TxBytes), p.Name, k)
	}
	ch <- prometheus.MustNewConstMetric(c.routes, prometheus.GaugeValue, float64(len(st.Routes)))
	if l := st.Link; l != nil {
		ch <- prometheus.MustNewConstMetric(c.loss, prometheus.GaugeValue, l.Loss, l.State)
		ch <- prometheus.MustNewConstMetric(c.rtt, prometheus.GaugeValue, l.RTT.Seconds())
	}
	for _, h := range st.Hubs {
		ch <- prometheus.MustNewConstMetric(c.hubUp, prometheus.GaugeValue, b2f(h.State == HubUp || h.State == HubLossy), h.Name)
		ch <- prometheus.MustNewConstMetric(c.hubCarrying, prometheus.GaugeValue, b2f(h.Carrying), h.Name)
		if l := h.Link; l != nil {
			ch <- prometheus.MustNewConstMetric(c.hubRTT, prometheus.GaugeValue, l.RTT.Seconds(), h.Name)
			ch <- prometheus.MustNewConstMetric(c.hubLost, prometheus.GaugeValue, float64(l.Lost), h.Name)
		}
		ch <- prometheus.MustNewConstMetric(c.hubSwitches, prometheus.CounterValue, float64(h.Switches), h.Name)
	}
	c.group.collect(ch, st.HubGroup)
	if st.MTU > 0 {
		ch <- prometheus.MustNewConstMetric(c.mtu, prometheus.GaugeValue, float64(st.MTU))
	}
	if st.Sync != nil {
		ok := 0.0
		if st.Sync.State == SyncOK || st.Sync.State == SyncStatic {
			ok = 1
		}
		ch <- prometheus.MustNewConstMetric(c.syncOK, prometheus.GaugeValue, ok, string(st.Sync.State))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
