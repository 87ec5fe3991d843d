package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// Postgres is the store for several controller replicas sharing one
// PostgreSQL database (github.com/jackc/pgx/v5).
type Postgres struct {
	*sqlStore
	cfg *pgx.ConnConfig
}

// PostgresOptions tune OpenPostgres.
type PostgresOptions struct {
	// Password, when not empty, replaces any password of the URL (read
	// from --database-password-file). PGPASSWORD and PGPASSFILE work as
	// in every PostgreSQL client.
	Password string
	// MaxConns bounds the pool; default 16.
	MaxConns int
}

// IsPostgresURL reports whether s names a PostgreSQL database.
func IsPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// URLHasPassword reports whether a postgres:// URL carries a password,
// which must not be passed on a command line.
func URLHasPassword(s string) bool {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return strings.Contains(s, "password=")
	}
	_, ok := u.User.Password()
	return ok || u.Query().Has("password")
}

// RedactURL returns the URL without any password, for logs.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "REDACTED")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// OpenPostgres connects to the database at dsn (postgres://…) and migrates
// its schema to the current version (once, when replicas start together).
func OpenPostgres(ctx context.Context, dsn string, opts PostgresOptions) (*Postgres, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("database URL %s: %w", RedactURL(dsn), err)
	}
	if opts.Password != "" {
		cfg.Password = opts.Password
	}
	// Plan every statement for its arguments: a generic plan of "rev > $1"
	// guesses a third of the table and scans it, which makes catching up
	// grow with the fleet instead of with the change.
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	if _, ok := cfg.RuntimeParams["plan_cache_mode"]; !ok {
		cfg.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	}
	if opts.MaxConns == 0 {
		opts.MaxConns = 16
	}
	sdb := stdlib.OpenDB(*cfg)
	sdb.SetMaxOpenConns(opts.MaxConns)
	sdb.SetMaxIdleConns(opts.MaxConns)
	sdb.SetConnMaxIdleTime(5 * time.Minute)
	s := &Postgres{sqlStore: &sqlStore{db: &db{DB: sdb, pg: true}}, cfg: cfg}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := sdb.PingContext(pctx); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("connect to PostgreSQL %s: %w", RedactURL(dsn), err)
	}
	if err := s.migrate(pctx); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("PostgreSQL %s: %w", RedactURL(dsn), err)
	}
	return s, nil
}

// writeLock is the advisory lock key every replica takes around a decision
// (Lock).
const writeLock = 0x76637065_0002 // "vcpe", 2

// LockTimeout bounds the wait for the write lock: a replica that hangs
// while holding it (a stopped process) makes the others answer "internal
// error" rather than wait for ever; one that dies releases it at once.
const LockTimeout = 10 * time.Second

// Lock takes the cluster-wide write lock: a session-level advisory lock on
// a connection of its own, held until unlock. Replicas make every decision
// (slot binding, prefix conflicts, key resets, revocations) under it, on
// state read after taking it. A replica that dies loses its connection and
// with it the lock.
func (s *Postgres) Lock(ctx context.Context) (func(), error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("take the write lock: %w", err)
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`SET lock_timeout = %d`, LockTimeout.Milliseconds())); err == nil {
		_, err = conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, int64(writeLock))
	}
	if err != nil {
		discard(conn)
		return nil, fmt.Errorf("take the write lock: %w", err)
	}
	return func() {
		uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := conn.ExecContext(uctx, `SELECT pg_advisory_unlock($1)`, int64(writeLock)); err != nil {
			// Never give a connection that may still hold the lock back
			// to the pool: closing it releases the lock.
			discard(conn)
			return
		}
		conn.Close()
	}, nil
}

// discard closes a pooled connection instead of returning it to the pool.
func discard(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	conn.Close()
}

// Watch calls changed(true) once it listens for changes and after each
// change any replica commits, and changed(false) when the listening
// connection is lost (it reconnects, then calls changed(true) again, so
// the caller catches up on what it missed). It returns when ctx ends.
func (s *Postgres) Watch(ctx context.Context, changed func(live bool)) {
	wait := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.listen(ctx, changed)
		if ctx.Err() != nil {
			return
		}
		changed(false)
		_ = err // the next attempt says whether the database is back
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

func (s *Postgres) listen(ctx context.Context, changed func(live bool)) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.ConnectConfig(cctx, s.cfg)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return err
	}
	changed(true)
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		changed(true)
	}
}

// Shared is true: replicas share a PostgreSQL database.
func (s *Postgres) Shared() bool { return true }
