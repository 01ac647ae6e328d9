package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/store/internal/tokindex"
	"github.com/rill-authd/rill-authd/token"
)

// purgeBatch bounds the tokens one purge transaction moves to tombstones (a variable for tests).
var purgeBatch = 5_000

// purgeStale is how old a purge must be before maintenance takes it over: a younger one is
// likely still being finished by the replica that deleted the owner.
const purgeStale = time.Minute

// applyOwnerDelete revokes in memory every token of the owner c deletes: their tombstones
// first, so a check never finds one of them unknown, then their index entries.
func applyOwnerDelete(idx *tokindex.Index, dead *tombstones, c store.Change) {
	kind, ok := c.OwnerDelete()
	if !ok {
		return
	}
	why := string(c.Kind) + " deleted"
	dead.addAll(idx.Owned(kind, c.ID), why, c.Time)
	idx.RemoveOwner(kind, c.ID)
}

// deleteOwner deletes an owner (del deletes its row) and revokes all its tokens, and returns
// how many. The write holding the lock is short whatever the owner holds: the owner's row goes,
// a purge row makes every read skip its tokens, and one change (the owner's delete) makes every
// replica drop all of them from its index at once. The tokens are then moved to tombstones in
// batches of purgeBatch, each its own transaction without the write lock (they change no
// decision: they are revoked already), the purge row going with the last. Should that stop part
// way (PostgreSQL lost), the owner is still deleted and its tokens refused; maintenance on any
// replica finishes it.
//
// also, when not nil, runs in the same write after the owner's row is gone (a user's delete
// revokes the tokens the user issued to act as others).
func (s *DB) deleteOwner(ctx context.Context, kind token.Kind, owner, del, what string, also func(w *wtx) error) (int, error) {
	ck := store.OwnerChange(kind)
	why := string(ck) + " deleted"
	var at time.Time
	var held int
	err := s.write(ctx, func(w *wtx) error {
		tag, err := w.Exec(ctx, del, owner)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf(what+": %w", owner, store.ErrNotFound)
		}
		if also != nil {
			if err := also(w); err != nil {
				return err
			}
		}
		_, err = w.Exec(ctx, `INSERT INTO purges (owner_id, kind, why, deleted_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (owner_id) DO UPDATE SET kind = excluded.kind, why = excluded.why, deleted_at = excluded.deleted_at`,
			owner, string(kind), why, w.now)
		if err != nil {
			return fmt.Errorf("record the purge: %w", err)
		}
		if err := w.QueryRow(ctx, "SELECT count(*) FROM tokens WHERE owner_id = $1", owner).Scan(&held); err != nil {
			return fmt.Errorf("count the owner's tokens: %w", err)
		}
		w.change(ck, store.OpDelete, owner)
		at = w.now
		return nil
	})
	if err != nil {
		return 0, err
	}
	// The owner is gone and its tokens are refused everywhere. Moving them to tombstones runs
	// on its own, not in the caller's request: the request waits for it at most purgeWait
	// (most owners hold few tokens), so an owner of a million tokens does not outlast the
	// HTTP write timeout. Closing the store stops it; maintenance finishes it.
	finished := make(chan struct{})
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		defer close(finished)
		pctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-s.stop:
				cancel()
			case <-pctx.Done():
			}
		}()
		if n, err := s.purge(pctx, owner, why, at); err != nil {
			s.log.Error("moving the tokens of a deleted owner to tombstones (they are refused already); maintenance finishes it",
				"owner", owner, "moved", n, "err", err)
		}
	}()
	wait := s.opts.purgeWait
	if wait <= 0 {
		wait = purgeWait
	}
	select {
	case <-finished:
	case <-time.After(wait):
		s.log.Info("the tokens of a deleted owner move to tombstones in the background (they are refused already)", "owner", owner, "tokens", held)
	}
	return held, nil
}

// purgeWait is how long a delete waits for its owner's tokens to reach tombstones.
const purgeWait = 5 * time.Second

