package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/rill-authd/rill-authd/token"
)

// Options configures Open.
type Options struct {
	// Dir is the data directory. Empty with InMemory set keeps everything in memory (tests).
	Dir      string
	InMemory bool
	// EncryptionKey enables Badger's at-rest encryption (16, 24 or 32 bytes of AES key).
	EncryptionKey []byte
	// AuditRetention drops audit events older than this (zero keeps them forever).
	AuditRetention time.Duration
	// GCInterval is how often the value log is garbage collected (default 5m; <0 disables).
	GCInterval time.Duration
	Logger     *slog.Logger
}

// DB is the Badger implementation of Store.
type DB struct {
	db        *badger.DB
	opts      Options
	log       *slog.Logger
	mu        sync.RWMutex
	subs      []func(Change)
	auditSeq  atomic.Uint32
	stopGC    chan struct{}
	gcDone    chan struct{}
	closeOnce sync.Once
	idx       *tokIndex
	// tokMu is held by writers that add or remove tokens from before their transaction until
	// idx reflects it, so idx applies commits in commit order.
	tokMu sync.Mutex
}

var _ Store = (*DB)(nil)

// Key layout. Records are JSON; index entries point at record ids.
const (
	pOrg      = "org/"
	pProject  = "proj/"      // proj/<org>/<name>
	pUser     = "user/"      // user/<id>
	pUserMail = "idx/email/" // idx/email/<email> -> user id
	pService  = "svc/"       // svc/<id>
	pSvcName  = "idx/svc/"   // idx/svc/<org>/<name> -> service id
	pToken    = "tok/"       // tok/<id>
	pTokOwner = "idx/owner/" // idx/owner/<owner id>/<token id> -> ""
	pKey      = "key/"       // key/<kid>
	pAudit    = "audit/"     // audit/<unix nanos BE><seq BE>
	pRevoked  = "revoked/"   // revoked/<token id> -> why, kept for tombstoneTTL
	pPurge    = "purge/"     // purge/<owner id> -> kind NUL why: a deleted owner's tokens to delete
	kBoot     = "meta/bootstrapped"
)

// tombstoneTTL is how long a revoked token is remembered as revoked rather than unknown.
const tombstoneTTL = 90 * 24 * time.Hour

func tombstone(txn *badger.Txn, tokenID, why string) error {
	return txn.SetEntry(badger.NewEntry([]byte(pRevoked+tokenID), []byte(why)).WithTTL(tombstoneTTL))
}

// ReadKeyFile reads an at-rest encryption key: 16, 24 or 32 raw bytes, or that many bytes in
// hex (surrounding white space ignored).
func ReadKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read encryption key: %w", err)
	}
	if t := bytes.TrimSpace(b); len(t) == 32 || len(t) == 48 || len(t) == 64 {
		if k, err := hex.DecodeString(string(t)); err == nil {
			return k, nil
		}
	}
	switch len(b) {
	case 16, 24, 32:
		return b, nil
	}
	return nil, fmt.Errorf("encryption key %s: want 16, 24 or 32 bytes (raw or hex), got %d bytes", path, len(b))
}

// Open opens (creating if needed) the store.
func Open(o Options) (*DB, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	bo := badger.DefaultOptions(o.Dir).
		WithSyncWrites(true). // an acknowledged write survives a crash
		WithLogger(badgerLogger{o.Logger}).
		WithNumVersionsToKeep(1).
		// 16 MiB memtables (Badger's default is 64): a read searches fewer, shallower skiplists
		// (a 1M-token miss is ~25% faster) and five of them hold 80 MiB, not 320.
		WithMemTableSize(16 << 20).
		// 64 MiB of block cache (default 256): checks read tokens from the in-memory index
		// (tokIndex), so the cache holds owners and admin reads, not every token block.
		WithBlockCacheSize(64 << 20)
	if o.InMemory {
		bo = bo.WithInMemory(true).WithDir("").WithValueDir("")
	} else if o.Dir == "" {
		return nil, errors.New("open store: no data directory given")
	}
	if len(o.EncryptionKey) > 0 {
		bo = bo.WithEncryptionKey(o.EncryptionKey).WithIndexCacheSize(16 << 20)
	}
	db, err := badger.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("open store in %q: %w", o.Dir, err)
	}
	s := &DB{db: db, opts: o, log: o.Logger, stopGC: make(chan struct{}), gcDone: make(chan struct{}), idx: newTokIndex()}
	if err := s.initTokenCounts(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store: count tokens: %w", err)
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
	if err := s.idx.load(db, int(counts[token.User]+counts[token.Service])); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store: load token index: %w", err)
	}
	if n := s.idx.len(); n > 0 {
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
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stopGC:
			return
		case <-t.C:
			for s.db.RunValueLogGC(0.5) == nil {
			}
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

// Subscribe implements Store.
func (s *DB) Subscribe(fn func(Change)) {
	s.mu.Lock()
	s.subs = append(s.subs, fn)
	s.mu.Unlock()
}

func (s *DB) notify(c Change) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, fn := range s.subs {
		fn(c)
	}
}

