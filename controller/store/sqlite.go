package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/openvcpe/vcpe/api"
)

const schema = `
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ccns (
	id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS instances (
	id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, slots INTEGER NOT NULL,
	route_quota INTEGER NOT NULL, ccn_id TEXT REFERENCES ccns(id),
	advertised TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS devices (
	sn TEXT PRIMARY KEY,
	instance_id TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
	slot INTEGER NOT NULL, secret BLOB NOT NULL, overlay TEXT NOT NULL UNIQUE,
	public_key TEXT, status TEXT NOT NULL, registered_seq INTEGER NOT NULL DEFAULT 0,
	registered_at INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL,
	probe_addrs TEXT NOT NULL DEFAULT '', lan_gateway TEXT NOT NULL DEFAULT '');
CREATE UNIQUE INDEX IF NOT EXISTS devices_public_key ON devices(public_key) WHERE public_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS credentials (
	hash BLOB PRIMARY KEY,
	sn TEXT NOT NULL REFERENCES devices(sn) ON DELETE CASCADE,
	state TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS credentials_sn ON credentials(sn);
CREATE TABLE IF NOT EXISTS audit (
	id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, who TEXT NOT NULL,
	action TEXT NOT NULL, target TEXT NOT NULL, result TEXT NOT NULL, detail TEXT NOT NULL);
`

// SQLite is the embedded store.
type SQLite struct {
	db *sql.DB
}

// OpenSQLite opens (creating when needed, mode 0600) the database at path.
func OpenSQLite(path string) (*SQLite, error) {
	if path != ":memory:" {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open store %s: %w", path, err)
		}
		f.Close()
	}
	dsn := "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)" +
		"&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	// One connection: the controller serialises writes anyway, and an
	// in-memory database exists per connection.
	db.SetMaxOpenConns(1)
	if err := checkSchemaVersion(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: create schema: %w", path, err)
	}
	if err := migrate(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := setSchemaVersion(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return &SQLite{db: db}, nil
}

// columns added after the first release: table, column, definition. A
// database made before them gets them on open (CREATE TABLE IF NOT EXISTS
// leaves an existing table as it is).
var columns = []struct{ table, column, def string }{
	{"devices", "probe_addrs", "TEXT NOT NULL DEFAULT ''"},
	{"devices", "lan_gateway", "TEXT NOT NULL DEFAULT ''"},
}

func migrate(db *sql.DB) error {
	for _, c := range columns {
		rows, err := db.Query(`SELECT name FROM pragma_table_info(?)`, c.table)
		if err != nil {
			return fmt.Errorf("migrate %s: %w", c.table, err)
		}
		found := false
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				rows.Close()
				return fmt.Errorf("migrate %s: %w", c.table, err)
			}
			found = found || name == c.column
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("migrate %s: %w", c.table, err)
		}
		if found {
			continue
		}
		if _, err := db.Exec(`ALTER TABLE ` + c.table + ` ADD COLUMN ` + c.column + ` ` + c.def); err != nil {
			return fmt.Errorf("migrate %s: add column %s: %w", c.table, c.column, err)
		}
	}
	return nil
}

