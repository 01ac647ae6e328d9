package badger

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// tokIndex holds the TokenAuth of every live token in memory, so a check that misses the
// resolver's cache costs a map lookup instead of an LSM read: from Badger's SSTables a read
// costs several times what it costs from its memtable, so without it a miss got slower as the
// store grew. Entries are pointer-free (64 bytes of map slot each, ~95 MB per million tokens
// with the map's slack) so the garbage collector never scans them; owners and kinds, which
// repeat, are interned.
//
// It is loaded from Badger on open and changed only after the transaction that changed the
// records commits. Writers that add or remove tokens hold DB.wmu from before their transaction
// until the index is updated, so the index sees commits in commit order (a revoke that commits
// after a create is never overtaken by it). Readers never wait for a commit's fsync.
type tokIndex struct {
	shards [16]tokShard
	names  atomic.Pointer[[]string] // interned owner ids and kinds, by number; only appended to
	mu     sync.Mutex               // serializes interning
	ids    map[string]uint32
}

type tokShard struct {
	mu sync.RWMutex
	m  map[token.ID]tokEntry
}

type tokEntry struct {
	hash    token.Hash
	expires int64 // Unix nanoseconds; 0 for none
	owner   uint32
	kind    uint32
}

func newTokIndex() *tokIndex {
	x := &tokIndex{ids: map[string]uint32{}}
	x.names.Store(&[]string{})
	for i := range x.shards {
		x.shards[i].m = map[token.ID]tokEntry{}
	}
	return x
}

func (x *tokIndex) shard(id *token.ID) *tokShard { return &x.shards[id[15]&15] }

// intern returns the number of s, adding it if new. The table only grows; it holds each owner
// id and kind once, however many tokens share it.
func (x *tokIndex) intern(s string) uint32 {
	x.mu.Lock()
	defer x.mu.Unlock()
	if n, ok := x.ids[s]; ok {
		return n
	}
	// Appending never moves what readers of the old slice can see: they stop at its length.
	names := append(*x.names.Load(), s)
	n := uint32(len(names) - 1)
	x.names.Store(&names)
	x.ids[s] = n
	return n
}

// put adds a token. Ids that are not UUIDs were never issued by rill-authd and no bearer token
// can name them, so they are not indexed.
func (x *tokIndex) put(id string, kind token.Kind, owner string, hash token.Hash, expires time.Time) {
	tid, err := token.ParseID(id)
	if err != nil {
		return
	}
	e := tokEntry{hash: hash, owner: x.intern(owner), kind: x.intern(string(kind))}
	if !expires.IsZero() {
		e.expires = expires.UnixNano()
	}
	sh := x.shard(&tid)
	sh.mu.Lock()
	sh.m[tid] = e
	sh.mu.Unlock()
}

func (x *tokIndex) remove(ids ...string) {
	for _, id := range ids {
		tid, err := token.ParseID(id)
		if err != nil {
			continue
		}
		sh := x.shard(&tid)
		sh.mu.Lock()
		delete(sh.m, tid)
		sh.mu.Unlock()
	}
}

func (x *tokIndex) get(id token.ID) (store.TokenAuth, bool) {
	sh := x.shard(&id)
	sh.mu.RLock()
	e, ok := sh.m[id]
	sh.mu.RUnlock()
	if !ok {
		return store.TokenAuth{}, false
	}
	names := *x.names.Load()
	t := store.TokenAuth{Kind: token.Kind(names[e.kind]), OwnerID: names[e.owner], Hash: e.hash}
	if e.expires != 0 {
		t.ExpiresAt = time.Unix(0, e.expires).UTC()
	}
	return t, true
}

func (x *tokIndex) len() int {
	n := 0
	for i := range x.shards {
		sh := &x.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}

// load fills the index from every token record in Badger; expect is how many there are, to size
// the maps once instead of growing them step by step.
func (x *tokIndex) load(db *badger.DB, expect int) error {
	for i := range x.shards {
		x.shards[i].m = make(map[token.ID]tokEntry, expect/len(x.shards))
	}
	return db.View(func(txn *badger.Txn) error {
		// Records are small and stored in the LSM tree, so values are read in line: prefetching
		// would start a goroutine per record.
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pToken)})
		defer it.Close()
		var t store.Token
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			err := item.Value(func(b []byte) error { return decodeToken(b, &t) })
			if err != nil {
				return fmt.Errorf("token record %s: %w", item.Key(), err)
			}
			x.put(t.ID, t.Kind, t.OwnerID, t.Hash, t.ExpiresAt)
		}
		return nil
	})
}
