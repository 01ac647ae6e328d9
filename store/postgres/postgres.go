// Package postgres is the store.Store engine for several replicas sharing one PostgreSQL
// database. Every write runs in one transaction that also appends its changes to a change
// table with a gapless sequence and NOTIFYs; every replica LISTENs, applies the changes in
// order to its in-memory token index and tells its subscribers, so checks never query
// PostgreSQL.
//
// # Unknown tokens
//
// TokenAuth answers from memory only: a live token from the index, a revoked one (revoked or
// its owner deleted within the 90-day tombstone period) from an in-memory set of tombstones
// loaded at open and fed by the change feed, anything else is ErrNotFound without a query. So
// a flood of random well-formed tokens costs map lookups, never queries. The price: a token
// created on another replica a moment ago is unknown here until the feed delivers it (one
// NOTIFY round trip, typically well under 100 ms); a client retrying with it succeeds once it
// has arrived. The writing replica itself applies its write before the write returns.
//
// # Connections
//
// Besides its pool, each replica holds one connection that LISTENs, and writers, migrations and
// bootstrap use advisory locks, so the URL must reach PostgreSQL directly or through a pooler
// in session mode (not PgBouncer's transaction mode).
//
// # Failover
//
// Every connection (the pool's and the feed's) must reach the primary: a URL may list several
// hosts (postgres://h1:5432,h2:5432/db, as libpq and pgx read it) and each new connection tries
// them in order until one accepts writes (target_session_attrs=read-write, the default here
// unless the URL says otherwise). When the primary dies, the feed connection's loss resets the
// pool, and both reconnect to whichever host was promoted; the feed replays from the last
// sequence applied, and the sequence lives in the database, so it continues on the new primary
// with no gap. No acknowledged write is lost only if the standby had it when it was promoted:
// that is synchronous replication's promise (synchronous_standby_names), not this engine's.
package postgres

import (
	"context"
	"crypto/cipher"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rill-authd/rill-authd/internal/logsample"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/store/internal/tokindex"
	"github.com/rill-authd/rill-authd/token"
)

// Options configures Open.
type Options struct {
	// URL is a PostgreSQL connection URL or DSN (postgres://user@host:5432/db?sslmode=...).
	URL string
	// EncryptionKey (16, 24 or 32 bytes) encrypts signing keys' private keys with AES-GCM.
	EncryptionKey []byte
	// AuditRetention drops audit events older than this (zero keeps them forever).
	AuditRetention time.Duration
	// ExpiredTokenRetention is how long an expired token is kept before maintenance purges it
	// (once at start, then every MaintainInterval), leaving a tombstone (zero or less: never
	// purged).
	ExpiredTokenRetention time.Duration
	// MaxConns bounds the connection pool (0: pgxpool's default), besides the one connection
	// that listens for changes.
	MaxConns int32
	// PollInterval is how often the feed is read even without a notification, as a safety net
	// and to confirm the replica is current (default 1s).
	PollInterval time.Duration
	// MaintainInterval is how often old changes, tombstones, audit events and expired tokens
	// are pruned (default 5m; <0 disables it, the purges at start too).
	MaintainInterval time.Duration
	Logger           *slog.Logger
	// Tracer, when set, traces the pool's queries (not the change feed's connection, whose
	// poll every second is no one's request).
	Tracer pgx.QueryTracer

	tracer       pgx.QueryTracer // tests count the pool's queries
	reconnectMax time.Duration   // benchmarks compare the feed's reconnect cap (default 1s)
	purgeWait    time.Duration   // tests shorten how long a delete waits for its purge (purgeWait)
}

// Advisory lock keys: arbitrary constants, the same in every replica.
const (
	lockWrite     int64 = 0x72696c6c_0001 // held by every write that appends to the feed
	lockMigrate   int64 = 0x72696c6c_0002 // held while migrating
	lockBootstrap int64 = 0x72696c6c_0003 // held while bootstrapping
)

// notifyChannel carries the newest sequence of each committed write.
const notifyChannel = "rill_authd_changes"