// purge moves a deleted owner's tokens to tombstones in batches, then drops its purge row, and
// returns how many tokens it moved.
func (s *DB) purge(ctx context.Context, owner, why string, at time.Time) (int, error) {
	total := 0
	for idle := 0; ; {
		var n int
		var done bool
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			var err error
			n, done, err = purgeTokens(ctx, tx, owner, why, at, purgeBatch)
			return err
		})
		if err != nil {
			return total, fmt.Errorf("purge the tokens of %s: %w", owner, unavail(err))
		}
		total += n
		if done {
			return total, nil
		}
		if n == 0 { // what is left is locked (a last-used update): wait for it
			if idle++; idle > 100 {
				return total, fmt.Errorf("purge the tokens of %s: tokens stay locked", owner)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// purgeTokens moves at most limit (<= 0: all) of owner's tokens to tombstones, keeping the
// counts; when that leaves none, it drops the owner's purge row and reports done. Rows another
// transaction holds (TouchTokens, a concurrent purge) are skipped, not waited for, so a purge
// never deadlocks with them whatever order it takes rows in; and rows are taken in the order
// of the owner's index, so each batch costs its own rows, not a sort of all that are left.
func purgeTokens(ctx context.Context, tx pgx.Tx, owner, why string, at time.Time, limit int) (int, bool, error) {
	lim := int64(limit)
	if limit <= 0 {
		lim = -1
	}
	pick := "LIMIT $4 FOR UPDATE SKIP LOCKED"
	if limit <= 0 { // all of them: wait for any held, taking them in the order others lock them
		pick = `AND $4::bigint < 0 ORDER BY id COLLATE "C" FOR UPDATE`
	}
	rows, err := tx.Query(ctx, `WITH gone AS (DELETE FROM tokens WHERE id IN (
			SELECT id FROM tokens WHERE owner_id = $1 `+pick+`) RETURNING id, kind),
		tomb AS (INSERT INTO tombstones (id, why, deleted_at) SELECT id, $2, $3 FROM gone
			ON CONFLICT (id) DO UPDATE SET why = excluded.why, deleted_at = excluded.deleted_at)
		SELECT kind, count(*) FROM gone GROUP BY kind`, owner, why, at, lim)
	if err != nil {
		return 0, false, err
	}
	counts := map[token.Kind]int64{}
	var (
		kind string
		c    int64
	)
	if _, err := pgx.ForEachRow(rows, []any{&kind, &c}, func() error { counts[token.Kind(kind)] += c; return nil }); err != nil {
		return 0, false, err
	}
	n := 0
	for k, c := range counts {
		if err := addTokenCountTx(ctx, tx, k, -c); err != nil {
			return 0, false, err
		}
		n += int(c)
	}
	if limit > 0 && n == limit {
		return n, false, nil
	}
	var left bool
	if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT FROM tokens WHERE owner_id = $1)", owner).Scan(&left); err != nil {
		return 0, false, err
	}
	if left {
		return n, false, nil
	}
	if _, err := tx.Exec(ctx, "DELETE FROM purges WHERE owner_id = $1", owner); err != nil {
		return 0, false, err
	}
	return n, true, nil
}

// finishPurge moves, inside w, what is left of a purge of owner (one cut short), so that an
// owner created again under the id of one deleted never gets the old tokens back.
func finishPurge(w *wtx, owner string) error {
	var why string
	var at time.Time
	err := w.QueryRow(w.ctx, "SELECT why, deleted_at FROM purges WHERE owner_id = $1", owner).Scan(&why, &at)
	if err == pgx.ErrNoRows {
		return nil
	}
	if err != nil {
		return err
	}
	_, _, err = purgeTokens(w.ctx, w.Tx, owner, why, at, 0)
	return err
}

// resumePurges finishes the purges older than purgeStale (their replica stopped or lost
// PostgreSQL part way).
func (s *DB) resumePurges(ctx context.Context, now time.Time) error {
	rows, err := s.pool.Query(ctx, "SELECT owner_id, why, deleted_at FROM purges WHERE deleted_at < $1", now.Add(-purgeStale))
	if err != nil {
		return fmt.Errorf("read purges: %w", err)
	}
	type job struct {
		owner, why string
		at         time.Time
	}
	var jobs []job
	var j job
	if _, err := pgx.ForEachRow(rows, []any{&j.owner, &j.why, &j.at}, func() error { jobs = append(jobs, j); return nil }); err != nil {
		return fmt.Errorf("read purges: %w", err)
	}
	for _, j := range jobs {
		s.log.Info("finishing the token purge of a deleted owner", "owner", j.owner)
		if _, err := s.purge(ctx, j.owner, j.why, j.at); err != nil {
			return err
		}
	}
	return nil
}