// update runs fn in a read-write transaction, retrying on Badger's optimistic conflicts.
func (s *DB) update(ctx context.Context, fn func(txn *badger.Txn) error) error {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := s.db.Update(fn)
		if errors.Is(err, badger.ErrConflict) && attempt < 10 {
			continue
		}
		if errors.Is(err, badger.ErrDBClosed) {
			return ErrClosed
		}
		return err
	}
}

func (s *DB) view(fn func(txn *badger.Txn) error) error {
	err := s.db.View(fn)
	if errors.Is(err, badger.ErrDBClosed) {
		return ErrClosed
	}
	return err
}

func getJSON(txn *badger.Txn, key string, v any) error {
	item, err := txn.Get([]byte(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	return item.Value(func(b []byte) error { return json.Unmarshal(b, v) })
}

func getToken(txn *badger.Txn, id string, t *Token) error {
	item, err := txn.Get([]byte(pToken + id))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	return item.Value(func(b []byte) error { return decodeToken(b, t) })
}

func putToken(txn *badger.Txn, t *Token) error { return txn.Set([]byte(pToken+t.ID), encodeToken(t)) }

func putJSON(txn *badger.Txn, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return txn.Set([]byte(key), b)
}

func exists(txn *badger.Txn, key string) (bool, error) {
	_, err := txn.Get([]byte(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

func getString(txn *badger.Txn, key string) (string, error) {
	item, err := txn.Get([]byte(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", err
	}
	b, err := item.ValueCopy(nil)
	return string(b), err
}

// scan calls fn with the value of every key under prefix, in key order.
func scan(txn *badger.Txn, prefix string, fn func(key, val []byte) error) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix), PrefetchValues: true, PrefetchSize: 64})
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
	err := s.view(func(txn *badger.Txn) error {
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
	err := s.view(func(txn *badger.Txn) error { return getJSON(txn, key, &x) })
	if err != nil {
		return x, fmt.Errorf("get %s: %w", what, err)
	}
	return x, nil
}

// --- orgs and projects ---

func (s *DB) CreateOrg(ctx context.Context, o Org) error {
	return s.update(ctx, func(txn *badger.Txn) error {
		if ok, err := exists(txn, pOrg+o.Name); err != nil || ok {
			return orConflict(err, "org %q", o.Name)
		}
		return putJSON(txn, pOrg+o.Name, o)
	})
}

func orConflict(err error, format string, args ...any) error {
	if err != nil {
		return err
	}
	return fmt.Errorf(format+": %w", append(args, ErrConflict)...)
}

func (s *DB) GetOrg(_ context.Context, name string) (Org, error) {
	return get[Org](s, pOrg+name, "org "+name)
}

func (s *DB) ListOrgs(context.Context) ([]Org, error) { return list[Org](s, pOrg) }

func (s *DB) CreateProject(ctx context.Context, p Project) error {
	return s.update(ctx, func(txn *badger.Txn) error {
		if ok, err := exists(txn, pOrg+p.Org); err != nil || !ok {
			return orNotFound(err, "org %q", p.Org)
		}
		key := pProject + p.Org + "/" + p.Name
		if ok, err := exists(txn, key); err != nil || ok {
			return orConflict(err, "project %q in org %q", p.Name, p.Org)
		}
		return putJSON(txn, key, p)
	})
}

func orNotFound(err error, format string, args ...any) error {
	if err != nil {
		return err
	}
	return fmt.Errorf(format+": %w", append(args, ErrNotFound)...)
}

func (s *DB) GetProject(_ context.Context, org, name string) (Project, error) {
	return get[Project](s, pProject+org+"/"+name, "project "+org+"/"+name)
}

func (s *DB) ListProjects(_ context.Context, org string) ([]Project, error) {
	return list[Project](s, pProject+org+"/")
}

// --- users ---

func (s *DB) CreateUser(ctx context.Context, u User) error {
	return s.update(ctx, func(txn *badger.Txn) error {
		if ok, err := exists(txn, pUserMail+u.Email); err != nil || ok {
			return orConflict(err, "user %q", u.Email)
		}
		if err := txn.Set([]byte(pUserMail+u.Email), []byte(u.ID)); err != nil {
			return err
		}
		return putJSON(txn, pUser+u.ID, u)
	})
}

func (s *DB) GetUser(_ context.Context, id string) (User, error) {
	return get[User](s, pUser+id, "user "+id)
}

func (s *DB) GetUserByEmail(_ context.Context, email string) (User, error) {
	var u User
	err := s.view(func(txn *badger.Txn) error {
		id, err := getString(txn, pUserMail+email)
		if err != nil {
			return err
		}
		return getJSON(txn, pUser+id, &u)
	})
	if err != nil {
		return u, fmt.Errorf("get user %q: %w", email, err)
	}
	return u, nil
}

func (s *DB) ListUsers(context.Context) ([]User, error) { return list[User](s, pUser) }

func (s *DB) UpdateUser(ctx context.Context, id string, fn func(*User) error) (User, error) {
	var u User
	err := s.update(ctx, func(txn *badger.Txn) error {
		u = User{}
		if err := getJSON(txn, pUser+id, &u); err != nil {
			return fmt.Errorf("user %s: %w", id, err)
		}
		oldEmail := u.Email
		if err := fn(&u); err != nil {
			return err
		}
		u.ID = id
		if u.Email != oldEmail {
			if ok, err := exists(txn, pUserMail+u.Email); err != nil || ok {
				return orConflict(err, "user %q", u.Email)
			}
			if err := txn.Delete([]byte(pUserMail + oldEmail)); err != nil {
				return err
			}
			if err := txn.Set([]byte(pUserMail+u.Email), []byte(id)); err != nil {
				return err
			}
		}
		return putJSON(txn, pUser+id, u)
	})
	if err != nil {
		return u, fmt.Errorf("update user: %w", err)
	}
	s.notify(Change{ChangeUser, id})
	return u, nil
}

func (s *DB) DeleteUser(ctx context.Context, id string) (int, error) {
	n, err := s.deleteOwner(ctx, token.User, id, Change{ChangeUser, id}, func(txn *badger.Txn) error {
		var u User
		if err := getJSON(txn, pUser+id, &u); err != nil {
			return fmt.Errorf("user %s: %w", id, err)
		}
		if err := txn.Delete([]byte(pUserMail + u.Email)); err != nil {
			return err
		}
		return txn.Delete([]byte(pUser + id))
	})
	if err != nil {
		return n, fmt.Errorf("delete user: %w", err)
	}
	return n, nil
}

// purgeBatch bounds the tokens one purge transaction deletes (3 writes each, well inside the
// 26,214 writes a transaction holds with 16 MiB memtables).
const purgeBatch = 2000

// deleteOwner runs delOwner, which deletes an owner's records, deletes the owner's tokens and
// announces c. It returns how many tokens it deleted. Usually that is one transaction. An owner with more tokens than a Badger
// transaction holds (some thousands) is deleted with a purge marker in one transaction instead,
// which stops all its tokens at once (their owner is gone) and is announced at once; its tokens
// are then deleted in batches, and a purge cut short by a crash is finished on the next open.
func (s *DB) deleteOwner(ctx context.Context, kind token.Kind, owner string, c Change, delOwner func(*badger.Txn) error) (int, error) {
	why := string(c.Kind) + " deleted"
	s.tokMu.Lock()
	defer s.tokMu.Unlock()
	var gone []string
	err := s.update(ctx, func(txn *badger.Txn) error {
		if err := delOwner(txn); err != nil {
			return err
		}
		var err error
		gone, err = deleteOwnedTokens(txn, kind, owner, why, 0)
		return err
	})
	if errors.Is(err, badger.ErrTxnTooBig) {
		err = s.update(ctx, func(txn *badger.Txn) error {
			if err := delOwner(txn); err != nil {
				return err
			}
			return txn.Set([]byte(pPurge+owner), []byte(string(kind)+"\x00"+why))
		})
		if err != nil {
			return 0, err
		}
		s.notify(c)
		// The owner is gone: finish even if the caller gives up waiting.
		n, err := s.purge(context.WithoutCancel(ctx), kind, owner, why)
		if err != nil {
			// The owner is deleted and its tokens refused; the rest is done on the next open.
			s.log.Error("deleting the tokens of a deleted owner; the store finishes on next open", "owner", owner, "err", err)
		}
		return n, nil
	}
	if err != nil {
		return 0, err
	}
	s.idx.remove(gone...)
	s.notify(c)
	return len(gone), nil
}

// purge deletes the tokens of a deleted owner in batches, then its purge marker, and returns
// how many it deleted. The caller holds tokMu.
func (s *DB) purge(ctx context.Context, kind token.Kind, owner, why string) (int, error) {
	total := 0
	for batch := purgeBatch; ; {
		var gone []string
		err := s.update(ctx, func(txn *badger.Txn) error {
			var err error
			if gone, err = deleteOwnedTokens(txn, kind, owner, why, batch); err != nil || len(gone) > 0 {
				return err
			}
			return txn.Delete([]byte(pPurge + owner))
		})
		if errors.Is(err, badger.ErrTxnTooBig) && batch > 1 {
			batch /= 2
			continue
		}
		if err != nil {
			return total, fmt.Errorf("purge tokens of %s: %w", owner, err)
		}
		s.idx.remove(gone...)
		total += len(gone)
		if len(gone) == 0 {
			return total, nil
		}
	}
}

// resumePurges finishes purges a crash cut short.
func (s *DB) resumePurges() error {
	type job struct {
		owner, kind, why string
	}
	var jobs []job
	err := s.view(func(txn *badger.Txn) error {
		return scan(txn, pPurge, func(k, v []byte) error {
			kind, why, _ := strings.Cut(string(v), "\x00")
			jobs = append(jobs, job{strings.TrimPrefix(string(k), pPurge), kind, why})
			return nil
		})
	})
	if err != nil {
		return err
	}
	s.tokMu.Lock()
	defer s.tokMu.Unlock()
	for _, j := range jobs {
		s.log.Info("finishing the token purge of a deleted owner", "owner", j.owner)
		if _, err := s.purge(context.Background(), token.Kind(j.kind), j.owner, j.why); err != nil {
			return err
		}
	}
	return nil
}

// deleteOwnedTokens deletes the tokens of owner inside txn, all of them or at most limit (> 0),
// leaving tombstones, and returns their ids.
func deleteOwnedTokens(txn *badger.Txn, kind token.Kind, owner, why string, limit int) ([]string, error) {
	var keys [][]byte
	var ids []string
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pTokOwner + owner + "/")})
	for it.Rewind(); it.Valid() && (limit <= 0 || len(keys) < limit); it.Next() {
		keys = append(keys, it.Item().KeyCopy(nil))
	}
	it.Close()
	for _, k := range keys {
		tokID := strings.TrimPrefix(string(k), pTokOwner+owner+"/")
		if err := txn.Delete([]byte(pToken + tokID)); err != nil {
			return nil, err
		}
		if err := tombstone(txn, tokID, why); err != nil {
			return nil, err
		}
		if err := txn.Delete(k); err != nil {
			return nil, err
		}
		ids = append(ids, tokID)
	}
	return ids, addTokenCount(txn, kind, -int64(len(keys)))
}

// Live-token counts per kind, kept in the transaction of every token create and delete, so the
// active-tokens gauge reads one key instead of scanning.
const pCount = "meta/tokens/" // meta/tokens/<kind> -> uint64

func addTokenCount(txn *badger.Txn, kind token.Kind, delta int64) error {
	if delta == 0 {
		return nil
	}
	n, err := tokenCount(txn, kind)
	if err != nil {
		return err
	}
	v := int64(n) + delta
	if v < 0 {
		v = 0
	}
	return txn.Set([]byte(pCount+string(kind)), binary.BigEndian.AppendUint64(nil, uint64(v)))
}

func tokenCount(txn *badger.Txn, kind token.Kind) (uint64, error) {
	item, err := txn.Get([]byte(pCount + string(kind)))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var n uint64
	err = item.Value(func(b []byte) error {
		if len(b) != 8 {
			return fmt.Errorf("token count of %s: corrupt", kind)
		}
		n = binary.BigEndian.Uint64(b)
		return nil
	})
	return n, err
}

// CountTokens returns the number of live (not deleted) tokens of each kind. Expired tokens
// count until they are revoked.
func (s *DB) CountTokens(_ context.Context) (map[token.Kind]uint64, error) {
	out := map[token.Kind]uint64{}
	err := s.view(func(txn *badger.Txn) error {
		for _, k := range []token.Kind{token.User, token.Service} {
			n, err := tokenCount(txn, k)
			if err != nil {
				return err
			}
			out[k] = n
		}
		return nil
	})
	return out, err
}

// initTokenCounts counts tokens once, for a store written before the counts existed.
func (s *DB) initTokenCounts() error {
	return s.db.Update(func(txn *badger.Txn) error {
		if _, err := txn.Get([]byte(pCount + "v1")); err == nil {
			return nil
		}
		counts := map[token.Kind]int64{}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pToken), PrefetchValues: true})
		for it.Rewind(); it.Valid(); it.Next() {
			var t Token
			if err := it.Item().Value(func(b []byte) error { return decodeToken(b, &t) }); err != nil {
				it.Close()
				return err
			}
			counts[t.Kind]++
		}
		it.Close()
		for k, n := range counts {
			if err := txn.Set([]byte(pCount+string(k)), binary.BigEndian.AppendUint64(nil, uint64(n))); err != nil {
				return err
			}
		}
		return txn.Set([]byte(pCount+"v1"), nil)
	})
}

