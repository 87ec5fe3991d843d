package store

import (
	"database/sql"
	"errors"
	"fmt"
)

// SchemaVersion is the layout of the SQLite store this build reads and
// writes, kept in SQLite's user_version: 1 is the first release (which
// left user_version at 0), 2 added devices.probe_addrs. A store of an
// older version is migrated on open; a newer one is refused and left as it
// is, so a downgrade never damages what a newer vcpe-hub wrote.
const SchemaVersion = 2

// ErrNewerSchema is returned by OpenSQLite for a store written by a newer
// vcpe-hub.
var ErrNewerSchema = errors.New("store schema is newer than this vcpe-hub")

// checkSchemaVersion refuses a store whose schema is newer than this build.
func checkSchemaVersion(db *sql.DB) error {
	var v int
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if v > SchemaVersion {
		return fmt.Errorf("%w: it has schema version %d and this vcpe-hub reads up to %d; it was left unchanged: run the newer vcpe-hub again, or restore a backup taken before the upgrade (vcpe-hub restore)", ErrNewerSchema, v, SchemaVersion)
	}
	return nil
}

// setSchemaVersion records that the store now has this build's layout.
func setSchemaVersion(db *sql.DB) error {
	if _, err := db.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, SchemaVersion)); err != nil {
		return fmt.Errorf("set schema version: %w", err)
	}
	return nil
}
