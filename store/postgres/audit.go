package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/rill-authd/rill-authd/store"
)

func (s *DB) AppendAudit(ctx context.Context, e store.AuditEvent) error {
	if err := s.closedErr(); err != nil {
		return err
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	doc, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode audit event: %w", err)
	}
	if _, err := s.pool.Exec(ctx, "INSERT INTO audit (at, actor, doc) VALUES ($1, $2, $3)", e.Time.UnixNano(), e.Actor, doc); err != nil {
		return fmt.Errorf("append audit event: %w", unavail(err))
	}
	return nil
}

// ListAudit returns matching events, oldest first; with a Limit, the newest Limit of them.
func (s *DB) ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEvent, error) {
	if err := s.closedErr(); err != nil {
		return nil, err
	}
	var since int64
	if !f.Since.IsZero() {
		since = f.Since.UnixNano()
	}
	limit := int64(f.Limit)
	if limit <= 0 {
		limit = -1
	}
	out, err := listDocs[store.AuditEvent](ctx, s.pool, `SELECT doc FROM (
			SELECT doc, at, id FROM audit WHERE at >= $1 AND ($2 = '' OR actor = $2)
			ORDER BY at DESC, id DESC LIMIT CASE WHEN $3 < 0 THEN NULL ELSE $3 END) newest
		ORDER BY at, id`, since, f.Actor, limit)
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", unavail(err))
	}
	return out, nil
}
