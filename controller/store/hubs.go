package store

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/openvcpe/vcpe/api"
)

// The hub registry: one row per registered hub (hub groups). Registering
// again replaces the key and endpoint and keeps the name's row; the
// controller keeps the overlay address it allocated.

func splitNames(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func loadHubs(ctx context.Context, t *tx, since int64) ([]Hub, error) {
	rows, err := t.QueryContext(ctx, `SELECT name, public_key, endpoint, overlay, registered_at, last_seen FROM hubs WHERE rev > ? ORDER BY name`, since)
	if err != nil {
		return nil, fmt.Errorf("load hubs: %w", err)
	}
	defer rows.Close()
	var out []Hub
	for rows.Next() {
		var h Hub
		var pub, ep, overlay string
		var regAt, seen int64
		if err := rows.Scan(&h.Name, &pub, &ep, &overlay, &regAt, &seen); err != nil {
			return nil, fmt.Errorf("load hubs: %w", err)
		}
		if h.PublicKey, err = api.ParseKey(pub); err != nil {
			return nil, fmt.Errorf("load hub %s: %w", h.Name, err)
		}
		if h.Endpoint, err = netip.ParseAddrPort(ep); err != nil {
			return nil, fmt.Errorf("load hub %s: endpoint: %w", h.Name, err)
		}
		if h.Overlay, err = netip.ParseAddr(overlay); err != nil {
			return nil, fmt.Errorf("load hub %s: overlay: %w", h.Name, err)
		}
		h.RegisteredAt, h.LastSeen = fromUnix(regAt), fromUnix(seen)
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load hubs: %w", err)
	}
	return out, nil
}

// PutHub records a hub's registration (inserting it, or replacing the key,
// endpoint, overlay address and times of the hub of that name). A public
// key or overlay address held by another hub is ErrConflict.
func (s *sqlStore) PutHub(ctx context.Context, h Hub) error {
	return s.tx(ctx, "register hub "+h.Name, func(t *tx) error {
		rev, err := s.bump(ctx, t)
		if err != nil {
			return err
		}
		_, err = t.ExecContext(ctx, `INSERT INTO hubs (name, public_key, endpoint, overlay, registered_at, last_seen, rev) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT(name) DO UPDATE SET public_key = excluded.public_key, endpoint = excluded.endpoint, overlay = excluded.overlay,
				registered_at = excluded.registered_at, last_seen = excluded.last_seen, rev = excluded.rev`,
			h.Name, h.PublicKey.String(), h.Endpoint.String(), h.Overlay.String(), unix(h.RegisteredAt), unix(h.LastSeen), rev)
		if err != nil && isUniqueViolation(err) {
			return ErrConflict
		}
		return err
	})
}

// DeleteHub removes a hub from the registry (ErrNotFound when it is not
// there).
func (s *sqlStore) DeleteHub(ctx context.Context, name string) error {
	return s.tx(ctx, "remove hub "+name, func(t *tx) error {
		r, err := t.ExecContext(ctx, `DELETE FROM hubs WHERE name = ?`, name)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		rev, err := s.bump(ctx, t)
		if err != nil {
			return err
		}
		_, err = t.ExecContext(ctx, `INSERT INTO tombstones (rev, kind, id) VALUES (?, 'hub', ?)`, rev, name)
		return err
	})
}

// TouchHub records when a hub was last seen. It takes no revision: it is
// bookkeeping, not a change of the desired state, and replicas need not
// catch up on it.
func (s *sqlStore) TouchHub(ctx context.Context, name string, at time.Time) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE hubs SET last_seen = ? WHERE name = ? AND last_seen < ?`, unix(at), name, unix(at)); err != nil {
		return fmt.Errorf("record hub %s seen: %w", name, err)
	}
	return nil
}

// SetInstanceHubs stores the hub assignment of several instances in one
// transaction (assignments by instance ID, primary first).
func (s *sqlStore) SetInstanceHubs(ctx context.Context, assign map[string][]string) error {
	return s.tx(ctx, "store hub assignments", func(t *tx) error {
		rev, err := s.bump(ctx, t)
		if err != nil {
			return err
		}
		for id, hubs := range assign {
			r, err := t.ExecContext(ctx, `UPDATE instances SET hubs = ?, rev = ? WHERE id = ?`, strings.Join(hubs, ","), rev, id)
			if err != nil {
				return err
			}
			if n, _ := r.RowsAffected(); n == 0 {
				return ErrNotFound
			}
		}
		return nil
	})
}