// Close closes the database.
func (s *SQLite) Close() error { return s.db.Close() }

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnix(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func splitPrefixes(s string) ([]netip.Prefix, error) {
	if s == "" {
		return nil, nil
	}
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func joinAddrs(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}

func gatewayText(p netip.Prefix) string {
	if !p.IsValid() {
		return ""
	}
	return p.String()
}

func splitAddrs(s string) ([]netip.Addr, error) {
	if s == "" {
		return nil, nil
	}
	var out []netip.Addr
	for _, f := range strings.Split(s, ",") {
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func nullKey(k api.Key) any {
	if k.IsZero() {
		return nil
	}
	return k.String()
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Load reads every record.
func (s *SQLite) Load(ctx context.Context) (*Snapshot, error) {
	snap := &Snapshot{Meta: map[string]string{}}
	rows, err := s.db.QueryContext(ctx, `SELECT k, v FROM meta`)
	if err != nil {
		return nil, fmt.Errorf("load meta: %w", err)
	}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load meta: %w", err)
		}
		snap.Meta[k] = v
	}
	rows.Close()

	rows, err = s.db.QueryContext(ctx, `SELECT id, name, created_at FROM ccns ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("load ccns: %w", err)
	}
	for rows.Next() {
		var c CCN
		var at int64
		if err := rows.Scan(&c.ID, &c.Name, &at); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load ccns: %w", err)
		}
		c.CreatedAt = fromUnix(at)
		snap.CCNs = append(snap.CCNs, c)
	}
	rows.Close()

	rows, err = s.db.QueryContext(ctx, `SELECT id, name, slots, route_quota, COALESCE(ccn_id, ''), advertised, created_at FROM instances ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("load instances: %w", err)
	}
	for rows.Next() {
		var in Instance
		var adv string
		var at int64
		if err := rows.Scan(&in.ID, &in.Name, &in.Slots, &in.RouteQuota, &in.CCN, &adv, &at); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load instances: %w", err)
		}
		if in.Advertised, err = splitPrefixes(adv); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load instance %s: advertised prefixes: %w", in.ID, err)
		}
		in.CreatedAt = fromUnix(at)
		snap.Instances = append(snap.Instances, in)
	}
	rows.Close()

	rows, err = s.db.QueryContext(ctx, `SELECT sn, instance_id, slot, secret, overlay, COALESCE(public_key, ''), status, registered_seq, registered_at, created_at, probe_addrs, lan_gateway FROM devices ORDER BY instance_id, slot`)
	if err != nil {
		return nil, fmt.Errorf("load devices: %w", err)
	}
	for rows.Next() {
		var d Device
		var overlay, pub, probe, gw string
		var regAt, at int64
		if err := rows.Scan(&d.SN, &d.InstanceID, &d.Slot, &d.Secret, &overlay, &pub, &d.Status, &d.RegisteredSeq, &regAt, &at, &probe, &gw); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load devices: %w", err)
		}
		if d.Overlay, err = netip.ParseAddr(overlay); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load device %s: overlay: %w", d.SN, err)
		}
		if d.ProbeAddrs, err = splitAddrs(probe); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load device %s: probe addresses: %w", d.SN, err)
		}
		if gw != "" {
			if d.LANGateway, err = netip.ParsePrefix(gw); err != nil {
				rows.Close()
				return nil, fmt.Errorf("load device %s: LAN gateway: %w", d.SN, err)
			}
		}
		if pub != "" {
			if d.PublicKey, err = api.ParseKey(pub); err != nil {
				rows.Close()
				return nil, fmt.Errorf("load device %s: %w", d.SN, err)
			}
		}
		d.RegisteredAt, d.CreatedAt = fromUnix(regAt), fromUnix(at)
		snap.Devices = append(snap.Devices, d)
	}
	rows.Close()

	rows, err = s.db.QueryContext(ctx, `SELECT hash, sn, state, created_at FROM credentials`)
	if err != nil {
		return nil, fmt.Errorf("load credentials: %w", err)
	}
	for rows.Next() {
		var c Credential
		var at int64
		if err := rows.Scan(&c.Hash, &c.SN, &c.State, &at); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load credentials: %w", err)
		}
		c.CreatedAt = fromUnix(at)
		snap.Credentials = append(snap.Credentials, c)
	}
	rows.Close()
	return snap, rows.Err()
}

// SetMeta stores a setting.
func (s *SQLite) SetMeta(ctx context.Context, k, v string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v`, k, v)
	if err != nil {
		return fmt.Errorf("store setting %s: %w", k, err)
	}
	return nil
}

func (s *SQLite) tx(ctx context.Context, what string, f func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		if errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) {
			return err
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", what, err)
	}
	return nil
}

// CreateInstance inserts an instance and its device slots.
func (s *SQLite) CreateInstance(ctx context.Context, in Instance, devs []Device) error {
	return s.tx(ctx, "create instance "+in.Name, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO instances (id, name, slots, route_quota, ccn_id, advertised, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			in.ID, in.Name, in.Slots, in.RouteQuota, nullString(in.CCN), api.JoinPrefixes(in.Advertised, ","), unix(in.CreatedAt)); err != nil {
			return err
		}
		for _, d := range devs {
			if err := putDevice(ctx, tx, d); err != nil {
				return err
			}
		}
		return nil
	})
}

func putDevice(ctx context.Context, tx *sql.Tx, d Device) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO devices (sn, instance_id, slot, secret, overlay, public_key, status, registered_seq, registered_at, created_at, probe_addrs, lan_gateway)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(sn) DO UPDATE SET secret = excluded.secret, public_key = excluded.public_key, status = excluded.status,
			registered_seq = excluded.registered_seq, registered_at = excluded.registered_at, probe_addrs = excluded.probe_addrs, lan_gateway = excluded.lan_gateway`,
		d.SN, d.InstanceID, d.Slot, d.Secret, d.Overlay.String(), nullKey(d.PublicKey), d.Status, d.RegisteredSeq, unix(d.RegisteredAt), unix(d.CreatedAt), joinAddrs(d.ProbeAddrs), gatewayText(d.LANGateway))
	return err
}

// UpdateInstance stores an instance's name, quota, CCN and advertised
// prefixes.
func (s *SQLite) UpdateInstance(ctx context.Context, in Instance) error {
	return s.tx(ctx, "update instance "+in.Name, func(tx *sql.Tx) error {
		return updateInstance(ctx, tx, in)
	})
}

