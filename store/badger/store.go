package badger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	bdg "github.com/dgraph-io/badger/v4"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/store/internal/tokindex"
	"github.com/rill-authd/rill-authd/token"
)

// Options configures Open.
type Options struct {
	// Dir is the data directory, created or tightened to 0700; its files are made 0600 and the
	// process umask 077 (see perms.go). Empty with InMemory set keeps everything in memory.
	Dir      string
	InMemory bool
	// EncryptionKey enables Badger's at-rest encryption (16, 24 or 32 bytes of AES key).
	EncryptionKey []byte
	// AuditRetention drops audit events older than this (zero keeps them forever).
	AuditRetention time.Duration
	// GCInterval is how often the value log is garbage collected, the feed pruned and expired
	// tokens purged (default 5m; <0 disables it, the purge at open too).
	GCInterval time.Duration
	// ExpiredTokenRetention is how long an expired token is kept before the GC loop purges
	// it (once just after Open, then every GCInterval), leaving a tombstone (zero or less:
	// never purged).
	ExpiredTokenRetention time.Duration
	Logger                *slog.Logger
}

// DB is the Badger implementation of Store.
type DB struct {
	db       *bdg.DB
	opts     Options
	log      *slog.Logger
	subs     []func([]store.Change) // appended to under wmu
	auditSeq atomic.Uint32
	// outboxMu serializes the outbox's writes: claims read then lease many rows, and Badger's
	// optimistic transactions would otherwise fail them against each other.
	outboxMu  sync.Mutex
	stopGC    chan struct{}
	gcDone    chan struct{}
	closeOnce sync.Once
	idx       *tokindex.Index
	dying     dyingSet   // tokens of a deleted owner not yet purged (refused as revoked)
	bootMu    sync.Mutex // serializes Bootstrap
	// wmu is held by every write that appends to the change feed, from before its transaction
	// until idx and the subscribers have seen it, so sequence numbers, the index and the
	// subscribers all follow commit order (a revoke is never overtaken by the create before it).
	// Readers never take it.
	wmu sync.Mutex
	seq atomic.Uint64 // the newest committed change; written under wmu
}

var _ store.Store = (*DB)(nil)

// Key layout. Records are JSON but tokens (see codec.go); index entries point at record ids.
const (
	pOrg       = "org/"
	pProject   = "proj/"       // proj/<org>/<name>
	pUser      = "user/"       // user/<id>
	pUserMail  = "idx/email/"  // idx/email/<email> -> user id
	pService   = "svc/"        // svc/<id>
	pSvcName   = "idx/svc/"    // idx/svc/<org>/<name> -> service id
	pToken     = "tok/"        // tok/<id>
	pTokOwner  = "idx/owner/"  // idx/owner/<owner id>/<token id> -> ""
	pTokIssuer = "idx/issuer/" // idx/issuer/<issuer id>/<token id> -> "": store.Token.IssuedBy
	pKey       = "key/"        // key/<kid>
	pAudit     = "audit/"      // audit/<unix nanos BE><seq BE>
	pRevoked   = "revoked/"    // revoked/<token id> -> why, kept for tombstoneTTL
	pPurge     = "purge/"      // purge/<owner id> -> kind NUL why: a deleted owner's tokens to delete
	pChange    = "chg/"        // chg/<seq BE> -> JSON store.Change
	pOutbox    = "outbox/"     // outbox/<notification id> -> JSON store.Notification
	// Device authorization requests (store.DeviceCodes): short-lived, outside idx/ so that a
	// replacing load drops record and index together (dropPrefixes).
	pDevice     = "devcode/"         // devcode/<device code digest> -> JSON store.DeviceCode
	pDeviceUser = "devuser/"         // devuser/<user code digest> -> device code digest
	kPruned     = "meta/feed/pruned" // the newest change pruned from the feed (seq BE)
	kBoot       = "meta/bootstrapped"
	kIssuer     = "meta/issuer" // JSON store.Issuer
)

// tombstoneTTL is how long a revoked token is remembered as revoked rather than unknown.
const tombstoneTTL = 90 * 24 * time.Hour

func tombstone(txn *bdg.Txn, tokenID, why string) error {
	return txn.SetEntry(bdg.NewEntry([]byte(pRevoked+tokenID), []byte(why)).WithTTL(tombstoneTTL))
}

// badgerOptions are the Badger options of a store, for Open and Restore alike.
func badgerOptions(o Options) (bdg.Options, error) {
	bo := bdg.DefaultOptions(o.Dir).
		WithSyncWrites(true). // an acknowledged write survives a crash
		WithLogger(badgerLogger{o.Logger}).
		WithNumVersionsToKeep(1).
		// 16 MiB memtables (Badger's default is 64): a read searches fewer, shallower skiplists
		// (a 1M-token miss is ~25% faster) and five of them hold 80 MiB, not 320.
		WithMemTableSize(16 << 20).
		// 64 MiB of block cache (default 256): checks read tokens from the in-memory index
		// (store/internal/tokindex), so the cache holds owners and admin reads, not every token block.
		WithBlockCacheSize(64 << 20)
	if o.InMemory {
		bo = bo.WithInMemory(true).WithDir("").WithValueDir("")
	} else if o.Dir == "" {
		return bo, errors.New("open store: no data directory given")
	}
	if len(o.EncryptionKey) > 0 {
		bo = bo.WithEncryptionKey(o.EncryptionKey).WithIndexCacheSize(16 << 20)
	}
	return bo, nil
}

