package store

import (
	"context"
	"database/sql"
	"errors"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/openvcpe/vcpe/api"
)

var equate = cmpopts.EquateComparable(netip.Prefix{}, netip.Addr{})

func open(t *testing.T) (*SQLite, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.db")
	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func key(b byte) api.Key { var k api.Key; k[0] = b; k[31] = 1; return k }

var at = time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)

func fixture() (Instance, []Device) {
	in := Instance{ID: "i-1", Name: "shop1", Slots: 2, RouteQuota: 5, CreatedAt: at}
	return in, []Device{
		{SN: "SN1", InstanceID: "i-1", Slot: 0, Secret: []byte("s1"), Overlay: netip.MustParseAddr("198.18.64.2"), Status: StatusUnregistered, CreatedAt: at},
		{SN: "SN2", InstanceID: "i-1", Slot: 1, Secret: []byte("s2"), Overlay: netip.MustParseAddr("198.18.64.3"), Status: StatusUnregistered, CreatedAt: at},
	}
}

func TestRoundTripAcrossReopen(t *testing.T) {
	s, path := open(t)
	ctx := context.Background()
	if err := s.CreateCCN(ctx, CCN{ID: "ccn-1", Name: "corp", CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	in, devs := fixture()
	if err := s.CreateInstance(ctx, in, devs); err != nil {
		t.Fatal(err)
	}
	in.CCN = "ccn-1"
	in.Advertised = []netip.Prefix{netip.MustParsePrefix("198.19.1.0/24")}
	d := devs[0]
	d.PublicKey, d.Status, d.RegisteredSeq, d.RegisteredAt = key(1), StatusRegistered, 1, at
	d.ProbeAddrs = []netip.Addr{netip.MustParseAddr("198.19.1.1")}
	cred := Credential{Hash: make([]byte, 32), SN: "SN1", State: CredValid, CreatedAt: at}
	if err := s.BindDevice(ctx, d, cred, in); err != nil {
		t.Fatal(err)
	}
	// New routes with new probe addresses, in one transaction.
	in.Advertised = append(in.Advertised, netip.MustParsePrefix("198.19.3.0/24"))
	d.ProbeAddrs = []netip.Addr{netip.MustParseAddr("198.19.1.1"), netip.MustParseAddr("198.19.3.1")}
	if err := s.UpdateAdvertised(ctx, in, d.SN, d.ProbeAddrs); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateAdvertised(ctx, in, "SN-NONE", nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("UpdateAdvertised of an unknown device: %v; want ErrNotFound", err)
	}
	if err := s.SetMeta(ctx, "generation", "7"); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s2, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	snap, err := s2.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := &Snapshot{
		Instances:   []Instance{in},
		Devices:     []Device{d, devs[1]},
		CCNs:        []CCN{{ID: "ccn-1", Name: "corp", CreatedAt: at}},
		Credentials: []Credential{cred},
		Meta:        map[string]string{"generation": "7"},
	}
	if diff := cmp.Diff(want, snap, equate); diff != "" {
		t.Errorf("reloaded snapshot (-want +got):\n%s", diff)
	}
}

// oldSchema is the devices table before probe_addrs (the first release).
const oldSchema = `
CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE ccns (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL);
CREATE TABLE instances (
	id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, slots INTEGER NOT NULL,
	route_quota INTEGER NOT NULL, ccn_id TEXT REFERENCES ccns(id),
	advertised TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL);
CREATE TABLE devices (
	sn TEXT PRIMARY KEY,
	instance_id TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
	slot INTEGER NOT NULL, secret BLOB NOT NULL, overlay TEXT NOT NULL UNIQUE,
	public_key TEXT, status TEXT NOT NULL, registered_seq INTEGER NOT NULL DEFAULT 0,
	registered_at INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL);
INSERT INTO instances VALUES ('i-1', 'shop1', 2, 5, NULL, '198.19.1.0/24', 1);
INSERT INTO devices VALUES ('SN1', 'i-1', 0, x'7331', '198.18.64.2', NULL, 'unregistered', 0, 0, 1);
`

func TestOpenMigratesAnOldDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(oldSchema); err != nil {
		t.Fatal(err)
	}
	db.Close()

	ctx := context.Background()
	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatalf("open an old-schema database: %v", err)
	}
	snap, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Devices) != 1 || snap.Devices[0].SN != "SN1" || snap.Devices[0].ProbeAddrs != nil || len(snap.Instances) != 1 {
		t.Fatalf("old rows after migration: %+v", snap)
	}
	d := snap.Devices[0]
	d.ProbeAddrs = []netip.Addr{netip.MustParseAddr("198.19.1.1")}
	if err := s.UpdateAdvertised(ctx, snap.Instances[0], d.SN, d.ProbeAddrs); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// A second open finds the column and leaves it alone.
	s, err = OpenSQLite(path)
	if err != nil {
		t.Fatalf("open the migrated database again: %v", err)
	}
	defer s.Close()
	snap, err = s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(d.ProbeAddrs, snap.Devices[0].ProbeAddrs, equate); diff != "" {
		t.Errorf("probe addresses after reopen (-want +got):\n%s", diff)
	}
}

