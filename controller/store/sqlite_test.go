package store

import (
	"context"
	"database/sql"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var equate = cmpopts.EquateComparable(netip.Prefix{}, netip.Addr{})

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