// Open opens (creating if needed) the store.
func Open(o Options) (*DB, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	bo, err := badgerOptions(o)
	if err != nil {
		return nil, err
	}
	if !o.InMemory {
		warning, err := secureDir(o.Dir)
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		if warning != "" {
			o.Logger.Warn(warning)
		}
		restrictUmask()
	}
	db, err := bdg.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("open store in %q: %w", o.Dir, err)
	}
	if !o.InMemory {
		if err := secureFiles(o.Dir); err != nil {
			db.Close()
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	s := &DB{db: db, opts: o, log: o.Logger, stopGC: make(chan struct{}), gcDone: make(chan struct{}), idx: tokindex.New()}
	if err := s.initTokenCounts(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store: count tokens: %w", err)
	}
	if err := s.loadSeq(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := s.resumePurges(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	start := time.Now()
	counts, err := s.CountTokens(context.Background())
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open store: count tokens: %w", err)
	}
	if err := loadIndex(s.idx, db, int(counts[token.User]+counts[token.Service]+counts[token.Magic])); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store: load token index: %w", err)
	}
	if n := s.idx.Len(); n > 0 {
		s.log.Info("token index loaded", "tokens", n, "took", time.Since(start).Round(time.Millisecond))
	}
	go s.gcLoop()
	return s, nil
}

func (s *DB) gcLoop() {
	defer close(s.gcDone)
	every := s.opts.GCInterval
	if every == 0 {
		every = 5 * time.Minute
	}
	if every < 0 || s.opts.InMemory {
		<-s.stopGC
		return
	}
	stopped, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-s.stopGC; cancel() }()
	// Once at open, in this goroutine (Open and the daemon's readiness do not wait for it): a
	// store reopened more often than GCInterval would otherwise never purge, and the retention an
	// operator sets applies at once.
	s.purgeExpiredTokens(stopped)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stopGC:
			return
		case <-t.C:
			for s.db.RunValueLogGC(0.5) == nil {
			}
			if err := s.pruneFeed(time.Now().Add(-feedRetention)); err != nil {
				s.log.Error("pruning the change feed", "err", err)
			}
			s.purgeExpiredTokens(stopped)
		}
	}
}

// Close stops the GC and closes Badger, flushing everything.
func (s *DB) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.stopGC)
		<-s.gcDone
		if cerr := s.db.Close(); cerr != nil {
			err = fmt.Errorf("close store: %w", cerr)
		}
	})
	return err
}

// update runs fn in a read-write transaction, retrying on Badger's optimistic conflicts.
func (s *DB) update(ctx context.Context, fn func(txn *bdg.Txn) error) error {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := s.db.Update(fn)
		if errors.Is(err, bdg.ErrConflict) && attempt < 10 {
			continue
		}
		if errors.Is(err, bdg.ErrDBClosed) {
			return store.ErrClosed
		}
		return err
	}
}

func (s *DB) view(fn func(txn *bdg.Txn) error) error {
	err := s.db.View(fn)
	if errors.Is(err, bdg.ErrDBClosed) {
		return store.ErrClosed
	}
	return err
}

func getJSON(txn *bdg.Txn, key string, v any) error {
	item, err := txn.Get([]byte(key))
	if errors.Is(err, bdg.ErrKeyNotFound) {
		return store.ErrNotFound
	}
	if err != nil {
		return err
	}
	return item.Value(func(b []byte) error { return json.Unmarshal(b, v) })
}

func getToken(txn *bdg.Txn, id token.ID, t *store.Token) error {
	item, err := txn.Get([]byte(pToken + id.String()))
	if errors.Is(err, bdg.ErrKeyNotFound) {
		return store.ErrNotFound
	}
	if err != nil {
		return err
	}
	return item.Value(func(b []byte) error { return decodeToken(b, t) })
}

func putToken(txn *bdg.Txn, t *store.Token) error {
	if t.Magic != nil || len(t.AllowedNetworks) > 0 || len(t.AllowedOrigins) > 0 || t.IssuedBy != "" {
		// A magic token's grant and a token's constraints are nested: the JSON form, which
		// decodeToken reads. So are the few (short-lived) tokens that represent their owner,
		// whose issuer the binary form has no place for.
		return putJSON(txn, pToken+t.ID.String(), t)
	}
	return txn.Set([]byte(pToken+t.ID.String()), encodeToken(t))
}

func putJSON(txn *bdg.Txn, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return txn.Set([]byte(key), b)
}

func exists(txn *bdg.Txn, key string) (bool, error) {
	_, err := txn.Get([]byte(key))
	if errors.Is(err, bdg.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

func getString(txn *bdg.Txn, key string) (string, error) {
	item, err := txn.Get([]byte(key))
	if errors.Is(err, bdg.ErrKeyNotFound) {
		return "", store.ErrNotFound
	}
	if err != nil {
		return "", err
	}
	b, err := item.ValueCopy(nil)
	return string(b), err
}

// scan calls fn with the value of every key under prefix, in key order.
func scan(txn *bdg.Txn, prefix string, fn func(key, val []byte) error) error {
	it := txn.NewIterator(bdg.IteratorOptions{Prefix: []byte(prefix), PrefetchValues: true, PrefetchSize: 64})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		if err := item.Value(func(v []byte) error { return fn(item.Key(), v) }); err != nil {
			return err
		}
	}
	return nil
}

func list[T any](s *DB, prefix string) ([]T, error) {
	var out []T
	err := s.view(func(txn *bdg.Txn) error {
		return scan(txn, prefix, func(_, v []byte) error {
			var x T
			if err := json.Unmarshal(v, &x); err != nil {
				return err
			}
			out = append(out, x)
			return nil
		})
	})
	return out, err
}

func get[T any](s *DB, key, what string) (T, error) {
	var x T
	err := s.view(func(txn *bdg.Txn) error { return getJSON(txn, key, &x) })
	if err != nil {
		return x, fmt.Errorf("get %s: %w", what, err)
	}
	return x, nil
}
