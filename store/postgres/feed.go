package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/store/internal/tokindex"
	"github.com/rill-authd/rill-authd/token"
)

// applyTimeout bounds one catch-up on the feed: it runs holding amu, which writers returning
// wait for, so a stalled connection must not hold it for a TCP timeout.
const applyTimeout = 10 * time.Second

// feedBatch bounds the changes one read of the feed applies (whole writes, so a little more).
const feedBatch = 10_000

type beginner interface {
	BeginTx(ctx context.Context, o pgx.TxOptions) (pgx.Tx, error)
}

var snapshotTx = pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}

// tombstones is the in-memory set of tokens revoked within the tombstone period, so TokenAuth
// tells revoked from unknown without a query. Writes are rare (revocations); reads are checks
// of tokens the index lacks, possibly a flood, so it is sharded like the index.
type tombstones struct {
	shards [16]tombShard
	mu     sync.Mutex
	whys   atomic.Pointer[[]string] // interned reasons, few distinct; only appended to
}

type tombShard struct {
	mu sync.RWMutex
	m  map[token.ID]tombstone
}

type tombstone struct {
	at  int64 // Unix nanoseconds of the deletion
	why uint32
}

func newTombstones() *tombstones {
	d := &tombstones{}
	d.whys.Store(&[]string{})
	for i := range d.shards {
		d.shards[i].m = map[token.ID]tombstone{}
	}
	return d
}

func (d *tombstones) intern(why string) uint32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	whys := *d.whys.Load()
	for i, w := range whys {
		if w == why {
			return uint32(i)
		}
	}
	whys = append(whys, why)
	d.whys.Store(&whys)
	return uint32(len(whys) - 1)
}

func (d *tombstones) add(id token.ID, why string, at time.Time) {
	t := tombstone{at: at.UnixNano(), why: d.intern(why)}
	sh := &d.shards[id[15]&15]
	sh.mu.Lock()
	sh.m[id] = t
	sh.mu.Unlock()
}

func (d *tombstones) get(id token.ID) (string, bool) {
	sh := &d.shards[id[15]&15]
	sh.mu.RLock()
	t, ok := sh.m[id]
	sh.mu.RUnlock()
	if !ok {
		return "", false
	}
	return (*d.whys.Load())[t.why], true
}

// prune forgets tombstones older than before.
func (d *tombstones) prune(before time.Time) {
	for i := range d.shards {
		sh := &d.shards[i]
		sh.mu.Lock()
		for id, t := range sh.m {
			if t.at < before.UnixNano() {
				delete(sh.m, id)
			}
		}
		sh.mu.Unlock()
	}
}

