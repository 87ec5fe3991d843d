// Package api holds the wire types shared by the controller (vcpe-hub), the
// device side (vcpe, vcped) and the hub dataplane: what a registered device
// is told, what the hub must peer with, and the error document every API
// call returns. It has no behaviour beyond encoding; both ends import it so
// they cannot drift apart.
//
// Device calls after registration authenticate with the device credential:
//
//	GET  /v1/device/config   Authorization: Bearer CRED  → DeviceConfig
//	POST /v1/device/routes   Authorization: Bearer CRED  {"advertise": [...], "probe_addrs": [...]} → DeviceConfig
//	POST /v1/device/release  Authorization: Bearer CRED  → ReleaseResponse (the slot is free again)
//	POST /v1/device/release  ReleaseRequest (no credential: a WireGuard key proof) → ReleaseResponse
//	GET  /v1/hubs            (no credential) → HubEndpoints
//
// A credential that is no longer valid (device revoked, key reset) answers
// 401 with an Error whose Code says which (CodeRevoked, CodeKeyReset,
// CodeUnauthorized).
package api

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/netip"

	"golang.org/x/crypto/curve25519"
)

// KeyLen is the length of a WireGuard (Curve25519) key.
const KeyLen = 32

// Key is a WireGuard key. In JSON and text it is standard base64, as wg(8)
// prints it.
type Key [KeyLen]byte

// GeneratePrivateKey returns a new clamped Curve25519 private key.
func GeneratePrivateKey() (Key, error) {
	var k Key
	if _, err := rand.Read(k[:]); err != nil {
		return Key{}, fmt.Errorf("generate private key: %w", err)
	}
	k[0] &= 248
	k[31] = (k[31] & 127) | 64
	return k, nil
}

// PublicKey derives the public key of a private key.
func (k Key) PublicKey() Key {
	var pub Key
	curve25519.ScalarBaseMult((*[32]byte)(&pub), (*[32]byte)(&k))
	return pub
}

// IsZero reports whether the key is unset.
func (k Key) IsZero() bool { return k == Key{} }

// String returns the base64 form.
func (k Key) String() string { return base64.StdEncoding.EncodeToString(k[:]) }

// MarshalText implements encoding.TextMarshaler.
func (k Key) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *Key) UnmarshalText(b []byte) error {
	p, err := ParseKey(string(b))
	if err != nil {
		return err
	}
	*k = p
	return nil
}

// ParseKey parses a base64 WireGuard key.
func ParseKey(s string) (Key, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != KeyLen {
		return Key{}, fmt.Errorf("invalid WireGuard key %q: want %d bytes of standard base64", truncate(s), KeyLen)
	}
	return Key(b), nil
}

func truncate(s string) string {
	if len(s) > 12 {
		return s[:12] + "…"
	}
	return s
}

// Roles of a device within its instance (multi-attach).
const (
	RoleActive  = "active"
	RoleStandby = "standby"
)

