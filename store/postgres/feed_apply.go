package postgres

import (
	"context"
	"fmt"
	"slices"
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
	var at *int64 // of the change at seq, unless pruned
	err := pgx.BeginTxFunc(ctx, b, snapshotTx, func(tx pgx.Tx) error {
		var live int64
		err := tx.QueryRow(ctx, `SELECT last_seq, (SELECT coalesce(sum(n), 0) FROM token_counts)::bigint,
			(SELECT at FROM changes WHERE seq = feed_state.last_seq) FROM feed_state`).Scan(&seq, &live, &at)
		if err != nil {
			return fmt.Errorf("read the feed state: %w", err)
		}
		idx.Reserve(int(live))
		// The tokens of an owner whose purge is not finished are revoked already.
		rows, err := tx.Query(ctx, `SELECT t.id, t.kind, t.owner_id, t.hash, t.expires_at, t.limits, p.why, p.deleted_at
			FROM tokens t LEFT JOIN purges p ON p.owner_id = t.owner_id`)
		if err != nil {
			return fmt.Errorf("load token index: %w", err)
		}
		var (
			id, kind, owner string
			hash            []byte
			expires         int64
			limits          *string
			purged          *string
			purgedAt        *time.Time
		)
		_, err = pgx.ForEachRow(rows, []any{&id, &kind, &owner, &hash, &expires, &limits, &purged, &purgedAt}, func() error {
			if purged != nil {
				if tid, err := token.ParseID(id); err == nil {
					dead.add(tid, *purged, *purgedAt)
				}
				return nil
			}
			return indexToken(idx, id, kind, owner, hash, expires, limits)
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
	s.appliedAt.Store(0)
	if at != nil {
		s.appliedAt.Store(*at)
	}
	s.confirmed.Store(begun.UnixNano())
	return nil
}

func indexToken(idx *tokindex.Index, id, kind, owner string, hash []byte, expires int64, limits *string) error {
	tid, err := token.ParseID(id)
	if err != nil {
		return err
	}
	var h token.Hash
	if len(hash) != len(h) {
		return fmt.Errorf("token %s: hash of %d bytes", id, len(hash))
	}
	copy(h[:], hash)
	idx.Put(tid, authOf(kind, owner, h, expires, limits))
	return nil
}

// applyToken applies a token change from the feed to the index and the tombstones: tok is the
// put token's check fields (nil: deleted since, and that delete is further on in the feed);
// why and at are the tombstone of a deleted token (or of a put one deleted since), if any.
func applyToken(idx *tokindex.Index, dead *tombstones, c store.Change, tok *store.TokenAuth, why string, at time.Time) {
	// A change's id is a string naming a record of any kind; a token's is its UUID text (an id
	// that is not names no token a bearer can present).
	id, err := token.ParseID(c.ID)
	if err != nil {
		return
	}
	if c.Op == store.OpPut {
		switch {
		case tok != nil:
			idx.Put(id, *tok)
		case why != "":
			// Gone since, and revoked: by a token delete further on in the feed, or with its
			// owner (whose delete, further on too, finds no entry of it to tombstone).
			dead.add(id, why, at)
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

// applyRow is a change read from the feed with what applying it needs.
type applyRow struct {
	feedRow
	tok   *store.TokenAuth // a put token that still exists
	why   string           // the tombstone of a deleted token (or of a put one deleted since)
	whyAt time.Time
}

// partial is what a catch-up has read of the feed but not applied: the start of a write larger
// than one read, continued by the next read.
type partial struct {
	after uint64 // the sequence applied when these were read; they follow it
	rows  []applyRow
}

// applyFromDB reads the changes after the last applied one, at most up to upTo (0: all), and
// applies them in order: token puts load the token's check fields, token deletes drop it and
// remember its tombstone, an owner's delete drops all its tokens, and subscribers hear of each
// write once. Each read is bounded (feedBatch changes, applyTimeout), so no write is too large to
// follow: one larger than a read is gathered over several and applied whole. It never skips a
// sequence: it stops at a gap. A replica behind the pruned part of the feed reloads
// everything. The caller holds amu.
func (s *DB) applyFromDB(ctx context.Context, q querier, upTo uint64) error {
	var p partial
	for {
		rctx, cancel := context.WithTimeout(ctx, applyTimeout)
		more, err := s.applyBatch(rctx, q, upTo, &p)
		cancel()
		if err != nil || !more {
			return err
		}
	}
}

// catchUp is applyFromDB for the follower: it takes amu for one read at a time, so a writer
// returning waits for one bounded read at most, never for a whole catch-up.
func (s *DB) catchUp(ctx context.Context, q querier) error {
	var p partial
	for {
		s.amu.Lock()
		rctx, cancel := context.WithTimeout(ctx, applyTimeout)
		more, err := s.applyBatch(rctx, q, 0, &p)
		cancel()
		s.amu.Unlock()
		if err != nil || !more {
			return err
		}
	}
}

// applyBatch reads at most feedBatch changes after those applied and those in p, in one
// statement (one snapshot, one round trip: the feed state, the changes, and for each token
// change the token's check fields or its tombstone), applies every whole write they complete
// and keeps the rest in p. It reports whether there may be more to read.
func (s *DB) applyBatch(ctx context.Context, q querier, upTo uint64, p *partial) (bool, error) {
	begun := time.Now()
	after := s.applied.Load()
	if p.after != after {
		*p = partial{after: after} // applied meanwhile (a writer's catch-up): read afresh
	}
	from := after + uint64(len(p.rows))
	bound := int64(upTo)
	if upTo == 0 {
		bound = -1
	}
	rs, err := q.Query(ctx, `
		WITH fs AS (SELECT last_seq, pruned FROM feed_state),
		c AS (SELECT * FROM changes WHERE seq > $1 AND ($3 < 0 OR seq <= $3) ORDER BY seq LIMIT $2)
		SELECT fs.last_seq, fs.pruned, c.seq, c.write_end, c.kind, c.op, c.id, c.at,
			t.kind, t.owner_id, t.hash, t.expires_at, t.limits, d.why, d.deleted_at
		FROM fs
		LEFT JOIN c ON true
		LEFT JOIN tokens t ON c.kind = 'token' AND c.op = 'put' AND t.id = c.id
		LEFT JOIN tombstones d ON c.kind = 'token' AND d.id = c.id AND (c.op = 'delete' OR t.id IS NULL)
		ORDER BY c.seq`, int64(from), feedBatch, bound)
	if err != nil {
		return false, fmt.Errorf("read changes: %w", err)
	}
	var (
		read           int
		lastSeq, prune int64
		seq, end, at   *int64
		kind, op, id   *string
		tKind, tOwner  *string
		tHash          []byte
		tExp           *int64
		tLimits        *string
		dWhy           *string
		dAt            *time.Time
	)
	_, err = pgx.ForEachRow(rs, []any{&lastSeq, &prune, &seq, &end, &kind, &op, &id, &at, &tKind, &tOwner, &tHash, &tExp, &tLimits, &dWhy, &dAt}, func() error {
		if seq == nil {
			return nil // no changes: the feed state alone
		}
		read++
		var r applyRow
		r.Seq, r.writeEnd = uint64(*seq), uint64(*end)
		r.Kind, r.Op, r.ID, r.Time = store.ChangeKind(*kind), store.ChangeOp(*op), *id, fromNanos(*at)
		if tKind != nil {
			var h token.Hash
			if len(tHash) != len(h) {
				return fmt.Errorf("token %s: hash of %d bytes", r.ID, len(tHash))
			}
			copy(h[:], tHash)
			a := authOf(*tKind, *tOwner, h, *tExp, tLimits)
			r.tok = &a
		}
		if dWhy != nil {
			r.why, r.whyAt = *dWhy, *dAt
		}
		p.rows = append(p.rows, r)
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("read changes: %w", err)
	}
	if from < uint64(prune) {
		*p = partial{}
		return false, s.reloadTruncated(ctx, s.pool, after)
	}
	// Keep what follows on with no gap; apply the whole writes at its head.
	fr := make([]feedRow, len(p.rows))
	for i := range p.rows {
		fr[i] = p.rows[i].feedRow
	}
	gap := contiguous(after, fr) < len(fr)
	p.rows = p.rows[:contiguous(after, fr)]
	rows := p.rows[:len(wholeWrites(after, fr[:len(p.rows)]))]
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
			} else {
				applyOwnerDelete(idx, dead, r.Change)
			}
			cs = append(cs, r.Change)
		}
		s.applied.Store(rows[j-1].Seq)
		s.appliedAt.Store(nanos(rows[j-1].Time))
		for _, fn := range s.subs {
			fn(cs)
		}
		i = j
	}
	p.rows = slices.Clone(p.rows[len(rows):])
	p.after = s.applied.Load()
	more := read == feedBatch && !gap
	if !more && upTo == 0 && len(p.rows) == 0 && s.applied.Load() >= uint64(lastSeq) {
		s.confirmed.Store(begun.UnixNano())
	}
	return more, nil
}

// contiguous is how many of the leading rows follow after with no gap.
func contiguous(after uint64, rows []feedRow) int {
	for i, r := range rows {
		if r.Seq != after+uint64(i)+1 {
			return i
		}
	}
	return len(rows)
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