func (d *tombstones) len() int {
	n := 0
	for i := range d.shards {
		sh := &d.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}

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

// notifyReset tells subscribers that anything may have changed, with store.ResetNotice.
func (s *DB) notifyReset() {
	cs := []store.Change{store.ResetNotice(time.Now().UTC())}
	for _, fn := range s.subs {
		fn(cs)
	}
}

// follow keeps one connection listening for change notifications and applies the feed after
// each, and at least every PollInterval; when the connection fails it reconnects with backoff
// and replays from the last applied sequence.
func (s *DB) follow(cfg *pgx.ConnConfig) {
	defer s.done.Done()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-s.stop; cancel() }()
	backoff := 50 * time.Millisecond
	for {
		err := s.listen(ctx, cfg, func() { backoff = 50 * time.Millisecond; s.connected.Store(true) })
		s.connected.Store(false)
		if ctx.Err() != nil {
			return
		}
		// What cut this connection (a restart, a failover) most likely cut the pool's too:
		// drop them, so the next request dials anew rather than failing on a dead one.
		s.pool.Reset()
		s.reconnects.Add(1)
		s.log.Warn("change feed connection lost; reconnecting", "in", backoff, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// listen runs one connection until it fails. LISTEN comes before the first read, so no
// notification between the two is lost.
func (s *DB) listen(ctx context.Context, cfg *pgx.ConnConfig, connected func()) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	s.listenPID.Store(conn.PgConn().PID())
	first := true
	for {
		s.amu.Lock()
		actx, cancel := context.WithTimeout(ctx, applyTimeout)
		err := s.applyFromDB(actx, conn, 0)
		cancel()
		s.amu.Unlock()
		if err != nil {
			return fmt.Errorf("apply changes: %w", err)
		}
		if first {
			connected()
			first = false
		}
		for {
			wctx, cancel := context.WithTimeout(ctx, s.opts.PollInterval)
			n, err := conn.WaitForNotification(wctx)
			cancel()
			if err != nil {
				if ctx.Err() == nil && (pgconn.Timeout(err) || errors.Is(err, context.DeadlineExceeded)) {
					break // poll
				}
				return fmt.Errorf("wait for changes: %w", err)
			}
			// A write this replica made, or a catch-up, may have applied it already.
			if seq, err := strconv.ParseUint(n.Payload, 10, 64); err != nil || seq > s.applied.Load() {
				break
			}
		}
	}
}

// Current says up to which sequence this replica has applied the feed, and when it last
// confirmed that nothing newer was committed. A replica that cannot confirm it is current
// (PostgreSQL unreachable) sees confirmedAt fall behind; the daemon bounds how far.
func (s *DB) Current() (applied uint64, confirmedAt time.Time) {
	return s.applied.Load(), time.Unix(0, s.confirmed.Load())
}

// Connected reports whether the connection that listens for changes is up (and has caught up
// since it connected). While it is not, this replica may miss changes until it reconnects.
func (s *DB) Connected() bool { return s.connected.Load() }

// PollInterval is how often the replica confirms it is current when nothing changes.
func (s *DB) PollInterval() time.Duration { return s.opts.PollInterval }

// Reconnects is how many times the feed connection was lost and re-established.
func (s *DB) Reconnects() uint64 { return s.reconnects.Load() }

// Subscribe implements store.Feed. Subscribers are called in sequence order, once per
// committed write, whichever replica made it; for a write made here, before it returns.
func (s *DB) Subscribe(fn func([]store.Change)) {
	s.amu.Lock()
	s.subs = append(s.subs, fn)
	s.amu.Unlock()
}

// LastSeq implements store.Feed: the newest change committed in the database, by any replica
// (Current says how far this replica has applied).
func (s *DB) LastSeq(ctx context.Context) (uint64, error) {
	if err := s.closedErr(); err != nil {
		return 0, err
	}
	var n int64
	if err := s.pool.QueryRow(ctx, "SELECT last_seq FROM feed_state").Scan(&n); err != nil {
		return 0, fmt.Errorf("read the feed state: %w", unavail(err))
	}
	return uint64(n), nil
}

// ChangesSince implements store.Feed.
func (s *DB) ChangesSince(ctx context.Context, after uint64, limit int) ([]store.Change, error) {
	if err := s.closedErr(); err != nil {
		return nil, err
	}
	var out []store.Change
	err := pgx.BeginTxFunc(ctx, s.pool, snapshotTx, func(tx pgx.Tx) error {
		var pruned int64
		if err := tx.QueryRow(ctx, "SELECT pruned FROM feed_state").Scan(&pruned); err != nil {
			return err
		}
		if after < uint64(pruned) {
			return fmt.Errorf("changes since %d (the feed starts after %d): %w", after, pruned, store.ErrFeedTruncated)
		}
		lim := int64(limit)
		if limit <= 0 {
			lim = -1
		}
		rows, err := tx.Query(ctx, "SELECT seq, kind, op, id, at FROM changes WHERE seq > $1 ORDER BY seq LIMIT CASE WHEN $2 < 0 THEN NULL ELSE $2 END", int64(after), lim)
		if err != nil {
			return err
		}
		var (
			c        store.Change
			seq, at  int64
			kind, op string
		)
		_, err = pgx.ForEachRow(rows, []any{&seq, &kind, &op, &c.ID, &at}, func() error {
			c.Seq, c.Kind, c.Op, c.Time = uint64(seq), store.ChangeKind(kind), store.ChangeOp(op), fromNanos(at)
			out = append(out, c)
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read change feed: %w", unavail(err))
	}
	return out, nil
}

// maintain prunes, now and then, changes older than the feed keeps (always keeping the newest),
// tombstones past their period and audit events past their retention. Every replica does it;
// the deletes are idempotent.
func (s *DB) maintain() {
	defer s.done.Done()
	if s.opts.MaintainInterval < 0 {
		<-s.stop
		return
	}
	t := time.NewTicker(s.opts.MaintainInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if err := s.prune(ctx, time.Now()); err != nil {
				s.log.Error("pruning the change feed, tombstones and audit", "err", err)
			}
			cancel()
		}
	}
}

func (s *DB) prune(ctx context.Context, now time.Time) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockWrite); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `WITH gone AS (
				DELETE FROM changes WHERE at < $1 AND seq < (SELECT last_seq FROM feed_state) RETURNING seq)
			UPDATE feed_state SET pruned = greatest(pruned, (SELECT coalesce(max(seq), 0) FROM gone))`,
			now.Add(-feedRetention).UnixNano())
		return err
	})
	if err != nil {
		return fmt.Errorf("prune changes: %w", err)
	}
	if _, err := s.pool.Exec(ctx, "DELETE FROM tombstones WHERE deleted_at < $1", now.Add(-tombstoneTTL)); err != nil {
		return fmt.Errorf("prune tombstones: %w", err)
	}
	s.dead.Load().prune(now.Add(-tombstoneTTL))
	if r := s.opts.AuditRetention; r > 0 {
		if _, err := s.pool.Exec(ctx, "DELETE FROM audit WHERE at < $1", now.Add(-r).UnixNano()); err != nil {
			return fmt.Errorf("prune audit: %w", err)
		}
	}
	return nil
}
