package store

import (
	"context"
	"fmt"
	"time"
)

// PruneAudit deletes audit entries older than before and all but the
// newest keep entries. It returns how many it deleted.
func (s *SQLite) PruneAudit(ctx context.Context, before time.Time, keep int) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM audit WHERE at < ? OR id <= (SELECT COALESCE(MAX(id), 0) FROM audit) - ?`, unix(before), keep)
	if err != nil {
		return 0, fmt.Errorf("prune audit log: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
