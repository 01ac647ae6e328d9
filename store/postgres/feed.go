package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rill-authd/rill-authd/store"
)

// applyTimeout bounds one read of the feed (at most feedBatch changes, whatever the size of the
// write they belong to): it runs holding amu, which writers returning wait for, so a stalled
// connection must not hold it for a TCP timeout.
const applyTimeout = 10 * time.Second

// feedBatch bounds the changes one read of the feed returns (a variable for tests).
var feedBatch = 5_000

type beginner interface {
	BeginTx(ctx context.Context, o pgx.TxOptions) (pgx.Tx, error)
}

var snapshotTx = pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}

// notifyReset tells subscribers that anything may have changed, with store.ResetNotice.
func (s *DB) notifyReset() {
	cs := []store.Change{store.ResetNotice(time.Now().UTC())}
	for _, fn := range s.subs {
		fn(cs)
	}
}

// reconnectMax caps the wait between two attempts to reconnect the feed: well under a second,
// so that with the connect and the catch-up a replica is current within a second of PostgreSQL
// answering again (BenchmarkTimeToCurrentAfterRestart).
const reconnectMax = 500 * time.Millisecond

// lostLogEvery is the window of the "connection lost" line: while PostgreSQL is down the
// follower retries every reconnectMax or sooner (three lines a second per replica once), so the
// first of each window is logged and the rest counted in one line at its end (logsample).
const lostLogEvery = 10 * time.Second

// connectTimeout bounds one attempt to connect the feed, so an unreachable host (packets
// dropped, not refused) costs a retry, not a TCP timeout.
const connectTimeout = 5 * time.Second

// follow keeps one connection listening for change notifications and applies the feed after
// each, and at least every PollInterval; when the connection fails it reconnects with backoff
// (50 ms doubling to reconnectMax, each wait drawn between half of it and all of it, so
// replicas that lost PostgreSQL together do not retry in step) and replays from the last applied
// sequence. A new connection of the pool (PostgreSQL answers again) ends the wait at once.
func (s *DB) follow(cfg *pgx.ConnConfig) {
	defer s.done.Done()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-s.stop; cancel() }()
	maxWait := s.opts.reconnectMax
	if maxWait <= 0 {
		maxWait = reconnectMax
	}
	backoff := min(50*time.Millisecond, maxWait)
	for {
		err := s.listen(ctx, cfg, func() { backoff = min(50*time.Millisecond, maxWait); s.connected.Store(true) })
		s.connected.Store(false)
		if ctx.Err() != nil {
			return
		}
		// What cut this connection (a restart, a failover) most likely cut the pool's too:
		// drop them, so the next request dials anew rather than failing on a dead one. Only a
		// pool connection made from now on says PostgreSQL is back.
		s.pool.Reset()
		select {
		case <-s.poolUp:
		default:
		}
		s.reconnects.Add(1)
		wait := backoff/2 + rand.N(backoff/2+1)
		if s.lostLog.Allow("", slog.LevelWarn) {
			s.log.Warn("change feed connection lost; reconnecting", "in", wait.Round(time.Millisecond), "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		case <-s.poolUp:
		}
		backoff = min(backoff*2, maxWait)
	}
}

// poolConnected is the pool's AfterConnect: it wakes a follower waiting to reconnect.
func (s *DB) poolConnected(context.Context, *pgx.Conn) error {
	select {
	case s.poolUp <- struct{}{}:
	default:
	}
	return nil
}

// listen runs one connection until it fails. LISTEN comes before the first read, so no
// notification between the two is lost.
func (s *DB) listen(ctx context.Context, cfg *pgx.ConnConfig, connected func()) error {
	began := time.Now()
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	conn, err := pgx.ConnectConfig(cctx, cfg)
	cancel()
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	s.listenPID.Store(conn.PgConn().PID())
	// Usually nothing was written while the connection was down: one read of the feed state
	// says so, much cheaper than a read of the feed on a server just restarted (cold caches).
	current, err := s.confirmQuiet(ctx, conn)
	if err != nil {
		return fmt.Errorf("read the feed state: %w", err)
	}
	first := true
	for {
		if !current {
			if err := s.catchUp(ctx, conn); err != nil {
				return fmt.Errorf("apply changes: %w", err)
			}
		}
		current = false
		if first {
			connected()
			first = false
			if s.reconnects.Load() > 0 {
				s.log.Info("change feed reconnected and current", "took", time.Since(began).Round(time.Millisecond))
			}
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

// confirmQuiet reads the feed state alone and, when nothing was committed past what this
// replica applied, confirms it current without a read of the feed. It also checks the lineage:
// after a failover to a standby that had not received the last writes (asynchronous
// replication), the database's feed ends before what this replica applied, or holds another
// change at that sequence once writes resume there. Replaying from the last sequence would then
// keep in memory writes the database no longer has (a token it never stored, a revocation it
// lost) and skip the new ones; so the replica reloads everything, as for a pruned feed.
func (s *DB) confirmQuiet(ctx context.Context, conn *pgx.Conn) (bool, error) {
	begun := time.Now()
	rctx, cancel := context.WithTimeout(ctx, applyTimeout)
	defer cancel()
	s.amu.Lock()
	defer s.amu.Unlock()
	applied, appliedAt := s.applied.Load(), s.appliedAt.Load()
	var last int64
	var at *int64
	err := conn.QueryRow(rctx, "SELECT fs.last_seq, c.at FROM feed_state fs LEFT JOIN changes c ON c.seq = $1", int64(applied)).Scan(&last, &at)
	if err != nil {
		return false, err
	}
	if uint64(last) < applied || at != nil && appliedAt != 0 && *at != appliedAt {
		s.log.Error("the database's change feed does not hold this replica's last change: it lost writes (a failover to a standby that did not have them); reloading everything",
			"applied", applied, "database_last", last)
		if err := s.reload(rctx, conn); err != nil {
			return false, fmt.Errorf("reload after the database lost changes: %w", err)
		}
		s.notifyReset()
		return true, nil
	}
	if uint64(last) != applied {
		return false, nil
	}
	s.confirmed.Store(begun.UnixNano())
	return true, nil
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
