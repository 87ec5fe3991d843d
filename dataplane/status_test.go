package dataplane

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openvcpe/vcpe/api"
)

const uapiSample = `private_key=0000000000000000000000000000000000000000000000000000000000000001
listen_port=4500
public_key=0900000000000000000000000000000000000000000000000000000000000009
endpoint=198.18.0.1:4500
last_handshake_time_sec=1700000000
last_handshake_time_nsec=500
tx_bytes=1234
rx_bytes=5678
persistent_keepalive_interval=15
allowed_ip=198.18.64.0/18
allowed_ip=198.19.2.0/24
public_key=0800000000000000000000000000000000000000000000000000000000000008
last_handshake_time_sec=0
last_handshake_time_nsec=0
tx_bytes=0
rx_bytes=0
`

func TestParseUAPI(t *testing.T) {
	ps, err := parseUAPI(uapiSample)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 {
		t.Fatalf("got %d peers; want 2", len(ps))
	}
	p := ps[0]
	if p.PublicKey != key(9) || p.Endpoint != "198.18.0.1:4500" || p.RxBytes != 5678 || p.TxBytes != 1234 ||
		!p.LastHandshake.Equal(time.Unix(1700000000, 500)) || len(p.AllowedIPs) != 2 || p.Keepalive != 15 {
		t.Errorf("peer 0 = %+v", p)
	}
	if !ps[1].LastHandshake.IsZero() {
		t.Errorf("peer without handshake has %v", ps[1].LastHandshake)
	}
	for _, bad := range []string{"public_key=zz\n", "public_key=" + strings.Repeat("0", 64) + "\nrx_bytes=x\n", "garbage\n"} {
		if _, err := parseUAPI(bad); err == nil {
			t.Errorf("parseUAPI(%q) accepted bad input", bad)
		}
	}
}

func FuzzParseUAPI(f *testing.F) {
	f.Add(uapiSample)
	f.Add("public_key=\n")
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = parseUAPI(s) // must not panic
	})
}

func TestPeerStatusHandshakeNotCompleting(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	p := uapiPeer{PublicKey: key(9), Endpoint: "198.18.0.1:4500"}
	for _, tc := range []struct {
		name          string
		lastHS, first time.Time
		last          time.Time
		wantProblem   string
		wantState     string
	}{
		{"never tried", time.Time{}, time.Time{}, time.Time{}, "", StateConnecting},
		{"just tried", time.Time{}, now.Add(-2 * time.Second), now.Add(-2 * time.Second), "", StateConnecting},
		{"unanswered 12s", time.Time{}, now.Add(-12 * time.Second), now.Add(-2 * time.Second),
			"handshake not completing with peer " + key(9).String() + " (198.18.0.1:4500): last attempt 2s ago, no handshake yet",
			StateHandshakeNotCompleting},
		{"answered", now.Add(-time.Second), time.Time{}, now.Add(-time.Second), "", StateUp},
		{"stale session, retrying", now.Add(-200 * time.Second), now.Add(-20 * time.Second), now.Add(-3 * time.Second),
			"last handshake 3m20s ago", StateHandshakeNotCompleting},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := p
			q.LastHandshake = tc.lastHS
			ps := peerStatus(now, "hub", q, tc.first, tc.last)
			if tc.wantProblem == "" && ps.Problem != "" || !strings.Contains(ps.Problem, tc.wantProblem) {
				t.Errorf("problem = %q; want %q", ps.Problem, tc.wantProblem)
			}
			if st, _ := edgeState(now, ps); st != tc.wantState {
				t.Errorf("state = %q; want %q", st, tc.wantState)
			}
		})
	}
}

func TestAttemptsForgetAnsweredHandshakes(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	a := newAttempts(func() time.Time { return now })
	a.record(shortKey(key(9)))
	now = now.Add(5 * time.Second)
	a.record(shortKey(key(9)))
	first, last := a.get(key(9), time.Time{})
	if !first.Equal(now.Add(-5*time.Second)) || !last.Equal(now) {
		t.Errorf("first %v last %v", first, last)
	}
	first, _ = a.get(key(9), now.Add(time.Second)) // a handshake completed
	if !first.IsZero() {
		t.Errorf("answered attempt still pending: %v", first)
	}
}

func TestShortKeyMatchesWireguard(t *testing.T) {
	// wireguard-go: base64Key[0:4] + "…" + base64Key[39:43]
	k := key(9)
	s := k.String()
	if got, want := shortKey(k), "peer("+s[0:4]+"…"+s[39:43]+")"; got != want {
		t.Errorf("shortKey = %q; want %q", got, want)
	}
}

type fakeEngine struct {
	applied []uint64
	revoked string
	fail    error
}

func (f *fakeEngine) Apply(c api.DeviceConfig) error {
	if f.fail != nil {
		return f.fail
	}
	f.applied = append(f.applied, c.Generation)
	return nil
}
func (f *fakeEngine) Revoke(r string) { f.revoked = r }

type seqSource struct {
	answers []any // api.DeviceConfig or error
}