func updateInstance(ctx context.Context, tx *sql.Tx, in Instance) error {
	r, err := tx.ExecContext(ctx, `UPDATE instances SET name = ?, route_quota = ?, ccn_id = ?, advertised = ? WHERE id = ?`,
		in.Name, in.RouteQuota, nullString(in.CCN), api.JoinPrefixes(in.Advertised, ","), in.ID)
	if err != nil {
		return err
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// UpdateAdvertised stores an instance's advertised prefixes and the probe
// addresses of the device that advertised them, in one transaction.
func (s *SQLite) UpdateAdvertised(ctx context.Context, in Instance, sn string, probe []netip.Addr) error {
	return s.tx(ctx, "update advertised routes of "+in.Name, func(tx *sql.Tx) error {
		if err := updateInstance(ctx, tx, in); err != nil {
			return err
		}
		r, err := tx.ExecContext(ctx, `UPDATE devices SET probe_addrs = ? WHERE sn = ? AND instance_id = ?`, joinAddrs(probe), sn, in.ID)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
}

// DeleteInstance removes an instance with its devices and credentials.
func (s *SQLite) DeleteInstance(ctx context.Context, id string) error {
	return s.tx(ctx, "delete instance "+id, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `DELETE FROM instances WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
}

// UpdateDevice stores a device's key secret, binding and status, and sets
// the state of its valid credentials to credState when that is not empty
// (revoke, key reset, release), dropping the device's earlier ended
// credentials.
func (s *SQLite) UpdateDevice(ctx context.Context, d Device, credState string) error {
	return s.tx(ctx, "update device "+d.SN, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `UPDATE devices SET secret = ?, public_key = ?, status = ?, registered_seq = ?, registered_at = ?, probe_addrs = ?, lan_gateway = ? WHERE sn = ?`,
			d.Secret, nullKey(d.PublicKey), d.Status, d.RegisteredSeq, unix(d.RegisteredAt), joinAddrs(d.ProbeAddrs), gatewayText(d.LANGateway), d.SN)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		if credState != "" {
			// Only the latest ended credential of a device is kept (it
			// answers "released", "revoked" or "key reset" rather than
			// "unknown"): register/release churn never grows the table.
			if _, err := tx.ExecContext(ctx, `DELETE FROM credentials WHERE sn = ? AND state != ?`, d.SN, CredValid); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `UPDATE credentials SET state = ? WHERE sn = ? AND state = ?`, credState, d.SN, CredValid)
		}
		return err
	})
}

// BindDevice registers d: it binds d.PublicKey to the SN unless the SN is
// bound to another key or revoked (ErrConflict), replaces the device's valid
// credentials with cred, and stores the instance (its advertised prefixes),
// all in one transaction.
func (s *SQLite) BindDevice(ctx context.Context, d Device, cred Credential, in Instance) error {
	return s.tx(ctx, "register device "+d.SN, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `UPDATE devices SET public_key = ?, status = ?, registered_seq = ?, registered_at = ?, probe_addrs = ?, lan_gateway = ?
			WHERE sn = ? AND status != ? AND (public_key IS NULL OR public_key = ?)`,
			d.PublicKey.String(), StatusRegistered, d.RegisteredSeq, unix(d.RegisteredAt), joinAddrs(d.ProbeAddrs), gatewayText(d.LANGateway), d.SN, StatusRevoked, d.PublicKey.String())
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return ErrConflict
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM credentials WHERE sn = ? AND state = ?`, d.SN, CredValid); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO credentials (hash, sn, state, created_at) VALUES (?, ?, ?, ?)`,
			cred.Hash, cred.SN, cred.State, unix(cred.CreatedAt)); err != nil {
			return err
		}
		return updateInstance(ctx, tx, in)
	})
}

// CreateCCN inserts a CCN.
func (s *SQLite) CreateCCN(ctx context.Context, c CCN) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO ccns (id, name, created_at) VALUES (?, ?, ?)`, c.ID, c.Name, unix(c.CreatedAt))
	if err != nil {
		return fmt.Errorf("create ccn %s: %w", c.Name, err)
	}
	return nil
}

// AppendAudit records an audit entry.
func (s *SQLite) AppendAudit(ctx context.Context, e AuditEntry) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO audit (at, who, action, target, result, detail) VALUES (?, ?, ?, ?, ?, ?)`,
		unix(e.At), e.Who, e.Action, e.Target, e.Result, e.Detail)
	if err != nil {
		return fmt.Errorf("append audit entry: %w", err)
	}
	return nil
}

// Audit returns the last n audit entries, oldest first.
func (s *SQLite) Audit(ctx context.Context, n int) ([]AuditEntry, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT at, who, action, target, result, detail FROM (SELECT * FROM audit ORDER BY id DESC LIMIT ?) ORDER BY id`, n)
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var at int64
		if err := rows.Scan(&at, &e.Who, &e.Action, &e.Target, &e.Result, &e.Detail); err != nil {
			return nil, fmt.Errorf("read audit log: %w", err)
		}
		e.At = fromUnix(at)
		out = append(out, e)
	}
	return out, rows.Err()
}
