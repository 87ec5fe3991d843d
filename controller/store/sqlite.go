package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/openvcpe/vcpe/api"
)

// sqlStore holds the queries, written once for both engines (see db).
type sqlStore struct {
	db *db
}

// SQLite is the embedded store: one process, one file.
type SQLite struct {
	*sqlStore
}

// OpenSQLite opens (creating when needed, mode 0600) the database at path
// and migrates its schema to the current version.
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
	sdb, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	// One connection: the controller serialises writes anyway, and an
	// in-memory database exists per connection.
	sdb.SetMaxOpenConns(1)
	s := &SQLite{&sqlStore{db: &db{DB: sdb}}}
	ctx := context.Background()
	if err := checkUserVersion(ctx, s.db); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := s.migrate(ctx); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := setUserVersion(ctx, s.db); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return s, nil
}

// Lock is the cluster-wide write lock; a SQLite store has one process, so
// the controller's own mutex is enough.
func (s *SQLite) Lock(context.Context) (func(), error) { return func() {}, nil }

// Watch reports that this process sees every change at once (it is the
// only writer) and returns.
func (s *SQLite) Watch(_ context.Context, changed func(live bool)) { changed(true) }

// Close closes the database.
func (s *sqlStore) Close() error { return s.db.Close() }

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

// Load reads every record, as of one revision.
func (s *sqlStore) Load(ctx context.Context) (*Snapshot, error) { return s.load(ctx, -1) }

// Changes reads what changed after revision since: the CCNs and settings
// written since, every instance written since with all its devices and
// credentials, and the IDs of instances deleted since. Applying them to the
// state of revision since gives the state of the returned revision.
func (s *sqlStore) Changes(ctx context.Context, since uint64) (*Snapshot, error) {
	return s.load(ctx, int64(since))
}

// Revision returns the current revision: it grows with every committed
// change of instances, devices, credentials, CCNs or settings.
func (s *sqlStore) Revision(ctx context.Context) (uint64, error) {
	var n int64
	if err := s.db.QueryRowContext(ctx, `SELECT n FROM revision WHERE id = 1`).Scan(&n); err != nil {
		return 0, fmt.Errorf("read store revision: %w", err)
	}
	return uint64(n), nil
}

func (s *sqlStore) load(ctx context.Context, since int64) (*Snapshot, error) {
	var opts *sql.TxOptions
	if s.db.pg {
		// One snapshot for every query below.
		opts = &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
	}
	t, err := s.db.BeginTx(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("load store: %w", err)
	}
	defer t.Rollback()
	snap := &Snapshot{Meta: map[string]string{}, Full: since < 0}
	var rev int64
	if err := t.QueryRowContext(ctx, `SELECT n FROM revision WHERE id = 1`).Scan(&rev); err != nil {
		return nil, fmt.Errorf("load store revision: %w", err)
	}
	snap.Rev = uint64(rev)
	rows, err := t.QueryContext(ctx, `SELECT k, v FROM meta WHERE rev > ?`, since)
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

	rows, err = t.QueryContext(ctx, `SELECT id, name, created_at FROM ccns WHERE rev > ? ORDER BY created_at, id`, since)
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

	rows, err = t.QueryContext(ctx, `SELECT id, name, slots, route_quota, COALESCE(ccn_id, ''), advertised, hubs, created_at FROM instances WHERE rev > ? ORDER BY created_at, id`, since)
	if err != nil {
		return nil, fmt.Errorf("load instances: %w", err)
	}
	for rows.Next() {
		var in Instance
		var adv, hubs string
		var at int64
		if err := rows.Scan(&in.ID, &in.Name, &in.Slots, &in.RouteQuota, &in.CCN, &adv, &hubs, &at); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load instances: %w", err)
		}
		if in.Advertised, err = splitPrefixes(adv); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load instance %s: advertised prefixes: %w", in.ID, err)
		}
		in.Hubs = splitNames(hubs)
		in.CreatedAt = fromUnix(at)
		snap.Instances = append(snap.Instances, in)
	}
	rows.Close()

	if snap.Hubs, err = loadHubs(ctx, t, since); err != nil {
		return nil, err
	}

	rows, err = t.QueryContext(ctx, `SELECT d.sn, d.instance_id, d.slot, d.secret, d.overlay, COALESCE(d.public_key, ''), d.status, d.registered_seq, d.registered_at, d.created_at, d.probe_addrs, d.lan_gateway
		FROM devices d WHERE d.instance_id IN (SELECT id FROM instances WHERE rev > ?) ORDER BY d.instance_id, d.slot`, since)
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

	rows, err = t.QueryContext(ctx, `SELECT c.hash, c.sn, c.state, c.created_at FROM credentials c
		WHERE c.sn IN (SELECT sn FROM devices WHERE instance_id IN (SELECT id FROM instances WHERE rev > ?))`, since)
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
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load credentials: %w", err)
	}
	if since >= 0 {
		rows, err = t.QueryContext(ctx, `SELECT kind, id FROM tombstones WHERE rev > ? AND kind IN ('instance', 'hub') ORDER BY rev`, since)
		if err != nil {
			return nil, fmt.Errorf("load deletions: %w", err)
		}
		for rows.Next() {
			var kind, id string
			if err := rows.Scan(&kind, &id); err != nil {
				rows.Close()
				return nil, fmt.Errorf("load deletions: %w", err)
			}
			if kind == "hub" {
				snap.DeletedHubs = append(snap.DeletedHubs, id)
				continue
			}
			snap.Deleted = append(snap.Deleted, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("load deletions: %w", err)
		}
	}
	return snap, nil
}