func (s *seqSource) DeviceConfig(context.Context) (api.DeviceConfig, error) {
	a := s.answers[0]
	s.answers = s.answers[1:]
	if err, ok := a.(error); ok {
		return api.DeviceConfig{}, err
	}
	return a.(api.DeviceConfig), nil
}

func TestSyncer(t *testing.T) {
	eng := &fakeEngine{}
	src := &seqSource{answers: []any{
		api.DeviceConfig{Generation: 1},  // same as running: nothing applied
		api.DeviceConfig{Generation: 2},  // applied
		errors.New("connection refused"), // kept
		api.DeviceConfig{Generation: 2},  // nothing
		&api.Error{Code: api.CodeKeyReset, Message: "key reset by operator"},
	}}
	s := NewSyncer(src, eng, 1)
	var saved []uint64
	s.Save = func(c api.DeviceConfig) error { saved = append(saved, c.Generation); return nil }
	ctx := context.Background()
	for i, wantState := range []SyncState{SyncOK, SyncOK, SyncUnreachable, SyncOK} {
		if !s.Once(ctx) {
			t.Fatalf("poll %d stopped syncing", i)
		}
		if st := s.Status(); st.State != wantState {
			t.Errorf("poll %d: state %q; want %q", i, st.State, wantState)
		}
	}
	if s.Once(ctx) {
		t.Errorf("sync goes on after key reset")
	}
	if len(eng.applied) != 1 || eng.applied[0] != 2 || len(saved) != 1 {
		t.Errorf("applied %v saved %v; want generation 2 once", eng.applied, saved)
	}
	if !strings.Contains(eng.revoked, "key was reset") || s.Status().State != "key reset" {
		t.Errorf("revoked %q state %q", eng.revoked, s.Status().State)
	}
	if s.Once(ctx) {
		t.Errorf("sync restarted after key reset")
	}
}

func TestControlSocketRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), ControlSocket)
	want := Status{Role: "edge", State: StateUp, Interface: "vcpe0", Routes: pfx("198.19.2.0/24"), Source: "daemon"}
	srv, err := ListenControl(path, func() Status { return want }, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadStatus(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != want.State || len(got.Routes) != 1 || got.Routes[0] != want.Routes[0] {
		t.Errorf("ReadStatus = %+v", got)
	}
	if _, err := ListenControl(path, func() Status { return want }, nil); err == nil {
		t.Errorf("a second server on a live socket started")
	}
	srv.Close()
	if _, err := ReadStatus(path); err == nil {
		t.Errorf("ReadStatus after Close succeeded")
	}
}

func TestCollector(t *testing.T) {
	st := Status{Role: "edge", State: StateUp, Interface: "vcpe0", Routes: pfx("198.19.2.0/24"),
		Peers: []PeerStatus{{Name: "hub", PublicKey: key(9), RxBytes: 10, TxBytes: 20}}, Sync: &SyncStatus{State: "ok"},
		Link: &LinkHealth{State: LinkLossy, Probes: 60, Lost: 15, Loss: 0.25, RTT: 2 * time.Millisecond}, MTU: 1228}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(func() Status { return st }))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			switch {
			case m.Gauge != nil:
				got[mf.GetName()] = m.Gauge.GetValue()
			case m.Counter != nil:
				got[mf.GetName()] = m.Counter.GetValue()
			}
		}
	}
	for name, want := range map[string]float64{"vcpe_tunnel_up": 1, "vcpe_peer_receive_bytes_total": 10,
		"vcpe_peer_transmit_bytes_total": 20, "vcpe_routes": 1, "vcpe_controller_sync_ok": 1,
		"vcpe_link_probe_loss_ratio": 0.25, "vcpe_link_rtt_seconds": 0.002, "vcpe_tunnel_mtu_bytes": 1228} {
		if got[name] != want {
			t.Errorf("%s = %v; want %v", name, got[name], want)
		}
	}
}

func TestWriteText(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	st := Status{Role: "edge", State: StateHandshakeNotCompleting, Reason: "handshake not completing with peer X",
		Interface: "vcpe0", ListenPort: 4500, OverlayAddr: netip.MustParsePrefix("198.18.64.2/18"), Source: "daemon",
		Peers:  []PeerStatus{{Name: "hub", PublicKey: key(9), Endpoint: "198.18.0.1:4500", Problem: "handshake not completing with peer X"}},
		Routes: pfx("198.19.2.0/24"), Sync: &SyncStatus{Mode: "static", State: "static"},
		Link: &LinkHealth{State: LinkLossy, Probes: 60, Lost: 27, RTT: time.Millisecond, RTTMax: 3 * time.Millisecond, Handshakes: 4},
		MTU:  1228, PathMTU: &PathMTUStatus{Configured: 1420, Current: 1228},
		Events: []Event{{Time: now, Last: now.Add(time.Minute), Count: 3, Kind: "link", Message: "tunnel to the hub is lossy"}},
		HA: &HAStatus{Check: HealthCheck{}.WithDefaults(), Events: []RoleEvent{{Time: now, Last: now.Add(time.Second), Count: 95, SN: "A",
			Role: "standby", Reason: reasonWithdraw}}}}
	var b bytes.Buffer
	WriteText(&b, st, now)
	for _, want := range []string{"state:     handshake not completing (live from vcped)", "hub:       " + key(9).String() + " at 198.18.0.1:4500",
		"last handshake none yet", "problem: handshake not completing", "routes:    198.19.2.0/24", "sync:      static, static",
		"link:      lossy, 27 of the last 60 probes lost, median RTT 1ms (max 3ms), 4 handshakes started beside the session",
		"mtu:       1228 (lowered from 1420: path-MTU black hole)", "tunnel to the hub is lossy (×3, last at 2026-11-26T12:01:00Z)",
		"A became standby: " + reasonWithdraw + " (×95, last at 2026-11-26T12:00:01Z)"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, b.String())
		}
	}
}

