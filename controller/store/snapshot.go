package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
)

// SnapshotSQLite writes a consistent copy of the SQLite store at src into
// dst, which must not exist, with VACUUM INTO on a read-only connection:
// one read transaction, so it is safe while a running controller writes to
// src, and the copy is compact and needs no WAL. It returns the copy's
// schema version.
func SnapshotSQLite(ctx context.Context, src, dst string) (version int, err error) {
	if _, err := os.Stat(src); err != nil {
		return 0, fmt.Errorf("snapshot store: %w", err)
	}
	if strings.ContainsAny(dst, "'\x00") {
		return 0, fmt.Errorf("snapshot store: destination %q has a quote or NUL", dst)
	}
	if _, err := os.Stat(dst); !errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("snapshot store: %s already exists", dst)
	}
	db, err := sql.Open("sqlite", "file:"+src+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		return 0, fmt.Errorf("snapshot store %s: %w", src, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `VACUUM INTO '`+dst+`'`); err != nil {
		os.Remove(dst)
		return 0, fmt.Errorf("snapshot store %s: %w", src, err)
	}
	if err := os.Chmod(dst, 0o600); err != nil {
		return 0, fmt.Errorf("snapshot store: %w", err)
	}
	cp, err := sql.Open("sqlite", "file:"+dst+"?mode=ro")
	if err != nil {
		return 0, fmt.Errorf("snapshot store: %w", err)
	}
	defer cp.Close()
	var check string
	if err := cp.QueryRowContext(ctx, `PRAGMA quick_check`).Scan(&check); err != nil || check != "ok" {
		return 0, fmt.Errorf("snapshot store: the copy fails its integrity check (%s, %v)", check, err)
	}
	if err := cp.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return 0, fmt.Errorf("snapshot store: %w", err)
	}
	return version, nil
}
