// Package store persists the controller's records: instances and their
// device slots, Cloud Connect Networks, device credentials (hashed), a few
// settings, and the audit log. SQLite (modernc.org/sqlite, no cgo) is the
// embedded implementation; the controller uses it through a small interface
// it defines itself, so another database (PostgreSQL) can back it later.
//
// It must not make decisions: validation, slot and prefix rules live in the
// controller. The one rule enforced here too is the slot binding (an SN is
// bound to at most one WireGuard key), as a conditional update, so that it
// holds even if two controllers ever share a database.
package store

import (
	"errors"
	"net/netip"
	"time"

	"github.com/openvcpe/vcpe/api"
)

// Device status values.
const (
	StatusUnregistered = "unregistered" // slot issued (or key reset), no WireGuard key bound
	StatusRegistered   = "registered"
	StatusRevoked      = "revoked"
)

// Credential states.
const (
	CredValid    = "valid"
	CredRevoked  = "revoked"
	CredKeyReset = "key_reset"
	CredReleased = "released"
)

// ErrConflict is returned by BindDevice when the SN is bound to another
// WireGuard key or is revoked.
var ErrConflict = errors.New("device slot is bound to another key")

// ErrNotFound is returned when a record to change does not exist.
var ErrNotFound = errors.New("not found")

// Instance is one vCPE instance: a set of device slots sharing advertised
// prefixes.
type Instance struct {
	ID         string
	Name       string
	Slots      int
	RouteQuota int
	CCN        string // CCN ID, empty when attached to none
	Advertised []netip.Prefix
	CreatedAt  time.Time
}

// Device is one device slot of an instance.
type Device struct {
	SN         string
	InstanceID string
	Slot       int
	// Secret is api.DeviceKeySecret of the device key; the key itself is
	// never stored.
	Secret    []byte
	Overlay   netip.Addr
	PublicKey api.Key // zero while unregistered
	Status    string
	// ProbeAddrs are the device's own addresses inside its instance's
	// advertised prefixes where its probe reflector answers (a diagnostics
	// hint, set at registration and with the advertised routes).
	ProbeAddrs []netip.Addr
	// LANGateway is the shared LAN gateway (multi-attach) the device
	// registered with; invalid when none.
	LANGateway    netip.Prefix
	RegisteredSeq uint64 // order of first registration with this key; 0 when unregistered
	RegisteredAt  time.Time
	CreatedAt     time.Time
}

// Credential is a device bearer credential, by its SHA-256 hash.
type Credential struct {
	Hash      []byte
	SN        string
	State     string
	CreatedAt time.Time
}

// CCN is a Cloud Connect Network.
type CCN struct {
	ID        string
	Name      string
	CreatedAt time.Time
}

// AuditEntry is one admin action or registration attempt. It never holds a
// key or credential.
type AuditEntry struct {
	At     time.Time
	Who    string
	Action string
	Target string
	Result string
	Detail string
}

// Snapshot is every record, as loaded at start.
type Snapshot struct {
	Instances   []Instance
	Devices     []Device
	CCNs        []CCN
	Credentials []Credential
	Meta        map[string]string
}