// DeviceConfig is everything a registered device needs to bring its tunnel
// up. The controller returns it at registration and on every config sync;
// the device keeps the last one it received in its state file and applies
// only the difference when Generation changes.
type DeviceConfig struct {
	// Generation increases whenever anything below changes for this device.
	Generation uint64 `json:"generation"`

	SN           string `json:"sn"`
	InstanceID   string `json:"instance_id"`
	InstanceName string `json:"instance_name"`
	CCN          string `json:"ccn,omitempty"` // empty while the instance is in no CCN

	// OverlayAddr is the device's tunnel address with the overlay pool's
	// length (for example 198.18.64.2/18), so the whole overlay is on-link
	// through the tunnel.
	OverlayAddr    netip.Prefix   `json:"overlay_addr"`
	HubOverlayAddr netip.Addr     `json:"hub_overlay_addr"`
	HubPublicKey   Key            `json:"hub_public_key"`
	HubEndpoint    netip.AddrPort `json:"hub_endpoint"`

	// Routes are the prefixes the device must send into the tunnel: the
	// other CCN members' LAN prefixes and the cloud-side prefixes. The
	// overlay itself is covered by OverlayAddr.
	Routes []netip.Prefix `json:"routes"`

	// Targets name, for entries of Routes, one address that answers the
	// probe reflector (UDP 12345) inside that prefix: the ProbeAddr of the
	// active device of the instance advertising it, or the hub's own
	// address in a cloud-side prefix. A route without a known answering
	// address has no target. vcpe diag probes them by default.
	Targets []ProbeTarget `json:"targets,omitempty"`

	// Advertised are the LAN prefixes this device's instance advertises.
	Advertised []netip.Prefix `json:"advertised"`

	// Role is RoleActive or RoleStandby.
	Role string `json:"role"`

	// PersistentKeepalive in seconds; 0 lets the device choose.
	PersistentKeepalive int `json:"persistent_keepalive,omitempty"`

	// Slots is how many devices the instance may have (more than one:
	// multi-attach); 0 from a controller that does not say.
	Slots int `json:"slots,omitempty"`
	// Peers are the instance's other registered devices, so that a second
	// device can take the same multi-attach settings as the first.
	Peers []InstancePeer `json:"peers,omitempty"`

	// Hubs is the device's hub group, primary first, then the secondary
	// (the controller's assignment for the instance). The device keeps a
	// WireGuard session to every hub listed and carries its traffic
	// through one of them. HubPublicKey, HubEndpoint and HubOverlayAddr
	// above always repeat Hubs[0] (the primary), so a device that knows
	// nothing of hub groups keeps working with the primary alone. Empty
	// from a controller without hub groups: the fields above are the one
	// hub.
	Hubs []HubInfo `json:"hubs,omitempty"`
	// Failback gives the traffic back to the primary hub once it has been
	// healthy again for a while; false (the default) keeps it on the hub
	// that carries it until that one fails, so a flapping hub cannot
	// flap the sites.
	Failback bool `json:"failback,omitempty"`
}

// HubInfo is one hub of a hub group: what a device or another hub needs to
// peer with it.
type HubInfo struct {
	// Name is the hub's name: the name of its hub credential, or the
	// controller's --hub-name for the hub it runs itself (--role all).
	Name        string         `json:"name"`
	PublicKey   Key            `json:"public_key"`
	Endpoint    netip.AddrPort `json:"endpoint"`
	OverlayAddr netip.Addr     `json:"overlay_addr"`
}

// InstancePeer is another registered device of the same instance.
type InstancePeer struct {
	SN     string `json:"sn"`
	Active bool   `json:"active"`
	// LANGateway is the shared LAN gateway it registered with (invalid
	// when it gave none).
	LANGateway netip.Prefix `json:"lan_gateway,omitzero"`
}

// ProbeTarget is an address inside a learned prefix that answers the probe
// reflector.
type ProbeTarget struct {
	Prefix netip.Prefix `json:"prefix"`
	Addr   netip.Addr   `json:"addr"`
	// SN is the device that holds Addr when it is the device's own; the
	// controller never names another instance's devices (Remote says the
	// address is a remote site's, not the hub's).
	SN     string `json:"sn,omitempty"`
	Remote bool   `json:"remote,omitempty"`
}

// HubPeer is one registered device as the hub dataplane sees it.
type HubPeer struct {
	SN          string     `json:"sn"`
	InstanceID  string     `json:"instance_id"`
	CCN         string     `json:"ccn,omitempty"`
	PublicKey   Key        `json:"public_key"`
	OverlayAddr netip.Addr `json:"overlay_addr"`
	// AllowedIPs are the device's overlay /32 plus, when the device is the
	// active one of its instance, the instance's advertised prefixes.
	AllowedIPs []netip.Prefix `json:"allowed_ips"`
	Active     bool           `json:"active"`
	// Hubs are the names of the hubs this device is assigned to, primary
	// first (the instance's assignment). A hub peers only with devices
	// that name it; it knows the others (for routing through the hub that
	// carries them, and for CCN isolation) without peering. Empty from a
	// controller without hub groups: every hub peers with the device.
	Hubs []string `json:"hubs,omitempty"`
}