func TestBindDeviceEnforcesTheSlot(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	in, devs := fixture()
	if err := s.CreateInstance(ctx, in, devs); err != nil {
		t.Fatal(err)
	}
	bind := func(sn string, k api.Key, h byte) error {
		d := devs[0]
		if sn == "SN2" {
			d = devs[1]
		}
		d.PublicKey = k
		return s.BindDevice(ctx, d, Credential{Hash: []byte{h}, SN: sn, State: CredValid}, in)
	}
	if err := bind("SN1", key(1), 1); err != nil {
		t.Fatal(err)
	}
	if err := bind("SN1", key(1), 2); err != nil {
		t.Errorf("same key again: %v", err)
	}
	if err := bind("SN1", key(2), 3); !errors.Is(err, ErrConflict) {
		t.Errorf("other key: %v; want ErrConflict", err)
	}
	if err := bind("SN2", key(1), 4); err == nil {
		t.Error("a second SN took the same WireGuard key")
	}
	// Re-registering replaced the valid credential.
	snap, _ := s.Load(ctx)
	if len(snap.Credentials) != 1 || snap.Credentials[0].Hash[0] != 2 {
		t.Errorf("credentials %+v; want only the latest", snap.Credentials)
	}
	// Revoked: no binding, credentials marked.
	d := devs[0]
	d.PublicKey, d.Status = key(1), StatusRevoked
	if err := s.UpdateDevice(ctx, d, CredRevoked); err != nil {
		t.Fatal(err)
	}
	if err := bind("SN1", key(1), 5); !errors.Is(err, ErrConflict) {
		t.Errorf("revoked device bound: %v", err)
	}
	snap, _ = s.Load(ctx)
	if snap.Credentials[0].State != CredRevoked {
		t.Errorf("credential state %s; want revoked", snap.Credentials[0].State)
	}
	// Deleting the instance takes its devices and credentials.
	if err := s.DeleteInstance(ctx, "i-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteInstance(ctx, "i-1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete: %v; want ErrNotFound", err)
	}
	snap, _ = s.Load(ctx)
	if len(snap.Devices)+len(snap.Credentials)+len(snap.Instances) != 0 {
		t.Errorf("left after delete: %+v", snap)
	}
}

func TestAudit(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	for i, a := range []string{"instance.create", "device.register", "device.revoke"} {
		if err := s.AppendAudit(ctx, AuditEntry{At: at.Add(time.Duration(i)), Who: "admin:uid=0", Action: a, Target: "x", Result: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Audit(ctx, 2)
	if err != nil || len(got) != 2 || got[0].Action != "device.register" || got[1].Action != "device.revoke" {
		t.Fatalf("last 2 audit entries: %+v, %v", got, err)
	}
}
