package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// migration is one versioned step of the schema, written for each engine.
// Versions only ever grow; a released step is never edited, only followed
// by a new one.
type migration struct {
	version  int
	name     string
	sqlite   []string
	postgres []string
}

// migrations take a database from any earlier schema to the current one.
// Version 1 is the first release, version 2 added probe addresses and
// version 3 LAN gateways (all made before schema versions were recorded:
// see legacyVersion); version 4 made replicas possible and version 5 added
// hub groups. Version 1
// only creates what is missing, so it also completes a database of the
// first release that lacks a table.
var migrations = []migration{
	{1, "first schema", []string{
		`CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS ccns (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS instances (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, slots INTEGER NOT NULL,
			route_quota INTEGER NOT NULL, ccn_id TEXT REFERENCES ccns(id),
			advertised TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS devices (sn TEXT PRIMARY KEY,
			instance_id TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
			slot INTEGER NOT NULL, secret BLOB NOT NULL, overlay TEXT NOT NULL UNIQUE,
			public_key TEXT, status TEXT NOT NULL, registered_seq INTEGER NOT NULL DEFAULT 0,
			registered_at INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL)`,
		`CREATE UNIQUE INDEX IF NOT EXISTS devices_public_key ON devices(public_key) WHERE public_key IS NOT NULL`,
		`CREATE TABLE IF NOT EXISTS credentials (hash BLOB PRIMARY KEY,
			sn TEXT NOT NULL REFERENCES devices(sn) ON DELETE CASCADE,
			state TEXT NOT NULL, created_at INTEGER NOT NULL)`,
		`CREATE INDEX IF NOT EXISTS credentials_sn ON credentials(sn)`,
		`CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, who TEXT NOT NULL,
			action TEXT NOT NULL, target TEXT NOT NULL, result TEXT NOT NULL, detail TEXT NOT NULL)`,
	}, []string{
		`CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS ccns (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at BIGINT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS instances (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, slots INTEGER NOT NULL,
			route_quota INTEGER NOT NULL, ccn_id TEXT REFERENCES ccns(id),
			advertised TEXT NOT NULL DEFAULT '', created_at BIGINT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS devices (sn TEXT PRIMARY KEY,
			instance_id TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
			slot INTEGER NOT NULL, secret BYTEA NOT NULL, overlay TEXT NOT NULL UNIQUE,
			public_key TEXT, status TEXT NOT NULL, registered_seq BIGINT NOT NULL DEFAULT 0,
			registered_at BIGINT NOT NULL DEFAULT 0, created_at BIGINT NOT NULL)`,
		`CREATE UNIQUE INDEX IF NOT EXISTS devices_public_key ON devices(public_key) WHERE public_key IS NOT NULL`,
		`CREATE TABLE IF NOT EXISTS credentials (hash BYTEA PRIMARY KEY,
			sn TEXT NOT NULL REFERENCES devices(sn) ON DELETE CASCADE,
			state TEXT NOT NULL, created_at BIGINT NOT NULL)`,
		`CREATE INDEX IF NOT EXISTS credentials_sn ON credentials(sn)`,
		`CREATE TABLE IF NOT EXISTS audit (id BIGSERIAL PRIMARY KEY, at BIGINT NOT NULL, who TEXT NOT NULL,
			action TEXT NOT NULL, target TEXT NOT NULL, result TEXT NOT NULL, detail TEXT NOT NULL)`,
	}},
	{2, "probe addresses", []string{
		`ALTER TABLE devices ADD COLUMN probe_addrs TEXT NOT NULL DEFAULT ''`,
	}, []string{
		`ALTER TABLE devices ADD COLUMN probe_addrs TEXT NOT NULL DEFAULT ''`,
	}},
	{3, "LAN gateway of multi-attach devices", []string{
		`ALTER TABLE devices ADD COLUMN lan_gateway TEXT NOT NULL DEFAULT ''`,
	}, []string{
		`ALTER TABLE devices ADD COLUMN lan_gateway TEXT NOT NULL DEFAULT ''`,
	}},
	{4, "replicas: revisions, tombstones, shared registration nonces, one device per slot", []string{
		`CREATE TABLE revision (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL)`,
		`INSERT INTO revision (id, n) VALUES (1, 1)`,
		`ALTER TABLE meta ADD COLUMN rev INTEGER NOT NULL DEFAULT 0`,
		`ALTER TABLE ccns ADD COLUMN rev INTEGER NOT NULL DEFAULT 0`,
		`ALTER TABLE instances ADD COLUMN rev INTEGER NOT NULL DEFAULT 0`,
		`CREATE INDEX instances_rev ON instances(rev)`,
		`CREATE TABLE tombstones (rev INTEGER NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL)`,
		`CREATE INDEX tombstones_rev ON tombstones(rev)`,
		`CREATE TABLE nonces (nonce TEXT PRIMARY KEY, sn TEXT NOT NULL, expires INTEGER NOT NULL)`,
		`CREATE INDEX nonces_expires ON nonces(expires)`,
		`CREATE UNIQUE INDEX devices_slot ON devices(instance_id, slot)`,
	}, []string{
		`CREATE TABLE revision (id INTEGER PRIMARY KEY CHECK (id = 1), n BIGINT NOT NULL)`,
		`INSERT INTO revision (id, n) VALUES (1, 1)`,
		`ALTER TABLE meta ADD COLUMN rev BIGINT NOT NULL DEFAULT 0`,
		`ALTER TABLE ccns ADD COLUMN rev BIGINT NOT NULL DEFAULT 0`,
		`ALTER TABLE instances ADD COLUMN rev BIGINT NOT NULL DEFAULT 0`,
		`CREATE INDEX instances_rev ON instances(rev)`,
		`CREATE TABLE tombstones (rev BIGINT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL)`,
		`CREATE INDEX tombstones_rev ON tombstones(rev)`,
		`CREATE TABLE nonces (nonce TEXT PRIMARY KEY, sn TEXT NOT NULL, expires BIGINT NOT NULL)`,
		`CREATE INDEX nonces_expires ON nonces(expires)`,
		`CREATE UNIQUE INDEX devices_slot ON devices(instance_id, slot)`,
	}},
	{5, "hub groups: the hub registry and each instance's hub assignment", []string{
		`CREATE TABLE hubs (name TEXT PRIMARY KEY, public_key TEXT NOT NULL UNIQUE, endpoint TEXT NOT NULL,
			overlay TEXT NOT NULL UNIQUE, registered_at INTEGER NOT NULL, last_seen INTEGER NOT NULL DEFAULT 0,
			rev INTEGER NOT NULL DEFAULT 0)`,
		`CREATE INDEX hubs_rev ON hubs(rev)`,
		`ALTER TABLE instances ADD COLUMN hubs TEXT NOT NULL DEFAULT ''`,
	}, []string{
		`CREATE TABLE hubs (name TEXT PRIMARY KEY, public_key TEXT NOT NULL UNIQUE, endpoint TEXT NOT NULL,
			overlay TEXT NOT NULL UNIQUE, registered_at BIGINT NOT NULL, last_seen BIGINT NOT NULL DEFAULT 0,
			rev BIGINT NOT NULL DEFAULT 0)`,
		`CREATE INDEX hubs_rev ON hubs(rev)`,
		`ALTER TABLE instances ADD COLUMN hubs TEXT NOT NULL DEFAULT ''`,
	}},
}

