package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/store/badger"
	"github.com/rill-authd/rill-authd/store/postgres"
)

// IsPostgresURL reports whether a --store value names a PostgreSQL database.
func IsPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// storeOptions are what opening a store needs beyond StoreFlags.
type storeOptions struct {
	AuditRetention time.Duration
	// ExpiredTokenRetention: tokens expired longer than this are purged (0: never).
	ExpiredTokenRetention time.Duration
	Logger                *slog.Logger
	// Existing refuses a Badger directory that does not exist (a copy's source) instead of
	// creating it.
	Existing bool
	// Tracer traces PostgreSQL queries (nil: not traced).
	Tracer pgx.QueryTracer
}

// check refuses a --store value that is neither empty nor a PostgreSQL URL.
func (f StoreFlags) check() error {
	if f.Store == "" || IsPostgresURL(f.Store) {
		return nil
	}
	return fmt.Errorf("--store %s: want a postgres:// or postgresql:// URL, or nothing for the embedded store in --data-dir", redact(f.Store))
}

// Where names the store for messages, without a password.
func (f StoreFlags) Where() string {
	if f.Store != "" {
		return redact(f.Store)
	}
	return f.DataDir
}

// open opens the store the flags choose: the one place every command does it, so that
// --store and --encryption-key-file mean the same to all of them.
func (f StoreFlags) open(ctx context.Context, o storeOptions) (store.Store, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if f.Store != "" {
		key, err := f.key()
		if err != nil {
			return nil, err
		}
		st, err := postgres.Open(ctx, postgres.Options{URL: f.Store, EncryptionKey: key, AuditRetention: o.AuditRetention, ExpiredTokenRetention: o.ExpiredTokenRetention, Logger: o.Logger,
			Tracer: o.Tracer})
		if err != nil {
			return nil, err // names host and database, never the password
		}
		return st, nil
	}
	bo, err := f.badgerOptions(o)
	if err != nil {
		return nil, err
	}
	if o.Existing {
		if fi, err := os.Stat(f.DataDir); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("%s is not a store directory (nor a postgres:// URL)", f.DataDir)
		}
	} else if err := os.MkdirAll(f.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	st, err := badger.Open(bo)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// badgerOptions are the options of the embedded store in --data-dir.
func (f StoreFlags) badgerOptions(o storeOptions) (badger.Options, error) {
	if f.DataDir == "" {
		return badger.Options{}, errors.New("no store: give --data-dir (embedded store) or --store (PostgreSQL URL)")
	}
	key, err := f.key()
	return badger.Options{Dir: f.DataDir, EncryptionKey: key, AuditRetention: o.AuditRetention, ExpiredTokenRetention: o.ExpiredTokenRetention, Logger: o.Logger}, err
}

func (f StoreFlags) key() ([]byte, error) {
	if f.EncryptionKeyFile == "" {
		return nil, nil
	}
	return store.ReadKeyFile(f.EncryptionKeyFile)
}

// redact is a store URL without its password, for messages: in the user info and in a
// password= parameter, which pgx takes too.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(a URL that does not parse)"
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// gcBallast is live heap a replica on PostgreSQL holds and never touches, so that it collects
// garbage as rarely as one on Badger, whose memtable arena (64 MiB) is on the Go heap too: the
// Go runtime starts a collection when the heap has grown by GOGC% of the live heap, and on a
// small live heap (the token index of a few thousand tokens) the garbage of checks (gRPC's
// buffers, a few KB each) started one several times a second. Profiled under checks over real
// gRPC: the collector's mark workers took ~6% of the PostgreSQL daemon's CPU against ~1% of
// Badger's. The bytes hold no pointers (marking them costs nothing) and are never written, so
// they cost address space, not memory: they are not resident.
const gcBallast = 64 << 20

// staleness decides when a PostgreSQL replica stops answering from memory: once it has not
// confirmed it is current for longer than --max-staleness, counting from its last confirmation.
// It cannot confirm while its listening connection is down, nor while a confirmation (one
// every poll interval) is a poll interval overdue.
type staleness struct {
	pg      *postgres.DB
	max     atomic.Int64 // a time.Duration: --max-staleness, which a reload changes
	overdue time.Duration
	reason  atomic.Pointer[string]
}

func newStaleness(pg *postgres.DB, maxStaleness time.Duration) *staleness {
	s := &staleness{pg: pg, overdue: 2 * pg.PollInterval()}
	s.set(maxStaleness)
	return s
}

// set changes --max-staleness (a reload).
func (s *staleness) set(maxStaleness time.Duration) {
	reason := fmt.Sprintf("auth store unavailable: this replica cannot confirm it has every change from PostgreSQL, "+
		"and answering from memory is allowed for --max-staleness=%s only", maxStaleness)
	s.reason.Store(&reason)
	s.max.Store(int64(maxStaleness))
}

// stale is the extauthz.Config.Stale hook: atomic loads and a clock read, no allocation.
func (s *staleness) stale() (string, bool) {
	_, at := s.pg.Current()
	age := time.Since(at)
	if age > max(time.Duration(s.max.Load()), 0) && (!s.pg.Connected() || age > s.overdue) {
		return *s.reason.Load(), true
	}
	return "", false
}

// waitConnected gives a replica that just opened a moment to start following the feed, so
// that with a small --max-staleness its first checks are not refused for that.
func waitConnected(ctx context.Context, pg *postgres.DB) {
	deadline := time.Now().Add(5 * time.Second)
	for !pg.Connected() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
}

// registerStoreGauges exposes the PostgreSQL replica's view of the change feed and its pool.
func (d *Daemon) registerStoreGauges(pg *postgres.DB) {
	m := d.metrics
	m.GaugeFunc("rill_authd_store_feed_lag_seconds", "Seconds since this replica last confirmed it had applied every change in PostgreSQL: how far behind it may be.", nil, func() float64 {
		_, at := pg.Current()
		return time.Since(at).Seconds()
	})
	m.GaugeFunc("rill_authd_store_feed_lag_changes", "Changes committed in PostgreSQL that this replica has not applied yet (read at scrape time).", nil, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		last, err := pg.LastSeq(ctx)
		if err != nil {
			return math.NaN()
		}
		applied, _ := pg.Current()
		return float64(last) - float64(min(applied, last))
	})
	m.GaugeFunc("rill_authd_store_feed_applied_sequence", "Sequence of the newest change this replica has applied.", nil, func() float64 {
		applied, _ := pg.Current()
		return float64(applied)
	})
	m.GaugeFunc("rill_authd_store_stale", "1 while this replica denies checks because it cannot confirm it is current (--max-staleness).", nil, func() float64 {
		if _, stale := d.stale.stale(); stale {
			return 1
		}
		return 0
	})
	m.CounterFunc("rill_authd_store_reconnects_total", "Times the connection following PostgreSQL's change feed was lost and made again.", func() float64 {
		return float64(pg.Reconnects())
	})
	// States in one gauge (their sum is the pool's size), its capacity in another.
	for state, f := range map[string]func() float64{
		"acquired": func() float64 { return float64(pg.Stats().AcquiredConns()) },
		"idle":     func() float64 { return float64(pg.Stats().IdleConns()) },
	} {
		m.GaugeFunc("rill_authd_store_pool_connections", "Open connections of the PostgreSQL pool, by state (acquired, idle), besides the one following the feed; their sum is the pool's size.",
			map[string]string{"state": state}, f)
	}
	m.GaugeFunc("rill_authd_store_pool_connections_max", "Most connections the PostgreSQL pool opens (pool_max_conns), besides the one following the feed.", nil,
		func() float64 { return float64(pg.Stats().MaxConns()) })
}
