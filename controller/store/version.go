package store

import (
	"context"
	"errors"
	"fmt"
)

// One scheme of schema versions serves both engines: the versioned
// migrations (see migrations and SchemaVersion), recorded in the
// schema_migrations table. A SQLite store also mirrors that version in
// SQLite's user_version, which the first releases used (0 was the first
// release, 2 added devices.probe_addrs — the same numbers as the
// migrations), so a backup's version can be read without knowing the table
// and an older vcpe-hub that reads user_version refuses a newer store too.
// A store of an older version is migrated on open; a newer one is refused
// and left as it is, so a downgrade never damages what a newer vcpe-hub
// wrote.

// ErrNewerSchema is returned when opening a store written by a newer
// vcpe-hub.
var ErrNewerSchema = errors.New("store schema is newer than this vcpe-hub")

// newerSchema is the error for a store of schema version v.
func newerSchema(v int) error {
	return fmt.Errorf("%w: it has schema version %d and this vcpe-hub reads up to %d; it was left unchanged: run the newer vcpe-hub again, or restore a backup taken before the upgrade (vcpe-hub restore)", ErrNewerSchema, v, SchemaVersion())
}

// checkUserVersion refuses a SQLite store whose user_version is newer than
// this build, before anything is written to it.
func checkUserVersion(ctx context.Context, d *db) error {
	var v int
	if err := d.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if v > SchemaVersion() {
		return newerSchema(v)
	}
	return nil
}

// setUserVersion mirrors the migration version in SQLite's user_version.
func setUserVersion(ctx context.Context, d *db) error {
	if _, err := d.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, SchemaVersion())); err != nil {
		return fmt.Errorf("set schema version: %w", err)
	}
	return nil
}