// tombstoneTTL is how long a revoked token is remembered as revoked rather than unknown.
const tombstoneTTL = 90 * 24 * time.Hour

// feedRetention is how long changes stay in the feed; a reader further behind reloads.
const feedRetention = 7 * 24 * time.Hour

// DB is the PostgreSQL implementation of store.Store.
type DB struct {
	pool *pgxpool.Pool
	opts Options
	log  *slog.Logger
	aead cipher.AEAD // nil without an encryption key

	idx  atomic.Pointer[tokindex.Index] // replaced whole only when the feed was truncated
	dead atomic.Pointer[tombstones]

	// amu orders the application of changes to idx, dead and the subscribers: the follower
	// and writers returning take it, so each sequence is applied exactly once, in order.
	amu     sync.Mutex
	applied atomic.Uint64 // the newest sequence applied; written under amu
	// appliedAt is the at (Unix nanoseconds) of the change at applied, 0 when unknown; written
	// with applied. A feed that holds another change at that sequence lost writes (lineage).
	appliedAt atomic.Int64
	subs      []func([]store.Change)

	confirmed  atomic.Int64 // Unix nanoseconds when the replica was last known to be current
	reconnects atomic.Uint64
	connected  atomic.Bool        // the listening connection is up and has caught up once
	listenPID  atomic.Uint32      // the backend of the listening connection (tests kill it)
	poolUp     chan struct{}      // a pool connection was made: a follower waiting to reconnect tries now
	lostLog    *logsample.Sampler // the "connection lost" line: a few per outage, not three a second

	stop      chan struct{}
	done      sync.WaitGroup
	closeOnce sync.Once
	closed    atomic.Bool
}

var _ store.Store = (*DB)(nil)

