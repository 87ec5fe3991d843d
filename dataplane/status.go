package dataplane

import (
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/openvcpe/vcpe/api"
)

// Tunnel states in Status.State.
const (
	StateUp                     = "up"
	StateConnecting             = "connecting"
	StateHandshakeNotCompleting = "handshake not completing"
	StateRevoked                = "revoked"
	StateStopped                = "stopped"
)

// Status is what the engine reports: the control socket serves it as JSON
// and vcpe status prints it.
type Status struct {
	// Role is "hub" on the hub; on a device "active" or "standby" (its
	// multi-attach role as the hub last told it; "standby" when it has no
	// fresh word from the hub).
	Role        string         `json:"role"`
	State       string         `json:"state"`
	Reason      string         `json:"reason,omitempty"`
	Interface   string         `json:"interface"`
	ListenPort  uint16         `json:"listen_port"`
	PublicKey   api.Key        `json:"public_key"`
	OverlayAddr netip.Prefix   `json:"overlay_addr,omitzero"`
	Generation  uint64         `json:"generation"`
	Routes      []netip.Prefix `json:"routes"`
	// DroppedRoutes are learned routes the device refused to install
	// because they would capture the hub endpoint, the controller or the
	// SSH client.
	DroppedRoutes []GuardedRoute `json:"dropped_routes,omitempty"`
	Peers         []PeerStatus   `json:"peers"`
	Sync          *SyncStatus    `json:"sync,omitempty"`
	HA            *HAStatus      `json:"ha,omitempty"`
	// HubGroup is a hub's view of its hub group (hub only; nil on a hub
	// without groups, cloud targets or cloud gateway).
	HubGroup *HubGroupStatus `json:"hub_group,omitempty"`
	// Link is the device's liveness of the tunnel: a window of probes to
	// the hub's overlay address (loss, RTT).
	Link *LinkHealth `json:"link,omitempty"`
	// MTU is the tunnel interface's MTU now; PathMTU the device's path-MTU
	// watch (a black hole lowers the MTU).
	MTU     int            `json:"mtu,omitempty"`
	PathMTU *PathMTUStatus `json:"path_mtu,omitempty"`
	// Hubs are the device's sessions with the hubs of its group, primary
	// first (only with hub groups: DeviceConfig.Hubs set). One of them
	// carries the traffic; Link is that one's liveness.
	Hubs []HubSession `json:"hubs,omitempty"`
	// Events are the device's tunnel events (link health, MTU changes,
	// hub switches), oldest first; repeated identical ones are folded
	// into one.
	Events []Event `json:"events,omitempty"`
	// Source says where this status came from: "daemon" (live) or
	// "state file" (the daemon is not running).
	Source string    `json:"source"`
	Time   time.Time `json:"time"`
}

// Event is one tunnel event of a device. Repeated identical events (same
// kind and message) are folded: Count says how many, Time is the first
// and Last the latest.
type Event struct {
	Time    time.Time `json:"time"`
	Last    time.Time `json:"last,omitzero"`
	Count   int       `json:"count,omitempty"`
	Kind    string    `json:"kind"` // "link", "mtu" or "hub"
	Message string    `json:"message"`
	Detail  string    `json:"detail,omitempty"` // of the latest occurrence
}

// Times is how many times the event happened (at least 1).
func (e Event) Times() int { return max(e.Count, 1) }

// appendEvent adds ev to the history (the last maxEvents), folding it into
// an identical event among the last two (a flap between two states folds
// into two entries), which moves to the end.
func appendEvent(have []Event, ev Event) []Event {
	same := func(a Event) bool { return a.Kind == ev.Kind && a.Message == ev.Message }
	return foldAppend(have, ev, same, func(old *Event) {
		old.Count, old.Last, old.Detail = old.Times()+1, ev.Time, ev.Detail
	})
}