// notifyChannel is the PostgreSQL channel every committed change is
// announced on, with its revision as the payload.
const notifyChannel = "vcpe_changes"

// bump takes the next revision inside t. In PostgreSQL the row lock it
// takes orders committing writers, so revisions become visible in order;
// the notification is delivered when t commits.
func (s *sqlStore) bump(ctx context.Context, t *tx) (int64, error) {
	var n int64
	if err := t.QueryRowContext(ctx, `UPDATE revision SET n = n + 1 WHERE id = 1 RETURNING n`).Scan(&n); err != nil {
		return 0, fmt.Errorf("next revision: %w", err)
	}
	if s.db.pg {
		if _, err := t.ExecContext(ctx, `SELECT pg_notify(?, ?)`, notifyChannel, strconv.FormatInt(n, 10)); err != nil {
			return 0, fmt.Errorf("announce revision: %w", err)
		}
	}
	return n, nil
}

// touch marks an instance (and so its devices and credentials) changed at
// a new revision.
func (s *sqlStore) touch(ctx context.Context, t *tx, instID string) error {
	rev, err := s.bump(ctx, t)
	if err != nil {
		return err
	}
	r, err := t.ExecContext(ctx, `UPDATE instances SET rev = ? WHERE id = ?`, rev, instID)
	if err != nil {
		return err
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// SetMeta stores a setting.
func (s *sqlStore) SetMeta(ctx context.Context, k, v string) error {
	return s.tx(ctx, "store setting "+k, func(t *tx) error {
		rev, err := s.bump(ctx, t)
		if err != nil {
			return err
		}
		_, err = t.ExecContext(ctx, `INSERT INTO meta (k, v, rev) VALUES (?, ?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v, rev = excluded.rev`, k, v, rev)
		return err
	})
}

// InitMeta stores a setting unless it is set, and returns the value that
// holds: the first writer wins (a CA made by two replicas starting at
// once).
func (s *sqlStore) InitMeta(ctx context.Context, k, v string) (string, error) {
	var got string
	err := s.tx(ctx, "store setting "+k, func(t *tx) error {
		rev, err := s.bump(ctx, t)
		if err != nil {
			return err
		}
		if _, err := t.ExecContext(ctx, `INSERT INTO meta (k, v, rev) VALUES (?, ?, ?) ON CONFLICT(k) DO NOTHING`, k, v, rev); err != nil {
			return err
		}
		return t.QueryRowContext(ctx, `SELECT v FROM meta WHERE k = ?`, k).Scan(&got)
	})
	return got, err
}

func (s *sqlStore) tx(ctx context.Context, what string, f func(*tx) error) error {
	t, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := f(t); err != nil {
		t.Rollback()
		if errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) {
			return err
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := t.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", what, err)
	}
	return nil
}

// CreateInstance inserts an instance and its device slots.
func (s *sqlStore) CreateInstance(ctx context.Context, in Instance, devs []Device) error {
	return s.tx(ctx, "create instance "+in.Name, func(tx *tx) error {
		rev, err := s.bump(ctx, tx)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO instances (id, name, slots, route_quota, ccn_id, advertised, hubs, created_at, rev) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			in.ID, in.Name, in.Slots, in.RouteQuota, nullString(in.CCN), api.JoinPrefixes(in.Advertised, ","), strings.Join(in.Hubs, ","), unix(in.CreatedAt), rev); err != nil {
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

func putDevice(ctx context.Context, tx *tx, d Device) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO devices (sn, instance_id, slot, secret, overlay, public_key, status, registered_seq, registered_at, created_at, probe_addrs, lan_gateway)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(sn) DO UPDATE SET secret = excluded.secret, public_key = excluded.public_key, status = excluded.status,
			registered_seq = excluded.registered_seq, registered_at = excluded.registered_at, probe_addrs = excluded.probe_addrs, lan_gateway = excluded.lan_gateway`,
		d.SN, d.InstanceID, d.Slot, d.Secret, d.Overlay.String(), nullKey(d.PublicKey), d.Status, int64(d.RegisteredSeq), unix(d.RegisteredAt), unix(d.CreatedAt), joinAddrs(d.ProbeAddrs), gatewayText(d.LANGateway))
	return err
}

// UpdateInstance stores an instance's name, quota, CCN, advertised
// prefixes and hub assignment.
func (s *sqlStore) UpdateInstance(ctx context.Context, in Instance) error {
	return s.tx(ctx, "update instance "+in.Name, func(tx *tx) error {
		return s.updateInstance(ctx, tx, in)
	})
}

func (s *sqlStore) updateInstance(ctx context.Context, tx *tx, in Instance) error {
	rev, err := s.bump(ctx, tx)
	if err != nil {
		return err
	}
	r, err := tx.ExecContext(ctx, `UPDATE instances SET name = ?, route_quota = ?, ccn_id = ?, advertised = ?, hubs = ?, rev = ? WHERE id = ?`,
		in.Name, in.RouteQuota, nullString(in.CCN), api.JoinPrefixes(in.Advertised, ","), strings.Join(in.Hubs, ","), rev, in.ID)
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
func (s *sqlStore) UpdateAdvertised(ctx context.Context, in Instance, sn string, probe []netip.Addr) error {
	return s.tx(ctx, "update advertised routes of "+in.Name, func(tx *tx) error {
		if err := s.updateInstance(ctx, tx, in); err != nil {
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
func (s *sqlStore) DeleteInstance(ctx context.Context, id string) error {
	return s.tx(ctx, "delete instance "+id, func(tx *tx) error {
		r, err := tx.ExecContext(ctx, `DELETE FROM instances WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		rev, err := s.bump(ctx, tx)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO tombstones (rev, kind, id) VALUES (?, 'instance', ?)`, rev, id)
		return err
	})
}

// UpdateDevice stores a device's key secret, binding and status, and sets
// the state of its valid credentials to credState when that is not empty
// (revoke, key reset, release), dropping the device's earlier ended
// credentials.
func (s *sqlStore) UpdateDevice(ctx context.Context, d Device, credState string) error {
	return s.tx(ctx, "update device "+d.SN, func(tx *tx) error {
		r, err := tx.ExecContext(ctx, `UPDATE devices SET secret = ?, public_key = ?, status = ?, registered_seq = ?, registered_at = ?, probe_addrs = ?, lan_gateway = ? WHERE sn = ?`,
			d.Secret, nullKey(d.PublicKey), d.Status, int64(d.RegisteredSeq), unix(d.RegisteredAt), joinAddrs(d.ProbeAddrs), gatewayText(d.LANGateway), d.SN)
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
			if _, err := tx.ExecContext(ctx, `UPDATE credentials SET state = ? WHERE sn = ? AND state = ?`, credState, d.SN, CredValid); err != nil {
				return err
			}
		}
		return s.touch(ctx, tx, d.InstanceID)
	})
}

// BindDevice registers d: it binds d.PublicKey to the SN unless the SN is
// bound to another key or revoked (ErrConflict), replaces the device's valid
// credentials with cred, and stores the instance (its advertised prefixes),
// all in one transaction.
func (s *sqlStore) BindDevice(ctx context.Context, d Device, cred Credential, in Instance) error {
	return s.tx(ctx, "register device "+d.SN, func(tx *tx) error {
		r, err := tx.ExecContext(ctx, `UPDATE devices SET public_key = ?, status = ?, registered_seq = ?, registered_at = ?, probe_addrs = ?, lan_gateway = ?
			WHERE sn = ? AND status != ? AND (public_key IS NULL OR public_key = ?)`,
			d.PublicKey.String(), StatusRegistered, int64(d.RegisteredSeq), unix(d.RegisteredAt), joinAddrs(d.ProbeAddrs), gatewayText(d.LANGateway), d.SN, StatusRevoked, d.PublicKey.String())
		if err != nil {
			if isUniqueViolation(err) {
				return ErrConflict
			}
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
		return s.updateInstance(ctx, tx, in)
	})
}

// isUniqueViolation reports a unique constraint refusing a write (the
// same WireGuard key bound to two SNs).
func isUniqueViolation(err error) bool {
	m := err.Error()
	return strings.Contains(m, "UNIQUE constraint failed") || strings.Contains(m, "SQLSTATE 23505")
}

// CreateCCN inserts a CCN.
func (s *sqlStore) CreateCCN(ctx context.Context, c CCN) error {
	return s.tx(ctx, "create ccn "+c.Name, func(t *tx) error {
		rev, err := s.bump(ctx, t)
		if err != nil {
			return err
		}
		_, err = t.ExecContext(ctx, `INSERT INTO ccns (id, name, created_at, rev) VALUES (?, ?, ?, ?)`, c.ID, c.Name, unix(c.CreatedAt), rev)
		return err
	})
}

// PutNonce stores a registration challenge for sn until expires, and drops
// expired ones.
func (s *sqlStore) PutNonce(ctx context.Context, nonce, sn string, expires, now time.Time) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM nonces WHERE expires <= ?`, unix(now)); err != nil {
		return fmt.Errorf("store registration challenge: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO nonces (nonce, sn, expires) VALUES (?, ?, ?)`, nonce, sn, unix(expires)); err != nil {
		return fmt.Errorf("store registration challenge: %w", err)
	}
	return nil
}

// TakeNonce consumes a registration challenge: true only for the first
// taker, before it expires, for the SN it was issued to. The delete is the
// decision, so two replicas can never both take one nonce.
func (s *sqlStore) TakeNonce(ctx context.Context, nonce, sn string, now time.Time) (bool, error) {
	var got string
	var exp int64
	err := s.db.QueryRowContext(ctx, `DELETE FROM nonces WHERE nonce = ? RETURNING sn, expires`, nonce).Scan(&got, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("take registration challenge: %w", err)
	}
	return got == sn && now.Before(fromUnix(exp)), nil
}

// AppendAudit records an audit entry.
func (s *sqlStore) AppendAudit(ctx context.Context, e AuditEntry) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO audit (at, who, action, target, result, detail) VALUES (?, ?, ?, ?, ?, ?)`,
		unix(e.At), e.Who, e.Action, e.Target, e.Result, e.Detail)
	if err != nil {
		return fmt.Errorf("append audit entry: %w", err)
	}
	return nil
}

// Audit returns the last n audit entries, oldest first.
func (s *sqlStore) Audit(ctx context.Context, n int) ([]AuditEntry, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT at, who, action, target, result, detail FROM (SELECT * FROM audit ORDER BY id DESC LIMIT ?) AS last ORDER BY id`, n)
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

// Shared is false: a SQLite database has one controller process.
func (s *SQLite) Shared() bool { return false }