// Open connects, applies the schema migrations, loads the token index and the tombstones, and
// starts following the change feed.
func Open(ctx context.Context, o Options) (*DB, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.MaintainInterval == 0 {
		o.MaintainInterval = 5 * time.Minute
	}
	cfg, err := pgxpool.ParseConfig(o.URL)
	if err != nil {
		// The parse error may quote the URL, password included.
		return nil, errors.New("open postgres store: the URL does not parse")
	}
	primaryOnly(&cfg.ConnConfig.Config, o.URL)
	if o.MaxConns > 0 {
		// Bootstrap holds one connection while its fn writes through another.
		cfg.MaxConns = max(o.MaxConns, 2)
	}
	listenCfg := cfg.ConnConfig.Copy()
	// Named after the pool's application_name, if the URL gives one, so an operator (or a
	// test) can tell one replica's connections from another's.
	listenCfg.RuntimeParams["application_name"] = strings.TrimSpace(cfg.ConnConfig.RuntimeParams["application_name"] + " rill-authd change feed")
	if o.Tracer != nil {
		cfg.ConnConfig.Tracer = o.Tracer
	}
	if o.tracer != nil {
		cfg.ConnConfig.Tracer = o.tracer
	}
	s := &DB{opts: o, log: o.Logger, stop: make(chan struct{}), poolUp: make(chan struct{}, 1),
		lostLog: logsample.New(o.Logger, logsample.Options{Msg: "change feed reconnects not logged", Every: lostLogEvery, Burst: 1})}
	cfg.AfterConnect = s.poolConnected
	s.idx.Store(tokindex.New())
	if len(o.EncryptionKey) > 0 {
		if s.aead, err = newAEAD(o.EncryptionKey); err != nil {
			return nil, fmt.Errorf("open postgres store: %w", err)
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	s.pool = pool
	if err := s.open(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres store on %s/%s: %w", hosts(&cfg.ConnConfig.Config), cfg.ConnConfig.Database, err)
	}
	s.done.Add(2)
	go s.follow(listenCfg)
	go s.maintain()
	return s, nil
}

func (s *DB) open(ctx context.Context) error {
	if err := s.migrate(ctx, s.pool); err != nil {
		return err
	}
	if err := s.checkEncryption(ctx); err != nil {
		return err
	}
	start := time.Now()
	if err := s.reload(ctx, s.pool); err != nil {
		return err
	}
	if n := s.idx.Load().Len(); n > 0 {
		s.log.Info("token index loaded", "tokens", n, "tombstones", s.dead.Load().len(), "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// Close stops following the feed and closes the pool.
func (s *DB) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.stop)
		s.done.Wait()
		s.pool.Close()
	})
	return nil
}

// Stats are the pool's statistics, for metrics.
func (s *DB) Stats() *pgxpool.Stat { return s.pool.Stat() }

// wtx is a write transaction that records the changes it makes; they are appended to the feed
// in the same transaction, and applied in memory once it commits.
type wtx struct {
	pgx.Tx
	ctx     context.Context
	now     time.Time
	changes []store.Change
	puts    []store.Token // tokens added
	dels    []deadToken   // tokens removed
}

type deadToken struct {
	id  token.ID
	why string
}

func (w *wtx) change(kind store.ChangeKind, op store.ChangeOp, id string) {
	w.changes = append(w.changes, store.Change{Kind: kind, Op: op, ID: id, Time: w.now})
}

func (w *wtx) tokenAdded(t store.Token) {
	w.puts = append(w.puts, t)
	w.change(store.ChangeToken, store.OpPut, t.ID.String())
}

func (w *wtx) tokenRemoved(id token.ID, why string) {
	w.dels = append(w.dels, deadToken{id, why})
	w.change(store.ChangeToken, store.OpDelete, id.String())
}

// write runs fn in one transaction holding the write lock, appends its changes to the feed,
// commits, then applies them here (after any earlier changes from other replicas) and tells
// the subscribers before returning. The lock makes every write in every replica one after
// another, so a sequence is allocated only once the previous write has committed: sequences
// are gapless and in commit order, and check-then-insert rules (unique names, an owner that
// must exist) hold across replicas.
func (s *DB) write(ctx context.Context, fn func(w *wtx) error) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	w := &wtx{ctx: ctx}
	var first uint64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		*w = wtx{Tx: tx, ctx: ctx, now: time.Now().UTC()}
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockWrite); err != nil {
			return fmt.Errorf("take the write lock: %w", err)
		}
		if err := fn(w); err != nil {
			return err
		}
		if len(w.changes) == 0 {
			return nil
		}
		var last int64
		err := tx.QueryRow(ctx, "UPDATE feed_state SET last_seq = last_seq + $1 RETURNING last_seq", len(w.changes)).Scan(&last)
		if err != nil {
			return fmt.Errorf("allocate change sequences: %w", err)
		}
		first = uint64(last) - uint64(len(w.changes)) + 1
		n := len(w.changes)
		seqs, kinds, ops, ids, ats := make([]int64, n), make([]string, n), make([]string, n), make([]string, n), make([]int64, n)
		for i := range w.changes {
			c := &w.changes[i]
			c.Seq = first + uint64(i)
			seqs[i], kinds[i], ops[i], ids[i], ats[i] = int64(c.Seq), string(c.Kind), string(c.Op), c.ID, c.Time.UnixNano()
		}
		_, err = tx.Exec(ctx, `INSERT INTO changes (seq, write_end, kind, op, id, at)
			SELECT u.seq, $2, u.kind, u.op, u.id, u.at
			FROM unnest($1::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[]) AS u(seq, kind, op, id, at)`,
			seqs, last, kinds, ops, ids, ats)
		if err != nil {
			return fmt.Errorf("append changes: %w", err)
		}
		if _, err := tx.Exec(ctx, "SELECT pg_notify($1, $2)", notifyChannel, fmt.Sprint(last)); err != nil {
			return fmt.Errorf("notify: %w", err)
		}
		return nil
	})
	if err != nil {
		return mapErr(err)
	}
	if len(w.changes) > 0 {
		s.publish(ctx, first, w)
	}
	return nil
}