// --- services ---

func (s *DB) CreateService(ctx context.Context, sv Service) error {
	return s.update(ctx, func(txn *badger.Txn) error {
		if ok, err := exists(txn, pOrg+sv.Org); err != nil || !ok {
			return orNotFound(err, "org %q", sv.Org)
		}
		idx := pSvcName + sv.Org + "/" + sv.Name
		if ok, err := exists(txn, idx); err != nil || ok {
			return orConflict(err, "service %q in org %q", sv.Name, sv.Org)
		}
		if err := txn.Set([]byte(idx), []byte(sv.ID)); err != nil {
			return err
		}
		return putJSON(txn, pService+sv.ID, sv)
	})
}

func (s *DB) GetService(_ context.Context, id string) (Service, error) {
	return get[Service](s, pService+id, "service "+id)
}

func (s *DB) GetServiceByName(_ context.Context, org, name string) (Service, error) {
	var sv Service
	err := s.view(func(txn *badger.Txn) error {
		id, err := getString(txn, pSvcName+org+"/"+name)
		if err != nil {
			return err
		}
		return getJSON(txn, pService+id, &sv)
	})
	if err != nil {
		return sv, fmt.Errorf("get service %q in org %q: %w", name, org, err)
	}
	return sv, nil
}

func (s *DB) ListServices(_ context.Context, org string) ([]Service, error) {
	var out []Service
	err := s.view(func(txn *badger.Txn) error {
		return scan(txn, pSvcName+org+"/", func(_, id []byte) error {
			var sv Service
			if err := getJSON(txn, pService+string(id), &sv); err != nil {
				return fmt.Errorf("service %s: %w", id, err)
			}
			out = append(out, sv)
			return nil
		})
	})
	return out, err
}

