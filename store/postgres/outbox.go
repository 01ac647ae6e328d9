package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

const outboxCols = "id, sink, body, created_at, attempts, next_at, last_error, lease_until, done_at"

func scanNotification(row pgx.Row) (store.Notification, error) {
	var x store.Notification
	var created, next, lease, done int64
	if err := row.Scan(&x.ID, &x.Sink, &x.Body, &created, &x.Attempts, &next, &x.LastError, &lease, &done); err != nil {
		return store.Notification{}, err
	}
	x.CreatedAt, x.NextAt, x.LeaseUntil, x.DoneAt = fromNanos(created), fromNanos(next), fromNanos(lease), fromNanos(done)
	return x, nil
}

// EnqueueNotifications implements store.Outbox: one transaction; ON CONFLICT keeps the first
// row of an ID, whichever replica wrote it.
func (s *DB) EnqueueNotifications(ctx context.Context, ns []store.Notification) (int, error) {
	if err := s.closedErr(); err != nil {
		return 0, err
	}
	n := 0
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		n, err = enqueue(ctx, tx, ns)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("enqueue notifications: %w", unavail(err))
	}
	return n, nil
}

// ClaimNotifications implements store.Outbox: rows another replica is claiming are skipped
// (SKIP LOCKED), and rows it claimed carry its lease, so no row is claimed twice at once.
func (s *DB) ClaimNotifications(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]store.Notification, error) {
	if err := s.closedErr(); err != nil {
		return nil, err
	}
	lim := int64(limit)
	if lim <= 0 {
		lim = -1
	}
	rows, err := s.pool.Query(ctx, `UPDATE outbox SET lease_until = $2 WHERE id IN (
			SELECT id FROM outbox WHERE done_at = 0 AND next_at <= $1 AND lease_until <= $1
			ORDER BY next_at, id LIMIT CASE WHEN $3 < 0 THEN NULL ELSE $3 END
			FOR UPDATE SKIP LOCKED)
		RETURNING `+outboxCols, now.UnixNano(), now.Add(lease).UnixNano(), lim)
	if err != nil {
		return nil, fmt.Errorf("claim notifications: %w", unavail(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Notification, error) { return scanNotification(r) })
	if err != nil {
		return nil, fmt.Errorf("claim notifications: %w", unavail(err))
	}
	// RETURNING is in no particular order.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].NextAt.Before(out[j-1].NextAt); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out, nil
}

func (s *DB) execOne(ctx context.Context, what, id, sql string, args ...any) error {
	if err := s.closedErr(); err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, id, unavail(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s %s: %w", what, id, store.ErrNotFound)
	}
	return nil
}

// FinishNotification implements store.Outbox.
func (s *DB) FinishNotification(ctx context.Context, id string, now time.Time) error {
	return s.execOne(ctx, "finish notification", id,
		"UPDATE outbox SET done_at = $2, lease_until = 0 WHERE id = $1", id, now.UnixNano())
}

// RetryNotification implements store.Outbox.
func (s *DB) RetryNotification(ctx context.Context, id string, next time.Time, lastErr string) error {
	return s.execOne(ctx, "retry notification", id,
		"UPDATE outbox SET attempts = attempts + 1, next_at = $2, last_error = $3, lease_until = 0 WHERE id = $1",
		id, next.UnixNano(), lastErr)
}

// GetNotification implements store.Outbox.
func (s *DB) GetNotification(ctx context.Context, id string) (store.Notification, error) {
	if err := s.closedErr(); err != nil {
		return store.Notification{}, err
	}
	x, err := scanNotification(s.pool.QueryRow(ctx, "SELECT "+outboxCols+" FROM outbox WHERE id = $1", id))
	if errors.Is(err, pgx.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.Notification{}, fmt.Errorf("notification %s: %w", id, unavail(err))
	}
	return x, nil
}

// PruneNotifications implements store.Outbox.
func (s *DB) PruneNotifications(ctx context.Context, before time.Time) (int, error) {
	if err := s.closedErr(); err != nil {
		return 0, err
	}
	tag, err := s.pool.Exec(ctx, "DELETE FROM outbox WHERE done_at > 0 AND done_at < $1", before.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("prune notifications: %w", unavail(err))
	}
	return int(tag.RowsAffected()), nil
}

// ExpiringTokens implements store.Outbox, on the tokens_expires_at index.
func (s *DB) ExpiringTokens(ctx context.Context, from, to time.Time, limit int) ([]store.Token, error) {
	if err := s.closedErr(); err != nil {
		return nil, err
	}
	lim := int64(limit)
	if lim <= 0 {
		lim = -1
	}
	rows, err := s.pool.Query(ctx, "SELECT "+tokenCols+` FROM tokens t WHERE t.expires_at > $1 AND t.expires_at <= $2
		AND NOT EXISTS (SELECT FROM purges p WHERE p.owner_id = t.owner_id)
		ORDER BY t.expires_at, t.id COLLATE "C" LIMIT CASE WHEN $3 < 0 THEN NULL ELSE $3 END`, from.UnixNano(), to.UnixNano(), lim)
	if err != nil {
		return nil, fmt.Errorf("expiring tokens: %w", unavail(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Token, error) {
		var t store.Token
		err := scanToken(r, &t)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("expiring tokens: %w", unavail(err))
	}
	return out, nil
}

// enqueue inserts the notifications of ns whose ID is new in tx, and says how many.
func enqueue(ctx context.Context, tx pgx.Tx, ns []store.Notification) (int, error) {
	n := 0
	for _, x := range ns {
		if x.ID == "" {
			return 0, errors.New("notification without an id")
		}
		if x.CreatedAt.IsZero() {
			x.CreatedAt = time.Now()
		}
		if x.NextAt.IsZero() {
			x.NextAt = x.CreatedAt
		}
		tag, err := tx.Exec(ctx, `INSERT INTO outbox (id, sink, body, created_at, attempts, next_at, last_error)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING`,
			x.ID, x.Sink, x.Body, nanos(x.CreatedAt), x.Attempts, nanos(x.NextAt), x.LastError)
		if err != nil {
			return 0, err
		}
		n += int(tag.RowsAffected())
	}
	return n, nil
}

// DeleteTokenNotify implements store.Outbox: DeleteToken's transaction inserts the rows too.
func (s *DB) DeleteTokenNotify(ctx context.Context, id token.ID, ns []store.Notification) error {
	err := s.write(ctx, func(w *wtx) error {
		n, err := deleteTokens(w, "id = $1 AND NOT EXISTS (SELECT FROM purges p WHERE p.owner_id = tokens.owner_id)", "revoked", id.String())
		if err == nil && n == 0 {
			err = fmt.Errorf("token %s: %w", id, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		_, err = enqueue(ctx, w.Tx, ns)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete token: %w", err)
	}
	return nil
}

// ListNotifications implements store.NotificationLister.
func (s *DB) ListNotifications(ctx context.Context) ([]store.Notification, error) {
	if err := s.closedErr(); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, "SELECT "+outboxCols+" FROM outbox")
	if err != nil {
		return nil, fmt.Errorf("list notifications: %w", unavail(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Notification, error) { return scanNotification(r) })
	if err != nil {
		return nil, fmt.Errorf("list notifications: %w", unavail(err))
	}
	return out, nil
}
