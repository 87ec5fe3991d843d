// Package store persists the controller's records: instances and their
// device slots, Cloud Connect Networks, device credentials (hashed),
// registration challenges, a few settings, and the audit log. Two engines
// keep one contract, with the SQL written once (db.go rewrites
// placeholders): SQLite (modernc.org/sqlite, no cgo, embedded, the default)
// for one controller process, and PostgreSQL (github.com/jackc/pgx/v5) for
// any number of controller replicas sharing one database. The schema is
// versioned (migrate.go) and migrated on open, from any earlier version,
// in one transaction; PostgreSQL replicas starting together migrate once
// under an advisory lock.
//
// It must not make decisions: validation, slot and prefix rules live in the
// controller. What it guarantees so that those decisions hold across
// replicas:
//
//   - Every change of instances, devices, credentials, CCNs and settings
//     takes the next revision (one row, locked until commit, so revisions
//     become visible in order) and, on PostgreSQL, is announced with
//     NOTIFY. Changes(rev) returns what changed since; a replica's cache
//     catches up with it.
//   - Lock is a cluster-wide write lock (a session-level PostgreSQL
//     advisory lock on a connection of its own; released when the holder
//     dies). The controller takes it around every decision and reads the
//     changes since its revision first, so slot binding, prefix ownership
//     and conflicts, key resets and revocations are decided on the latest
//     state by one replica at a time.
//   - Constraints back the most important rules whatever the caller does:
//     an SN is bound to at most one WireGuard key (a conditional update),
//     a WireGuard key to at most one SN (unique index), a slot holds one
//     device (unique index), an overlay address one device (unique).
//   - A registration challenge is consumed by DELETE … RETURNING, so it is
//     single-use across replicas.
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
	// Hubs are the names of the hubs the instance's devices are assigned
	// to, primary first (hub groups); empty until the controller assigns
	// them.
	Hubs      []string
	CreatedAt time.Time
}

// Hub is a registered hub of the hub group: a vcpe-hub serve --role hub
// process with its own WireGuard key, named by its hub credential.
type Hub struct {
	Name      string
	PublicKey api.Key
	Endpoint  netip.AddrPort // where devices and other hubs dial it
	// Overlay is the hub's tunnel address, allocated by the controller
	// from the overlay pool (never a device's).
	Overlay      netip.Addr
	RegisteredAt time.Time
	// LastSeen is when it last registered or fetched its configuration
	// (recorded at most about once a minute).
	LastSeen time.Time
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

// Snapshot is every record (Load), or what changed after a revision
// (Changes).
type Snapshot struct {
	Instances   []Instance
	Devices     []Device
	CCNs        []CCN
	Credentials []Credential
	Hubs        []Hub
	Meta        map[string]string
	// Rev is the revision the snapshot was read at (see Changes).
	Rev uint64
	// Full is true for Load, false for Changes.
	Full bool
	// Deleted are instances deleted since the revision asked for
	// (Changes only).
	Deleted []string
	// DeletedHubs are hubs removed from the registry since the revision
	// asked for (Changes only).
	DeletedHubs []string
}
