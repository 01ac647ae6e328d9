// Package tokindex is the in-memory index of live tokens that every engine answers
// store.CheckReader.TokenAuth from, so a check never waits on disk or the network.
package tokindex

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// Index holds the TokenAuth of every live token in memory, so a check that misses the
// resolver's cache costs a map lookup instead of a read from the engine. Entries are
// pointer-free (64 bytes of map slot each, ~95 MB per million tokens with the map's slack) so
// the garbage collector never scans them; owners and kinds, which repeat, are interned.
//
// The engine loads it on open and changes it only after the transaction that changed the
// records commits, in commit order (a revoke that commits after a create is never overtaken by
// it). Readers never wait for a commit.
type Index struct {
	shards [16]shard
	names  atomic.Pointer[[]string] // interned owner ids and kinds, by number; only appended to
	mu     sync.Mutex               // serializes interning
	ids    map[string]uint32
}

type shard struct {
	mu sync.RWMutex
	m  map[token.ID]entry
}

type entry struct {
	hash    token.Hash
	expires int64 // Unix nanoseconds; 0 for none
	owner   uint32
	kind    uint32
}

// New returns an empty index.
func New() *Index {
	x := &Index{ids: map[string]uint32{}}
	x.names.Store(&[]string{})
	for i := range x.shards {
		x.shards[i].m = map[token.ID]entry{}
	}
	return x
}

// Reserve sizes the maps of an empty index for n tokens, so a load does not grow them step by
// step.
func (x *Index) Reserve(n int) {
	for i := range x.shards {
		sh := &x.shards[i]
		sh.mu.Lock()
		if len(sh.m) == 0 {
			sh.m = make(map[token.ID]entry, n/len(x.shards))
		}
		sh.mu.Unlock()
	}
}

func (x *Index) shard(id *token.ID) *shard { return &x.shards[id[15]&15] }

// intern returns the number of s, adding it if new. The table only grows; it holds each owner
// id and kind once, however many tokens share it.
func (x *Index) intern(s string) uint32 {
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

// Put adds (or replaces) a token.
func (x *Index) Put(id token.ID, kind token.Kind, owner string, hash token.Hash, expires time.Time) {
	e := entry{hash: hash, owner: x.intern(owner), kind: x.intern(string(kind))}
	if !expires.IsZero() {
		e.expires = expires.UnixNano()
	}
	sh := x.shard(&id)
	sh.mu.Lock()
	sh.m[id] = e
	sh.mu.Unlock()
}

// Remove drops tokens; ids it does not hold are ignored.
func (x *Index) Remove(ids ...token.ID) {
	for i := range ids {
		sh := x.shard(&ids[i])
		sh.mu.Lock()
		delete(sh.m, ids[i])
		sh.mu.Unlock()
	}
}

// Get returns a live token's check facts.
func (x *Index) Get(id token.ID) (store.TokenAuth, bool) {
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

// Len is the number of tokens held.
func (x *Index) Len() int {
	n := 0
	for i := range x.shards {
		sh := &x.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}
