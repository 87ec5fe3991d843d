package pgtest

import (
	"database/sql"
	"os"
	"testing"
)

func TestStartAndStop(t *testing.T) {
	var dir string
	t.Run("server", func(t *testing.T) {
		s := Start(t)
		dir = s.Dir
		db, err := sql.Open("pgx", s.NewDB(t))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var user string
		if err := db.QueryRow("SELECT current_user").Scan(&user); err != nil {
			t.Fatalf("query the test server: %v", err)
		}
		if user != User {
			t.Errorf("current_user = %q; want %q", user, User)
		}
	})
	if _, err := os.Stat(dir); dir != "" && err == nil {
		t.Errorf("server directory %s left behind after the test", dir)
	}
}
