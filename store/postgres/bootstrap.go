package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Bootstrap runs fn once in the database's life. A session advisory lock held across the check,
// fn and the marker makes replicas that start together run it once: the others wait, then find
// the marker.
func (s *DB) Bootstrap(ctx context.Context, fn func(ctx context.Context) error) (bool, error) {
	if err := s.closedErr(); err != nil {
		return false, err
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return false, fmt.Errorf("bootstrap: %w", unavail(err))
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", lockBootstrap); err != nil {
		return false, fmt.Errorf("bootstrap: take the lock: %w", unavail(err))
	}
	defer func() {
		// A lost unlock would block every later bootstrap; closing the session drops the lock.
		if _, err := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", lockBootstrap); err != nil {
			_ = conn.Conn().Close(context.Background())
		}
	}()
	var at string
	err = conn.QueryRow(ctx, "SELECT value FROM meta WHERE key = 'bootstrapped'").Scan(&at)
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return false, fmt.Errorf("bootstrap: %w", unavail(err))
	}
	if err := fn(ctx); err != nil {
		return false, fmt.Errorf("bootstrap: %w", unavail(err))
	}
	_, err = conn.Exec(ctx, "INSERT INTO meta (key, value) VALUES ('bootstrapped', $1)", time.Now().UTC().Format(time.RFC3339))
	if err != nil {
		return false, fmt.Errorf("bootstrap: mark done: %w", unavail(err))
	}
	return true, nil
}