func (s *DB) UpdateService(ctx context.Context, id string, fn func(*Service) error) (Service, error) {
	var sv Service
	err := s.update(ctx, func(txn *badger.Txn) error {
		sv = Service{}
		if err := getJSON(txn, pService+id, &sv); err != nil {
			return fmt.Errorf("service %s: %w", id, err)
		}
		org, oldName := sv.Org, sv.Name
		if err := fn(&sv); err != nil {
			return err
		}
		sv.ID, sv.Org = id, org // neither may change
		if sv.Name != oldName {
			idx := pSvcName + org + "/" + sv.Name
			if ok, err := exists(txn, idx); err != nil || ok {
				return orConflict(err, "service %q in org %q", sv.Name, org)
			}
			if err := txn.Delete([]byte(pSvcName + org + "/" + oldName)); err != nil {
				return err
			}
			if err := txn.Set([]byte(idx), []byte(id)); err != nil {
				return err
			}
		}
		return putJSON(txn, pService+id, sv)
	})
	if err != nil {
		return sv, fmt.Errorf("update service: %w", err)
	}
	s.notify(Change{ChangeService, id})
	return sv, nil
}

func (s *DB) DeleteService(ctx context.Context, id string) (int, error) {
	n, err := s.deleteOwner(ctx, token.Service, id, Change{ChangeService, id}, func(txn *badger.Txn) error {
		var sv Service
		if err := getJSON(txn, pService+id, &sv); err != nil {
			return fmt.Errorf("service %s: %w", id, err)
		}
		if err := txn.Delete([]byte(pSvcName + sv.Org + "/" + sv.Name)); err != nil {
			return err
		}
		return txn.Delete([]byte(pService + id))
	})
	if err != nil {
		return n, fmt.Errorf("delete service: %w", err)
	}
	return n, nil
}