func TestHubGroupStatusTextAndMetrics(t *testing.T) {
	now := time.Date(2026, 12, 3, 18, 0, 0, 0, time.UTC)
	st := Status{Role: "active", State: StateUp, Interface: "vcpe0", Source: "daemon",
		Peers: []PeerStatus{{Name: "hub", PublicKey: key(10), RxBytes: 10}, {Name: "hub hub1", PublicKey: key(9), RxBytes: 5}},
		Hubs: []HubSession{
			{Name: "hub1", PublicKey: key(9), Endpoint: "198.18.0.1:4500", Primary: true, State: HubDown, Since: now.Add(-5 * time.Second),
				LastReply: now.Add(-6 * time.Second), Link: &LinkHealth{State: LinkDown, Probes: 60, Lost: 16}},
			{Name: "hub2", PublicKey: key(10), Endpoint: "198.18.0.2:4500", Carrying: true, State: HubUp, LastReply: now.Add(-50 * time.Millisecond),
				Link: &LinkHealth{State: LinkUp, Probes: 60, RTT: 2 * time.Millisecond}, Switches: 1, LastHandshake: now.Add(-time.Minute)},
		},
		Events: []Event{{Time: now.Add(-5 * time.Second), Kind: "hub", Message: "traffic moved to hub hub2", Detail: "from hub hub1: hub hub1: no claim reply for 650ms"}}}
	var b bytes.Buffer
	WriteText(&b, st, now)
	for _, want := range []string{"hubs:      2 in the group, hub2 carries the traffic (the secondary: the primary hub1 is down)",
		"hub1  primary    down 5s", "hub2  secondary  up", "carrying", "16/60 lost", "rtt 2ms", "traffic moved to hub hub2: from hub hub1"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, b.String())
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(func() Status { return st }))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			name := mf.GetName()
			for _, l := range m.Label {
				name += "," + l.GetName() + "=" + l.GetValue()
			}
			switch {
			case m.Gauge != nil:
				got[name] = m.Gauge.GetValue()
			case m.Counter != nil:
				got[name] = m.Counter.GetValue()
			}
		}
	}
	for name, want := range map[string]float64{"vcpe_hub_session_up,hub=hub1": 0, "vcpe_hub_session_up,hub=hub2": 1,
		"vcpe_hub_session_carrying,hub=hub1": 0, "vcpe_hub_session_carrying,hub=hub2": 1, "vcpe_hub_session_lost_probes,hub=hub1": 16,
		"vcpe_hub_session_rtt_seconds,hub=hub2": 0.002, "vcpe_hub_switches_total,hub=hub2": 1, "vcpe_hub_switches_total,hub=hub1": 0,
		"vcpe_peer_receive_bytes_total,peer=hub hub2,public_key=" + key(10).String(): 10} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %v (present %v); want %v", name, v, ok, want)
		}
	}
}

// TestSyncerSaveFailureIsASyncError: a configuration that could not be
// saved (disk full) shows as a sync error naming both generations, and is
// saved at the next poll once there is space, with no new generation.
func TestSyncerSaveFailureIsASyncError(t *testing.T) {
	eng := &fakeEngine{}
	src := &seqSource{answers: []any{api.DeviceConfig{Generation: 2}, api.DeviceConfig{Generation: 2}, api.DeviceConfig{Generation: 2}}}
	s := NewSyncer(src, eng, 1)
	full := true
	var saved []uint64
	s.Save = func(c api.DeviceConfig) error {
		if full {
			return syscall.ENOSPC
		}
		saved = append(saved, c.Generation)
		return nil
	}
	ctx := context.Background()
	s.Once(ctx)
	st := s.Status()
	if st.State != "save failed" || st.Generation != 2 || st.SavedGeneration != 1 || !strings.Contains(st.LastError, "no space left") {
		t.Errorf("after a failed save: %+v; want state 'save failed', generation 2, saved 1 and the cause", st)
	}
	s.Once(ctx)
	if s.Status().State != "save failed" {
		t.Errorf("still full: state %q", s.Status().State)
	}
	full = false
	s.Once(ctx)
	if st := s.Status(); st.State != "ok" || st.SavedGeneration != 2 || len(saved) != 1 {
		t.Errorf("space back: %+v, saved %v; want ok and generation 2 saved once", st, saved)
	}
	if len(eng.applied) != 1 {
		t.Errorf("applied %v; want generation 2 once", eng.applied)
	}
}
