package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

var (
	_ store.TombstoneLister = (*DB)(nil)
	_ store.ImportLedger    = (*DB)(nil)
)

// ListTombstones implements store.TombstoneLister: the tombstones still in their period.
func (s *DB) ListTombstones(ctx context.Context) ([]store.Tombstone, error) {
	if err := s.closedErr(); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, "SELECT id, why, deleted_at FROM tombstones WHERE deleted_at > $1",
		time.Now().Add(-tombstoneTTL))
	if err != nil {
		return nil, fmt.Errorf("list tombstones: %w", mapErr(err))
	}
	var out []store.Tombstone
	var id, why string
	var at time.Time
	_, err = pgx.ForEachRow(rows, []any{&id, &why, &at}, func() error {
		tid, err := token.ParseID(id)
		if err != nil {
			return fmt.Errorf("tombstone %q: %w", id, err)
		}
		out = append(out, store.Tombstone{ID: tid, Why: why, At: at.UTC()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list tombstones: %w", mapErr(err))
	}
	return out, nil
}

// MarkImported implements store.ImportLedger.
func (s *DB) MarkImported(ctx context.Context, ids []token.ID, at time.Time) error {
	if err := s.closedErr(); err != nil {
		return err
	}
	for len(ids) > 0 {
		n := min(len(ids), 10_000)
		strs := make([]string, n)
		for i, id := range ids[:n] {
			strs[i] = id.String()
		}
		if _, err := s.pool.Exec(ctx, `INSERT INTO imported_tokens (id, imported_at) SELECT unnest($1::text[]), $2
			ON CONFLICT (id) DO NOTHING`, strs, at); err != nil {
			return fmt.Errorf("mark imported tokens: %w", mapErr(err))
		}
		ids = ids[n:]
	}
	return nil
}

// ImportedTokens implements store.ImportLedger.
func (s *DB) ImportedTokens(ctx context.Context) ([]store.ImportedToken, error) {
	if err := s.closedErr(); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, "SELECT id, imported_at FROM imported_tokens")
	if err != nil {
		return nil, fmt.Errorf("read the import ledger: %w", mapErr(err))
	}
	var out []store.ImportedToken
	var id string
	var at time.Time
	_, err = pgx.ForEachRow(rows, []any{&id, &at}, func() error {
		tid, err := token.ParseID(id)
		if err != nil {
			return fmt.Errorf("import ledger entry %q: %w", id, err)
		}
		out = append(out, store.ImportedToken{ID: tid, At: at.UTC()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the import ledger: %w", mapErr(err))
	}
	return out, nil
}

// copyDurable writes snap's tombstones and import ledger. They are inserted, not copied: a
// store without records may still hold tombstones and ledger entries of its own, which stay (a
// ledger entry is for good; a tombstone keeps the earlier of the two times).
func copyDurable(ctx context.Context, tx pgx.Tx, snap store.Snapshot) error {
	for len(snap.Tombstones) > 0 {
		n := min(len(snap.Tombstones), 10_000)
		ids, whys, ats := make([]string, n), make([]string, n), make([]time.Time, n)
		for i, t := range snap.Tombstones[:n] {
			ids[i], whys[i], ats[i] = t.ID.String(), t.Why, t.At
		}
		if _, err := tx.Exec(ctx, `INSERT INTO tombstones (id, why, deleted_at)
			SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[]) ON CONFLICT (id) DO NOTHING`, ids, whys, ats); err != nil {
			return fmt.Errorf("tombstones: %w", err)
		}
		snap.Tombstones = snap.Tombstones[n:]
	}
	for len(snap.Imported) > 0 {
		n := min(len(snap.Imported), 10_000)
		ids, ats := make([]string, n), make([]time.Time, n)
		for i, t := range snap.Imported[:n] {
			ids[i], ats[i] = t.ID.String(), t.At
		}
		if _, err := tx.Exec(ctx, `INSERT INTO imported_tokens (id, imported_at)
			SELECT * FROM unnest($1::text[], $2::timestamptz[]) ON CONFLICT (id) DO NOTHING`, ids, ats); err != nil {
			return fmt.Errorf("import ledger: %w", err)
		}
		snap.Imported = snap.Imported[n:]
	}
	return nil
}