// SchemaVersion is the schema version this build writes.
func SchemaVersion() int { return migrations[len(migrations)-1].version }

// migrationLock is the PostgreSQL advisory lock key held while migrating,
// so replicas starting together migrate once.
const migrationLock = 0x76637065_0001 // "vcpe", 1

// migrate brings the schema to the current version in one transaction.
// A database newer than this build is refused: an older replica must not
// write to a schema it does not know.
func (s *sqlStore) migrate(ctx context.Context) error {
	t, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate schema: %w", err)
	}
	defer t.Rollback()
	if s.db.pg {
		if _, err := t.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?)`, int64(migrationLock)); err != nil {
			return fmt.Errorf("migrate schema: lock: %w", err)
		}
	}
	if _, err := t.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("migrate schema: %w", err)
	}
	var cur sql.NullInt64
	if err := t.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&cur); err != nil {
		return fmt.Errorf("migrate schema: read version: %w", err)
	}
	from := int(cur.Int64)
	if !cur.Valid && !s.db.pg {
		if from, err = legacyVersion(ctx, t); err != nil {
			return fmt.Errorf("migrate schema: %w", err)
		}
	}
	if from > SchemaVersion() {
		return newerSchema(from)
	}
	now := time.Now().UnixNano()
	for _, m := range migrations {
		if m.version <= from {
			if !cur.Valid {
				// A database made before versions were recorded: note
				// the steps it already has, completing the first.
				if m.version == 1 {
					for _, q := range m.sqlite {
						if _, err := t.ExecContext(ctx, q); err != nil {
							return fmt.Errorf("migrate schema: complete version 1: %w", err)
						}
					}
				}
				if _, err := t.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`, m.version, m.name, now); err != nil {
					return fmt.Errorf("migrate schema: %w", err)
				}
			}
			continue
		}
		stmts := m.sqlite
		if s.db.pg {
			stmts = m.postgres
		}
		for _, q := range stmts {
			if _, err := t.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("migrate schema to version %d (%s): %w", m.version, m.name, err)
			}
		}
		if _, err := t.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`, m.version, m.name, now); err != nil {
			return fmt.Errorf("migrate schema: %w", err)
		}
	}
	if err := t.Commit(); err != nil {
		return fmt.Errorf("migrate schema: commit: %w", err)
	}
	return nil
}

// legacyVersion tells the version of a SQLite database made before
// versions were recorded: 0 when empty, 3 with LAN gateways, 2 with probe
// addresses, else 1.
func legacyVersion(ctx context.Context, t *tx) (int, error) {
	var n int
	if err := t.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'devices'`).Scan(&n); err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, nil
	}
	if err := t.QueryRowContext(ctx, `SELECT COUNT(*) FROM pragma_table_info('devices') WHERE name = 'lan_gateway'`).Scan(&n); err != nil {
		return 0, err
	}
	if n > 0 {
		return 3, nil
	}
	if err := t.QueryRowContext(ctx, `SELECT COUNT(*) FROM pragma_table_info('devices') WHERE name = 'probe_addrs'`).Scan(&n); err != nil {
		return 0, err
	}
	if n == 0 {
		return 1, nil
	}
	return 2, nil
}

// Version returns the schema version recorded in the database.
func (s *sqlStore) Version(ctx context.Context) (int, error) {
	var v int
	if err := s.db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}