// foldAppend appends ev, or, when same matches one of the last two
// entries, folds ev into it (fold) and moves it to the end. It keeps the
// last maxEvents.
func foldAppend[E any](have []E, ev E, same func(E) bool, fold func(*E)) []E {
	for i := len(have) - 1; i >= max(0, len(have)-2); i-- {
		if same(have[i]) {
			old := have[i]
			fold(&old)
			have = append(have[:i:i], have[i+1:]...)
			return append(have, old)
		}
	}
	have = append(have, ev)
	if len(have) > maxEvents {
		have = append([]E(nil), have[len(have)-maxEvents:]...)
	}
	return have
}

// HubSession is a device's session with one hub of its group: WireGuard
// peer, claim replies and liveness.
type HubSession struct {
	Name        string     `json:"name"`
	PublicKey   api.Key    `json:"public_key"`
	Endpoint    string     `json:"endpoint"`
	OverlayAddr netip.Addr `json:"overlay_addr"`
	// Primary is the controller's first choice for the device; Carrying
	// says this hub carries the traffic now (its peer holds the routes).
	Primary  bool `json:"primary"`
	Carrying bool `json:"carrying"`
	// State is HubUp, HubLossy, HubDown, HubDegraded or HubConnecting,
	// judged from claim replies through this hub's tunnel (and the
	// liveness window for lossy).
	State string `json:"state"`
	// Since is when State began.
	Since time.Time `json:"since,omitzero"`
	// LastReply is the last claim reply from this hub; Role the
	// multi-attach role it answered (only the carrying hub's counts).
	LastReply time.Time `json:"last_reply,omitzero"`
	Role      string    `json:"role,omitempty"`
	// Link is the liveness window of the probes to this hub.
	Link          *LinkHealth `json:"link,omitempty"`
	LastHandshake time.Time   `json:"last_handshake,omitzero"`
	LastAttempt   time.Time   `json:"last_handshake_attempt,omitzero"`
	RxBytes       uint64      `json:"rx_bytes"`
	TxBytes       uint64      `json:"tx_bytes"`
	Problem       string      `json:"problem,omitempty"`
	// Switches counts how often the traffic moved onto this hub since
	// vcped started.
	Switches int `json:"switches"`
}

// CarryingHub returns the hub session that carries the traffic (nil
// without hub groups).
func (s Status) CarryingHub() *HubSession {
	for i := range s.Hubs {
		if s.Hubs[i].Carrying {
			return &s.Hubs[i]
		}
	}
	return nil
}

// PeerStatus is one WireGuard peer.
type PeerStatus struct {
	Name          string         `json:"name"` // "hub" on an edge; the SN on the hub
	PublicKey     api.Key        `json:"public_key"`
	Endpoint      string         `json:"endpoint,omitempty"`
	AllowedIPs    []netip.Prefix `json:"allowed_ips"`
	LastHandshake time.Time      `json:"last_handshake,omitzero"`
	LastAttempt   time.Time      `json:"last_handshake_attempt,omitzero"`
	RxBytes       uint64         `json:"rx_bytes"`
	TxBytes       uint64         `json:"tx_bytes"`
	CCN           string         `json:"ccn,omitempty"`
	Active        bool           `json:"active,omitempty"`
	// Claims is the hub's view of a multi-attach device's claim path:
	// the loss its claims show and the dead time the arbiter gives it
	// (hub only).
	Claims *ClaimPath `json:"claims,omitempty"`
	// Problem is set when the handshake with this peer is not completing:
	// "handshake not completing with peer KEY (ENDPOINT): last attempt 2s
	// ago, no handshake yet".
	Problem string `json:"problem,omitempty"`
}

// SyncState is the state of the controller sync (SyncStatus.State): vcped
// writes it, vcpe status prints it and vcpe diag matches it.
type SyncState string

// The sync states.
const (
	SyncStarting    SyncState = "starting"
	SyncOK          SyncState = "ok"
	SyncUnreachable SyncState = "controller unreachable"
	SyncRevoked     SyncState = "revoked"
	SyncKeyReset    SyncState = "key reset"
	SyncReleased    SyncState = "released"
	SyncApplyFailed SyncState = "apply failed" // the config came but could not be applied
	SyncSaveFailed  SyncState = "save failed"  // applied, but the state file could not be written
	SyncStatic      SyncState = "static"       // no controller: the state file's config
)

