package store

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestUnavailableClassifiesRealErrors: a real SQLite read-only error, a
// wrapped ENOSPC and EROFS are storage states with a cause and a fix; a
// missing row is not.
func TestUnavailableClassifiesRealErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	ro, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	_, roErr := ro.Exec(`INSERT INTO meta (k, v) VALUES ('a', 'b')`)
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"sqlite read-only", fmt.Errorf("store: %w", roErr), "read-only"},
		{"disk full", fmt.Errorf("write wal: %w", syscall.ENOSPC), "is full"},
		{"read-only fs", fmt.Errorf("open: %w", syscall.EROFS), "read-only"},
	} {
		cause, fix, ok := Unavailable(c.err)
		if !ok || !strings.Contains(cause, c.want) || fix == "" {
			t.Errorf("%s (%v): %q, %q, %v; want a cause with %q and a fix", c.name, c.err, cause, fix, ok, c.want)
		}
	}
	if _, _, ok := Unavailable(fmt.Errorf("bug: %w", sql.ErrNoRows)); ok {
		t.Error("sql.ErrNoRows is taken for a storage state")
	}
}