// HubConfig is the hub dataplane's whole desired state. The controller
// publishes a new one on every change; the hub applies the difference.
// Peers holds every device of the hub group, not only the hub's own.
type HubConfig struct {
	Generation     uint64         `json:"generation"`
	Overlay        netip.Prefix   `json:"overlay"`
	HubOverlayAddr netip.Addr     `json:"hub_overlay_addr"`
	CloudPrefixes  []netip.Prefix `json:"cloud_prefixes"`
	Peers          []HubPeer      `json:"peers"`
	// Name is this hub's name in the group (empty: no hub groups).
	Name string `json:"name,omitempty"`
	// Hubs are the other hubs of the group, which this hub keeps
	// hub-to-hub WireGuard sessions with, so traffic for a device that
	// another hub carries crosses one encrypted hop per segment.
	Hubs []HubInfo `json:"hubs,omitempty"`
	// Failback as in DeviceConfig: the group's setting.
	Failback bool `json:"failback,omitempty"`
}

// HubEndpoints answers GET /v1/hubs, which needs no credential: the UDP
// endpoints devices dial, one per hub of the group (or the one hub). vcpe
// install's precheck probes them before the device registers, so a host
// is checked against the hubs it will use, not against the controller's
// host, which may run no hub.
type HubEndpoints struct {
	Endpoints []netip.AddrPort `json:"endpoints"`
}

// HubRegister is a hub process's announcement of itself to the controller
// (POST /v1/hub/register, hub credential): its own WireGuard public key
// and the endpoint devices dial. The hub's name is its credential's name.
// The answer is the HubInfo the controller recorded, overlay address
// included.
type HubRegister struct {
	PublicKey Key            `json:"public_key"`
	Endpoint  netip.AddrPort `json:"endpoint"`
}

// HubActive is a hub's report that its arbiter made SN the active device
// of an instance (POST /v1/hub/active).
type HubActive struct {
	InstanceID string `json:"instance_id"`
	SN         string `json:"sn"`
	Reason     string `json:"reason"`
}

// HubIdentity is what a hub process needs from the controller to end the
// devices' tunnels: the hub's WireGuard private key (GET /v1/hub/identity,
// hub credential only).
type HubIdentity struct {
	PrivateKey Key `json:"private_key"`
}

// Error codes carried in Error.Code. Scripts may match on them.
const (
	CodeInvalidInput   = "invalid_input"   // 400/422: a field is wrong; Field names it
	CodeUnauthorized   = "unauthorized"    // 401: wrong SN/key or credential
	CodeRevoked        = "revoked"         // 401: the device was revoked
	CodeKeyReset       = "key_reset"       // 401: the device key was reset; register again
	CodeReleased       = "released"        // 401: the device gave its registration back; register again
	CodeRateLimited    = "rate_limited"    // 429: back off for RetryAfter seconds
	CodeSlotTaken      = "slot_taken"      // 409: the SN is bound to another WireGuard key, or no slot is free
	CodePrefixConflict = "prefix_conflict" // 409: overlap with another prefix; Field names it
	CodeQuota          = "quota_exceeded"  // 409: more prefixes than allowed
	CodeNotFound       = "not_found"       // 404
	CodeInternal       = "internal"        // 500
	// CodeUnavailable means the controller cannot serve the request for now
	// (its store is full, read-only or locked): retry after RetryAfter
	// seconds; nothing was refused.
	CodeUnavailable = "unavailable" // 503
)

// Error is the JSON body of every non-2xx API answer.
type Error struct {
	Code       string `json:"code"`
	Message    string `json:"message"`
	Field      string `json:"field,omitempty"`
	Fix        string `json:"fix,omitempty"`
	RetryAfter int    `json:"retry_after,omitempty"`
}

func (e *Error) Error() string {
	s := e.Message
	if e.Fix != "" {
		s += "; " + e.Fix
	}
	return s
}