// SyncStatus is the controller sync as the edge sees it.
type SyncStatus struct {
	Mode        string    `json:"mode"` // "controller" or "static"
	State       SyncState `json:"state"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	Generation  uint64    `json:"generation"`
	// UnreachableSince is when the controller stopped answering (every
	// URL of it); zero while it answers. The tunnel keeps its last
	// configuration meanwhile.
	UnreachableSince time.Time `json:"unreachable_since,omitzero"`
	// SavedGeneration is the generation the state file holds; behind
	// Generation (state "save failed") when it could not be written.
	SavedGeneration uint64 `json:"saved_generation"`
}

// attempts records handshake initiations per peer, fed by wireguard-go's
// log (the only place it reports them).
type attempts struct {
	mu    sync.Mutex
	now   func() time.Time
	first map[string]time.Time // first attempt since the last completed handshake
	last  map[string]time.Time
}

func newAttempts(now func() time.Time) *attempts {
	return &attempts{now: now, first: map[string]time.Time{}, last: map[string]time.Time{}}
}

// record notes an initiation to the peer named by wireguard-go's short form.
func (a *attempts) record(short string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t := a.now()
	if _, ok := a.first[short]; !ok {
		a.first[short] = t
	}
	a.last[short] = t
}

// get returns the attempts for a peer, forgetting those a completed
// handshake has answered.
func (a *attempts) get(k api.Key, lastHandshake time.Time) (first, last time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := shortKey(k)
	first, last = a.first[s], a.last[s]
	if !first.IsZero() && !lastHandshake.IsZero() && !lastHandshake.Before(first) {
		delete(a.first, s)
		first = time.Time{}
	}
	return first, last
}

// shortKey is how wireguard-go's Peer.String names a peer: peer(abcd…wxyz).
func shortKey(k api.Key) string {
	s := k.String()
	return "peer(" + s[:4] + "…" + s[39:43] + ")"
}

// peerStatus builds a PeerStatus from what UAPI reports and the recorded
// attempts. It is a pure function of its inputs.
func peerStatus(now time.Time, name string, p uapiPeer, firstPending, lastAttempt time.Time) PeerStatus {
	ps := PeerStatus{
		Name: name, PublicKey: p.PublicKey, Endpoint: p.Endpoint, AllowedIPs: normalize(p.AllowedIPs),
		LastHandshake: p.LastHandshake, LastAttempt: lastAttempt, RxBytes: p.RxBytes, TxBytes: p.TxBytes,
	}
	if !firstPending.IsZero() && now.Sub(firstPending) > handshakeGrace {
		hs := "no handshake yet"
		if !p.LastHandshake.IsZero() {
			hs = fmt.Sprintf("last handshake %s ago", ago(now, p.LastHandshake))
		}
		ep := p.Endpoint
		if ep == "" {
			ep = "no endpoint"
		}
		ps.Problem = fmt.Sprintf("%s with peer %s (%s): last attempt %s ago, %s",
			StateHandshakeNotCompleting, p.PublicKey, ep, ago(now, lastAttempt), hs)
	}
	return ps
}

// sessionFresh is how long after a handshake a session is still usable
// (WireGuard's RejectAfterTime).
const sessionFresh = 180 * time.Second

// edgeState derives the edge's tunnel state from its hub peer.
func edgeState(now time.Time, hub PeerStatus) (state, reason string) {
	switch {
	case hub.Problem != "":
		return StateHandshakeNotCompleting, hub.Problem
	case !hub.LastHandshake.IsZero() && now.Sub(hub.LastHandshake) < sessionFresh:
		return StateUp, ""
	default:
		return StateConnecting, "waiting for the first handshake with the hub"
	}
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	if d < 0 {
		d = 0
	}
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