// publish applies a committed write here: first whatever other replicas committed before it
// and this one has not applied yet, then the write itself, from memory. If the earlier changes
// cannot be read now, the write's revocations still take effect here at once (refusing early
// is safe) and the follower applies everything, in order, when it can.
func (s *DB) publish(ctx context.Context, first uint64, w *wtx) {
	s.amu.Lock()
	defer s.amu.Unlock()
	last := first + uint64(len(w.changes)) - 1
	if s.applied.Load() >= last {
		return // a catch-up (the follower's, or another writer's) applied it already
	}
	if s.applied.Load() < first-1 {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), applyTimeout)
		err := s.applyFromDB(actx, s.pool, first-1)
		cancel()
		if err != nil || s.applied.Load() != first-1 {
			s.log.Warn("could not apply earlier changes before this replica's own write; the follower will", "seq", first, "err", err)
			s.applyDels(w)
			// The write's changes reach subscribers later, in order, from the follower; caches
			// must drop what they name now all the same, or a cached revoked token stays
			// allowed until then: told ahead, outside the sequence (Seq 0). Not a reset: that
			// would make caches re-read everything just when the store may be unreachable.
			s.notifyAhead(w.changes)
			return
		}
	}
	for _, t := range w.puts {
		s.idx.Load().Put(t.ID, t.Auth())
	}
	s.applyDels(w)
	s.applied.Store(last)
	s.appliedAt.Store(nanos(w.changes[len(w.changes)-1].Time))
	for _, fn := range s.subs {
		fn(w.changes)
	}
}

// notifyAhead tells subscribers of a write's changes ahead of their turn, with Seq 0 (see
// store.Change); the follower tells them again, in order. The caller holds amu.
func (s *DB) notifyAhead(changes []store.Change) {
	cs := make([]store.Change, len(changes))
	for i, c := range changes {
		c.Seq = 0
		cs[i] = c
	}
	for _, fn := range s.subs {
		fn(cs)
	}
}

// applyDels applies a committed write's revocations here: its token deletes and owner deletes
// (each revoking all the owner's tokens). The caller holds amu.
func (s *DB) applyDels(w *wtx) {
	idx, dead := s.idx.Load(), s.dead.Load()
	for _, d := range w.dels {
		dead.add(d.id, d.why, w.now) // before the removal: never briefly unknown
		idx.Remove(d.id)
	}
	for _, c := range w.changes {
		applyOwnerDelete(idx, dead, c)
	}
}

// mapErr turns PostgreSQL's constraint errors into the store's, and a lost or unreachable
// server into ErrUnavailable. The checks in the write transactions find conflicts first; the constraints are
// the backstop.
func mapErr(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505": // unique_violation
			return fmt.Errorf("%s: %w", pe.ConstraintName, store.ErrConflict)
		case "23503": // foreign_key_violation
			return fmt.Errorf("%s: %w", pe.ConstraintName, store.ErrNotFound)
		case "22021", "22P05": // a NUL or bytes not UTF-8 that store.CheckText should have refused
			return fmt.Errorf("%w: %s", store.ErrInvalid, pe.Message)
		}
	}
	return unavail(err)
}

// closedErr is ErrClosed once the store is closed, so reads say so instead of what a closed
// pool says.
func (s *DB) closedErr() error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	return nil
}

func orConflict(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, store.ErrConflict)...)
}

// exists reports whether query (a SELECT of anything) returns a row.
func exists(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, query string, args ...any) (bool, error) {
	var one int
	err := q.QueryRow(ctx, "SELECT 1 WHERE EXISTS ("+query+")", args...).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

type querier interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
	QueryRow(context.Context, string, ...any) pgx.Row
}

// getDoc reads one JSON document into v; none is ErrNotFound.
func getDoc(ctx context.Context, q querier, v any, query string, args ...any) error {
	var b []byte
	err := q.QueryRow(ctx, query, args...).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func listDocs[T any](ctx context.Context, q querier, query string, args ...any) ([]T, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	var out []T
	var b []byte
	_, err = pgx.ForEachRow(rows, []any{&b}, func() error {
		var x T
		if err := json.Unmarshal(b, &x); err != nil {
			return err
		}
		out = append(out, x)
		return nil
	})
	return out, err
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
