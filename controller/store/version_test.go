package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"flag"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var writeFixture = flag.Bool("write-fixture", false, "rewrite testdata/schema1.db from testdata/schema1.sql")

// schema1 is a store written by the first release (schema version 1,
// user_version 0), with an instance, a CCN, a registered device and its
// credential, and an audit entry.
const schema1DB = "testdata/schema1.db"

func TestWriteSchema1Fixture(t *testing.T) {
	if !*writeFixture {
		t.Skip("run with -write-fixture to rewrite " + schema1DB)
	}
	script, err := os.ReadFile("testdata/schema1.sql")
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(schema1DB)
	db, err := sql.Open("sqlite", "file:"+schema1DB+"?_pragma=journal_mode(DELETE)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(string(script)); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func userVersion(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestPreviousSchemaOpensAndMigrates opens a copy of a store the previous
// release wrote: its records load, it gains the new column and the current
// schema version, and it keeps working.
func TestPreviousSchemaOpensAndMigrates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "controller.db")
	copyFile(t, schema1DB, path)
	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatalf("open the previous schema: %v", err)
	}
	ctx := context.Background()
	snap, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Instances) != 1 || snap.Instances[0].Name != "shop1" || snap.Instances[0].CCN != "ccn-1" ||
		len(snap.Devices) != 2 || len(snap.CCNs) != 1 || len(snap.Credentials) != 1 {
		t.Fatalf("records of the previous schema: %+v", snap)
	}
	var reg *Device
	for i := range snap.Devices {
		if snap.Devices[i].Status == StatusRegistered {
			reg = &snap.Devices[i]
		}
	}
	if reg == nil || reg.SN != "SN1" || reg.PublicKey.IsZero() || reg.RegisteredSeq != 1 {
		t.Fatalf("registered device after migration: %+v", reg)
	}
	probe := []netip.Addr{netip.MustParseAddr("198.19.1.1")}
	if err := s.UpdateAdvertised(ctx, snap.Instances[0], reg.SN, probe); err != nil {
		t.Fatalf("write the migrated column: %v", err)
	}
	s.Close()
	if v := userVersion(t, path); v != SchemaVersion {
		t.Errorf("schema version after migration = %d; want %d", v, SchemaVersion)
	}
	s, err = OpenSQLite(path)
	if err != nil {
		t.Fatalf("reopen the migrated store: %v", err)
	}
	defer s.Close()
	if snap, err = s.Load(ctx); err != nil {
		t.Fatal(err)
	}
	for _, d := range snap.Devices {
		if d.SN == "SN1" && (len(d.ProbeAddrs) != 1 || d.ProbeAddrs[0] != probe[0]) {
			t.Errorf("probe addrs after reopen: %v", d.ProbeAddrs)
		}
	}
}

// TestNewerSchemaIsRefusedAndLeftAlone opens a store a newer vcpe-hub
// wrote: the open fails with a clear error and the file is unchanged.
func TestNewerSchemaIsRefusedAndLeftAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "controller.db")
	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Exec(`PRAGMA user_version = 99; CREATE TABLE from_the_future (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	sum := func() [32]byte {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return sha256.Sum256(b)
	}
	before := sum()
	s, err = OpenSQLite(path)
	if err == nil {
		s.Close()
		t.Fatal("a store with schema version 99 opened; want it refused")
	}
	if !errors.Is(err, ErrNewerSchema) || !strings.Contains(err.Error(), "99") || !strings.Contains(err.Error(), "restore") {
		t.Errorf("err = %v; want ErrNewerSchema naming the version and the way back", err)
	}
	if sum() != before {
		t.Error("the refused store was modified")
	}
	if v := userVersion(t, path); v != 99 {
		t.Errorf("schema version after the refusal = %d; want 99", v)
	}
}
