package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rill-authd/rill-authd/store"
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

// GetIssuer implements store.Store.
func (s *DB) GetIssuer(ctx context.Context) (store.Issuer, error) {
	if err := s.closedErr(); err != nil {
		return store.Issuer{}, err
	}
	iss, err := readIssuer(ctx, s.pool, "")
	if err != nil {
		return store.Issuer{}, fmt.Errorf("read issuer: %w", unavail(err))
	}
	return iss, nil
}

// SwapIssuer implements store.Store: the row is locked (or, when there is none, inserted with
// ON CONFLICT) in one transaction, so of two replicas starting together one records its issuer
// and the other reads it.
func (s *DB) SwapIssuer(ctx context.Context, old, next store.Issuer) (store.Issuer, error) {
	if err := s.closedErr(); err != nil {
		return store.Issuer{}, err
	}
	doc, err := json.Marshal(next)
	if err != nil {
		return store.Issuer{}, fmt.Errorf("record issuer: %w", err)
	}
	var cur store.Issuer
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO meta (key, value) VALUES ('issuer', '') ON CONFLICT (key) DO NOTHING"); err != nil {
			return err
		}
		var err error
		if cur, err = readIssuer(ctx, tx, " FOR UPDATE"); err != nil {
			return err
		}
		if !cur.Same(old) {
			return nil
		}
		cur = next
		_, err = tx.Exec(ctx, "UPDATE meta SET value = $1 WHERE key = 'issuer'", string(doc))
		return err
	})
	if err != nil {
		return store.Issuer{}, fmt.Errorf("record issuer: %w", unavail(err))
	}
	return cur, nil
}

type queryRower interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// readIssuer reads the issuer row; none, or an empty value (a row a swap inserted to lock),
// is no issuer.
func readIssuer(ctx context.Context, q queryRower, suffix string) (store.Issuer, error) {
	var v string
	err := q.QueryRow(ctx, "SELECT value FROM meta WHERE key = 'issuer'"+suffix).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && v == "") {
		return store.Issuer{}, nil
	}
	if err != nil {
		return store.Issuer{}, err
	}
	var iss store.Issuer
	if err := json.Unmarshal([]byte(v), &iss); err != nil {
		return store.Issuer{}, fmt.Errorf("the recorded issuer %q does not parse: %w", v, err)
	}
	return iss, nil
}

// loadIssuer records a loaded snapshot's issuer, or none.
func loadIssuer(ctx context.Context, tx pgx.Tx, iss store.Issuer) error {
	if iss.URL == "" {
		_, err := tx.Exec(ctx, "DELETE FROM meta WHERE key = 'issuer'")
		return err
	}
	doc, err := json.Marshal(iss)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO meta (key, value) VALUES ('issuer', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, string(doc))
	return err
}
