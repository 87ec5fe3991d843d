// Package pgtest starts a throw-away PostgreSQL server for tests: the
// distribution's initdb and pg_ctl on a temporary directory, listening on a
// unix socket only (no TCP port), as an unprivileged user (PostgreSQL
// refuses to run as root: under root the server runs as "nobody"). The
// server is stopped and its directory removed when the test ends, pass or
// fail.
//
// When PostgreSQL is not installed the test is skipped with a message
// naming the package, unless VCPE_REQUIRE_PRIVILEGED is set (CI, sudo make
// test, which installs it), in which case it fails: a store test never
// passes by being skipped there.
//
// It must not be imported by non-test code.
package pgtest

import (
	"bytes"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver

	"github.com/openvcpe/vcpe/internal/namespace"
)

// User is the database superuser of the test server.
const User = "vcpe"

// Server is one running test server.
type Server struct {
	Dir  string // data directory parent; the socket lives here too
	bin  string
	cred *syscall.Credential
}

// BinDir returns the directory of the newest installed PostgreSQL server
// binaries (Debian keeps them off PATH, in /usr/lib/postgresql/N/bin), or
// "" when none is installed.
func BinDir() string {
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) < version(dirs[j]) })
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "pg_ctl")); err == nil {
			return dirs[i]
		}
	}
	return ""
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// Start runs a fresh server for the rest of the test.
func Start(tb testing.TB) *Server {
	tb.Helper()
	bin := BinDir()
	if bin == "" {
		namespace.Skipf(tb, "the PostgreSQL test needs the postgresql package (apt-get install postgresql; sudo make test installs it)")
	}
	dir, err := os.MkdirTemp("", "vcpe-pgtest-")
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	s := &Server{Dir: dir, bin: bin}
	tb.Cleanup(func() { s.stop(tb) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup("nobody")
		if err != nil {
			tb.Fatalf("pgtest: PostgreSQL refuses to run as root and there is no user nobody to run it as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			tb.Fatalf("pgtest: %v", err)
		}
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	data := filepath.Join(dir, "data")
	s.run(tb, "initdb", "-D", data, "-U", User, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	opts := fmt.Sprintf("-k %s -c listen_addresses='' -F -c max_connections=200 -c shared_buffers=16MB", dir)
	s.run(tb, "pg_ctl", "-D", data, "-l", filepath.Join(dir, "log"), "-o", opts, "-w", "-t", "60", "start")
	return s
}

func (s *Server) run(tb testing.TB, name string, args ...string) {
	tb.Helper()
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.Dir
	cmd.Env = []string{"LC_ALL=C", "PATH=" + s.bin + ":/usr/bin:/bin", "HOME=" + s.Dir}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.Dir, "log"))
		tb.Fatalf("pgtest: %s %v: %v\n%s\n%s", name, args, err, out.Bytes(), log)
	}
}

func (s *Server) stop(tb testing.TB) {
	if _, err := os.Stat(filepath.Join(s.Dir, "data", "postmaster.pid")); err == nil {
		cmd := exec.Command(filepath.Join(s.bin, "pg_ctl"), "-D", filepath.Join(s.Dir, "data"), "-m", "immediate", "-w", "stop")
		cmd.Dir = s.Dir
		cmd.Env = []string{"LC_ALL=C", "HOME=" + s.Dir}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
		if out, err := cmd.CombinedOutput(); err != nil {
			tb.Logf("pgtest: pg_ctl stop: %v: %s", err, out)
		}
	}
	if err := os.RemoveAll(s.Dir); err != nil {
		tb.Logf("pgtest: remove %s: %v", s.Dir, err)
	}
}

// URL is the connection URL of database db on this server.
func (s *Server) URL(db string) string {
	u := url.URL{Scheme: "postgres", User: url.User(User), Path: "/" + db, RawQuery: url.Values{"host": {s.Dir}, "sslmode": {"disable"}}.Encode()}
	return u.String()
}

// NewDB creates an empty database with a unique name and returns its URL.
func (s *Server) NewDB(tb testing.TB) string {
	tb.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "t_" + hex.EncodeToString(b[:])
	db, err := sql.Open("pgx", s.URL("postgres"))
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	defer db.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err = db.Exec("CREATE DATABASE " + name)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		tb.Fatalf("pgtest: create database: %v", err)
	}
	return s.URL(name)
}