// --- tokens ---

func (s *DB) CreateToken(ctx context.Context, t Token) error {
	s.tokMu.Lock()
	defer s.tokMu.Unlock()
	err := s.update(ctx, func(txn *badger.Txn) error {
		owner := pUser + t.OwnerID
		if t.Kind == "svc" {
			owner = pService + t.OwnerID
		}
		if ok, err := exists(txn, owner); err != nil || !ok {
			return orNotFound(err, "token owner %s", t.OwnerID)
		}
		if ok, err := exists(txn, pToken+t.ID); err != nil || ok {
			return orConflict(err, "token %s", t.ID)
		}
		if err := txn.Set([]byte(pTokOwner+t.OwnerID+"/"+t.ID), nil); err != nil {
			return err
		}
		if err := addTokenCount(txn, t.Kind, 1); err != nil {
			return err
		}
		return putToken(txn, &t)
	})
	if err != nil {
		return err
	}
	s.idx.put(t.ID, t.Kind, t.OwnerID, t.Hash, t.ExpiresAt)
	return nil
}

// Compact merges the LSM tree into one level, so reads look in few tables. Run it after a large
// ImportTokens; Badger's background compaction gets there too, only later.
func (s *DB) Compact() error {
	if err := s.db.Flatten(2); err != nil {
		return fmt.Errorf("compact store: %w", err)
	}
	return nil
}

