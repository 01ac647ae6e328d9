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

// copyDurable writes snap's tombstones and import ledger with COPY.
func copyDurable(ctx context.Context, tx pgx.Tx, snap store.Snapshot) error {
	tomb := make([][]any, len(snap.Tombstones))
	for i, t := range snap.Tombstones {
		tomb[i] = []any{t.ID.String(), t.Why, t.At}
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"tombstones"}, []string{"id", "why", "deleted_at"}, pgx.CopyFromRows(tomb)); err != nil {
		return fmt.Errorf("tombstones: %w", err)
	}
	imp := make([][]any, len(snap.Imported))
	for i, t := range snap.Imported {
		imp[i] = []any{t.ID.String(), t.At}
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"imported_tokens"}, []string{"id", "imported_at"}, pgx.CopyFromRows(imp)); err != nil {
		return fmt.Errorf("import ledger: %w", err)
	}
	return nil
}
