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

// reload replaces the token index and the tombstones with ones loaded from one snapshot, and
// notes the sequence that snapshot is current to, so the feed is followed from exactly there.
// On open nothing else runs; later (the feed was truncated past this replica) the caller holds
// amu.
func (s *DB) reload(ctx context.Context, b beginner) error {
	begun := time.Now()
	idx, dead := tokindex.New(), newTombstones()
	var seq int64
	err := pgx.BeginTxFunc(ctx, b, snapshotTx, func(tx pgx.Tx) error {
		var live int64
		err := tx.QueryRow(ctx, "SELECT last_seq, (SELECT coalesce(sum(n), 0) FROM token_counts)::bigint FROM feed_state").Scan(&seq, &live)
		if err != nil {
			return fmt.Errorf("read the feed state: %w", err)
		}
		idx.Reserve(int(live))
		rows, err := tx.Query(ctx, "SELECT id, kind, owner_id, hash, expires_at FROM tokens")
		if err != nil {
			return fmt.Errorf("load token index: %w", err)
		}
		var (
			id, kind, owner string
			hash            []byte
			expires         int64
		)
		_, err = pgx.ForEachRow(rows, []any{&id, &kind, &owner, &hash, &expires}, func() error {
			return indexToken(idx, id, kind, owner, hash, expires)
		})
		if err != nil {
			return fmt.Errorf("load token index: %w", err)
		}
		rows, err = tx.Query(ctx, "SELECT id, why, deleted_at FROM tombstones WHERE deleted_at > now() - $1::interval", tombstoneTTL.String())
		if err != nil {
			return fmt.Errorf("load tombstones: %w", err)
		}
		var (
			why string
			at  time.Time
		)
		_, err = pgx.ForEachRow(rows, []any{&id, &why, &at}, func() error {
			if tid, err := token.ParseID(id); err == nil { // else no bearer token can name it
				dead.add(tid, why, at)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("load tombstones: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.idx.Store(idx)
	s.dead.Store(dead)
	s.applied.Store(uint64(seq))
	s.confirmed.Store(begun.UnixNano())
	return nil
}

func indexToken(idx *tokindex.Index, id, kind, owner string, hash []byte, expires int64) error {
	tid, err := token.ParseID(id)
	if err != nil {
		return err
	}
	var h token.Hash
	if len(hash) != len(h) {
		return fmt.Errorf("token %s: hash of %d bytes", id, len(hash))
	}
	copy(h[:], hash)
	idx.Put(tid, token.Kind(kind), owner, h, fromNanos(expires))
	return nil
}

// applyToken applies a token change from the feed to the index and the tombstones: tok is the
// put token's check fields (nil: deleted since, and that delete is further on in the feed);
// why and at are a deleted token's tombstone, if it has one.
func applyToken(idx *tokindex.Index, dead *tombstones, c store.Change, tok *store.TokenAuth, why string, at time.Time) {
	// A change's id is a string naming a record of any kind; a token's is its UUID text (an id
	// that is not names no token a bearer can present).
	id, err := token.ParseID(c.ID)
	if err != nil {
		return
	}
	if c.Op == store.OpPut {
		if tok != nil {
			idx.Put(id, tok.Kind, tok.OwnerID, tok.Hash, tok.ExpiresAt)
		}
		return
	}
	if why == "" {
		why, at = "revoked", c.Time
	}
	dead.add(id, why, at) // before the removal, so a check never sees it unknown
	idx.Remove(id)
}

type feedRow struct {
	store.Change
	writeEnd uint64
}

// applyFromDB reads the changes after the last applied one from one snapshot, at most up to
// upTo (0: all), and applies them in order: token puts load the token's check fields, token
// deletes drop it and remember its tombstone, and subscribers hear of each write once. It
// never skips a sequence: it stops at a gap and applies only whole writes. A replica behind
// the pruned part of the feed reloads everything. The caller holds amu.
func (s *DB) applyFromDB(ctx context.Context, q querier, upTo uint64) error {
	for {
		n, err := s.applyBatch(ctx, q, upTo)
		if err != nil {
			return err
		}
		if n < feedBatch {
			return nil
		}
	}
}

func (s *DB) applyBatch(ctx context.Context, q querier, upTo uint64) (int, error) {
	begun := time.Now()
	after := s.applied.Load()
	bound := int64(upTo)
	if upTo == 0 {
		bound = -1
	}
	// One statement, so one snapshot and one round trip: the feed state, the changes (whole
	// writes), and for each token change the token's check fields or its tombstone.
	rs, err := q.Query(ctx, `
		WITH fs AS (SELECT last_seq, pruned FROM feed_state),
		bound AS (SELECT max(write_end) AS e FROM changes WHERE seq > $1 AND seq <= $1 + $2),
		c AS (SELECT changes.* FROM changes, bound WHERE seq > $1 AND seq <= bound.e AND ($3 < 0 OR seq <= $3))
		SELECT fs.last_seq, fs.pruned, c.seq, c.write_end, c.kind, c.op, c.id, c.at,
			t.kind, t.owner_id, t.hash, t.expires_at, d.why, d.deleted_at
		FROM fs
		LEFT JOIN c ON true
		LEFT JOIN tokens t ON c.kind = 'token' AND c.op = 'put' AND t.id = c.id
		LEFT JOIN tombstones d ON c.kind = 'token' AND c.op = 'delete' AND d.id = c.id
		ORDER BY c.seq`, int64(after), feedBatch, bound)
	if err != nil {
		return 0, fmt.Errorf("read changes: %w", err)
	}
	type row struct {
		feedRow
		tok   *store.TokenAuth // a put token that still exists
		why   string           // a deleted token's tombstone
		whyAt time.Time
	}
	var (
		rows           []row
		lastSeq, prune int64
		seq, end, at   *int64
		kind, op, id   *string
		tKind, tOwner  *string
		tHash          []byte
		tExp           *int64
		dWhy           *string
		dAt            *time.Time
	)
	_, err = pgx.ForEachRow(rs, []any{&lastSeq, &prune, &seq, &end, &kind, &op, &id, &at, &tKind, &tOwner, &tHash, &tExp, &dWhy, &dAt}, func() error {
		if seq == nil {
			return nil // no changes: the feed state alone
		}
		var r row
		r.Seq, r.writeEnd = uint64(*seq), uint64(*end)
		r.Kind, r.Op, r.ID, r.Time = store.ChangeKind(*kind), store.ChangeOp(*op), *id, fromNanos(*at)
		if tKind != nil {
			var h token.Hash
			if len(tHash) != len(h) {
				return fmt.Errorf("token %s: hash of %d bytes", r.ID, len(tHash))
			}
			copy(h[:], tHash)
			r.tok = &store.TokenAuth{Kind: token.Kind(*tKind), OwnerID: *tOwner, Hash: h, ExpiresAt: fromNanos(*tExp)}
		}
		if dWhy != nil {
			r.why, r.whyAt = *dWhy, *dAt
		}
		rows = append(rows, r)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("read changes: %w", err)
	}
	if after < uint64(prune) {
		return 0, s.reloadTruncated(ctx, s.pool, after)
	}
	fr := make([]feedRow, len(rows))
	for i := range rows {
		fr[i] = rows[i].feedRow
	}
	rows = rows[:len(wholeWrites(after, fr))]
	idx, dead := s.idx.Load(), s.dead.Load()
	for i := 0; i < len(rows); {
		j := i
		for j < len(rows) && rows[j].Seq <= rows[i].writeEnd {
			j++
		}
		cs := make([]store.Change, 0, j-i)
		for _, r := range rows[i:j] {
			if r.Kind == store.ChangeToken {
				applyToken(idx, dead, r.Change, r.tok, r.why, r.whyAt)
			}
			cs = append(cs, r.Change)
		}
		s.applied.Store(rows[j-1].Seq)
		for _, fn := range s.subs {
			fn(cs)
		}
		i = j
	}
	if upTo == 0 && s.applied.Load() >= uint64(lastSeq) {
		s.confirmed.Store(begun.UnixNano())
	}
	return len(rows), nil
}

// wholeWrites keeps the leading rows that follow after with no gap and end on a write's end.
// Under the write lock gaps cannot be seen (a sequence is allocated only after the previous
// write committed); this is the guard that makes "no change skipped" not depend on it.
func wholeWrites(after uint64, rows []feedRow) []feedRow {
	n := 0
	for i, r := range rows {
		if r.Seq != after+uint64(i)+1 {
			break
		}
		if r.Seq == r.writeEnd {
			n = i + 1
		}
	}
	return rows[:n]
}

// reloadTruncated rebuilds the in-memory state of a replica that fell behind the pruned part
// of the feed, and tells subscribers that anything may have changed (a signing-key delete
// drops key caches, and every change that is a delete drops decision caches).
func (s *DB) reloadTruncated(ctx context.Context, b beginner, after uint64) error {
	s.log.Warn("the change feed was pruned past this replica; reloading everything", "applied", after)
	if err := s.reload(ctx, b); err != nil {
		return fmt.Errorf("reload after a truncated feed: %w", err)
	}
	s.notifyReset()
	return nil
}