// importBatch bounds the records of one import transaction (a variable for tests).
var importBatch = 10_000

// ImportTokens stores many token records in few transactions: every owner is checked first,
// then the records are written in batches that each commit atomically. It is for bulk loads
// (migrations, benchmarks); a failure part-way leaves the earlier batches in place and says how
// many were written.
func (s *DB) ImportTokens(ctx context.Context, ts []Token) error {
	owners := map[string]bool{}
	err := s.view(func(txn *badger.Txn) error {
		for _, t := range ts {
			owner := pUser + t.OwnerID
			if t.Kind == "svc" {
				owner = pService + t.OwnerID
			}
			if owners[owner] {
				continue
			}
			if ok, err := exists(txn, owner); err != nil || !ok {
				return orNotFound(err, "token owner %s", t.OwnerID)
			}
			owners[owner] = true
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("import tokens: %w", err)
	}
	written := 0
	defer func() {
		if written > 0 {
			s.notify(Change{ChangeToken, ""})
		}
	}()
	batch := importBatch
	for written < len(ts) {
		end := min(written+batch, len(ts))
		err := s.importOnce(ctx, ts[written:end])
		if errors.Is(err, badger.ErrTxnTooBig) && batch > 1 {
			batch /= 2 // too much for one transaction: retry this part in halves
			continue
		}
		if err != nil {
			return fmt.Errorf("import tokens: %d of %d written: %w", written, len(ts), err)
		}
		written = end
	}
	return nil
}

// importOnce writes ts in one transaction. It holds tokMu for that batch only, so tokens can be
// issued and revoked between the batches of a long import.
func (s *DB) importOnce(ctx context.Context, ts []Token) error {
	s.tokMu.Lock()
	defer s.tokMu.Unlock()
	err := s.update(ctx, func(txn *badger.Txn) error {
		added := map[token.Kind]int64{}
		for _, t := range ts {
			if ok, err := exists(txn, pToken+t.ID); err != nil || ok {
				return orConflict(err, "token %s", t.ID)
			}
			if err := txn.Set([]byte(pTokOwner+t.OwnerID+"/"+t.ID), nil); err != nil {
				return err
			}
			if err := putToken(txn, &t); err != nil {
				return err
			}
			added[t.Kind]++
		}
		for k, c := range added {
			if err := addTokenCount(txn, k, c); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, t := range ts {
		s.idx.put(t.ID, t.Kind, t.OwnerID, t.Hash, t.ExpiresAt)
	}
	return nil
}

// GetToken returns the token, or an error wrapping ErrRevoked (for a tombstoned token) or
// ErrNotFound.
func (s *DB) GetToken(_ context.Context, id string) (Token, error) {
	var t Token
	err := s.view(func(txn *badger.Txn) error {
		err := getToken(txn, id, &t)
		if !errors.Is(err, ErrNotFound) {
			return err
		}
		why, terr := getString(txn, pRevoked+id)
		if terr == nil {
			return fmt.Errorf("%s: %w", why, ErrRevoked)
		}
		return err
	})
	if err != nil {
		return t, fmt.Errorf("get token %s: %w", id, err)
	}
	return t, nil
}

func (s *DB) ListTokens(_ context.Context, owner string) ([]Token, error) {
	var out []Token
	err := s.view(func(txn *badger.Txn) error {
		return scan(txn, pTokOwner+owner+"/", func(k, _ []byte) error {
			var t Token
			if err := getToken(txn, strings.TrimPrefix(string(k), pTokOwner+owner+"/"), &t); err != nil {
				return fmt.Errorf("token of %s: %w", owner, err)
			}
			out = append(out, t)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, err
}

func (s *DB) DeleteToken(ctx context.Context, id string) error {
	s.tokMu.Lock()
	defer s.tokMu.Unlock()
	err := s.update(ctx, func(txn *badger.Txn) error {
		var t Token
		if err := getToken(txn, id, &t); err != nil {
			return fmt.Errorf("token %s: %w", id, err)
		}
		if err := txn.Delete([]byte(pTokOwner + t.OwnerID + "/" + id)); err != nil {
			return err
		}
		if err := tombstone(txn, id, "revoked"); err != nil {
			return err
		}
		if err := addTokenCount(txn, t.Kind, -1); err != nil {
			return err
		}
		return txn.Delete([]byte(pToken + id))
	})
	if err != nil {
		return fmt.Errorf("delete token: %w", err)
	}
	s.idx.remove(id)
	s.notify(Change{ChangeToken, id})
	return nil
}

// TokenAuth returns what a check needs of a live token, from memory. The index holds every live
// token, so for one it lacks only the tombstone is read, to say whether it was revoked or never
// existed.
func (s *DB) TokenAuth(_ context.Context, id token.ID) (TokenAuth, error) {
	if t, ok := s.idx.get(id); ok {
		return t, nil
	}
	err := s.view(func(txn *badger.Txn) error {
		why, err := getString(txn, pRevoked+id.String())
		if err == nil {
			return fmt.Errorf("%s: %w", why, ErrRevoked)
		}
		return err
	})
	return TokenAuth{}, fmt.Errorf("get token %s: %w", id, err)
}

func (s *DB) TouchTokens(ctx context.Context, used map[string]time.Time) error {
	return s.update(ctx, func(txn *badger.Txn) error {
		for id, at := range used {
			var t Token
			err := getToken(txn, id, &t)
			if errors.Is(err, ErrNotFound) {
				continue // revoked since it was used
			}
			if err != nil {
				return err
			}
			if at.After(t.LastUsedAt) {
				t.LastUsedAt = at
				if err := putToken(txn, &t); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// --- signing keys ---

func (s *DB) PutSigningKey(ctx context.Context, k SigningKey) error {
	err := s.update(ctx, func(txn *badger.Txn) error { return putJSON(txn, pKey+k.KID, k) })
	if err != nil {
		return fmt.Errorf("put signing key: %w", err)
	}
	s.notify(Change{ChangeKey, k.KID})
	return nil
}

func (s *DB) ListSigningKeys(context.Context) ([]SigningKey, error) {
	ks, err := list[SigningKey](s, pKey)
	sort.Slice(ks, func(i, j int) bool { return ks[i].CreatedAt.Before(ks[j].CreatedAt) })
	return ks, err
}

// --- audit ---

func (s *DB) AppendAudit(ctx context.Context, e AuditEvent) error {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	var k [len(pAudit) + 12]byte
	copy(k[:], pAudit)
	binary.BigEndian.PutUint64(k[len(pAudit):], uint64(e.Time.UnixNano()))
	binary.BigEndian.PutUint32(k[len(pAudit)+8:], s.auditSeq.Add(1))
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode audit event: %w", err)
	}
	return s.update(ctx, func(txn *badger.Txn) error {
		entry := badger.NewEntry(k[:], b)
		if s.opts.AuditRetention > 0 {
			entry = entry.WithTTL(s.opts.AuditRetention)
		}
		return txn.SetEntry(entry)
	})
}

// ListAudit returns matching events, oldest first; with a Limit, the newest Limit of them.
func (s *DB) ListAudit(_ context.Context, f AuditFilter) ([]AuditEvent, error) {
	var out []AuditEvent
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pAudit), PrefetchValues: true})
		defer it.Close()
		start := []byte(pAudit)
		if !f.Since.IsZero() {
			start = binary.BigEndian.AppendUint64(start, uint64(f.Since.UnixNano()))
		}
		for it.Seek(start); it.Valid(); it.Next() {
			var e AuditEvent
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &e) }); err != nil {
				return err
			}
			if f.Actor != "" && e.Actor != f.Actor {
				continue
			}
			out = append(out, e)
		}
		return nil
	})
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[len(out)-f.Limit:]
	}
	return out, err
}

// --- bootstrap ---

func (s *DB) Bootstrap(ctx context.Context, fn func(ctx context.Context) error) (bool, error) {
	var done bool
	err := s.view(func(txn *badger.Txn) error {
		var err error
		done, err = exists(txn, kBoot)
		return err
	})
	if err != nil || done {
		return false, err
	}
	if err := fn(ctx); err != nil {
		return false, fmt.Errorf("bootstrap: %w", err)
	}
	err = s.update(ctx, func(txn *badger.Txn) error {
		return txn.Set([]byte(kBoot), []byte(time.Now().UTC().Format(time.RFC3339)))
	})
	return err == nil, err
}

// badgerLogger routes Badger's chatter to slog, keeping only what an operator should see.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any) {
	b.l.Error("badger: " + strings.TrimSpace(fmt.Sprintf(f, a...)))
}
func (b badgerLogger) Warningf(f string, a ...any) {
	b.l.Warn("badger: " + strings.TrimSpace(fmt.Sprintf(f, a...)))
}
func (b badgerLogger) Infof(string, ...any)  {}
func (b badgerLogger) Debugf(string, ...any) {}
