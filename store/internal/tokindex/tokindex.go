// Package tokindex is the in-memory index of live tokens that every engine answers
// store.CheckReader.TokenAuth from, so a check never waits on disk or the network.
package tokindex

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// Index holds the TokenAuth of every live token in memory, so a check that misses the
// resolver's cache costs a map lookup instead of a read from the engine. Entries are
// pointer-free (64 bytes of map slot each, ~95 MB per million tokens with the map's slack) so
// the garbage collector never scans them; owners (with their kind), which repeat, are interned.
// Each owner's tokens are also listed (16 bytes a token), for RemoveOwner.
//
// The engine loads it on open and changes it only after the transaction that changed the
// records commits, in commit order (a revoke that commits after a create is never overtaken by
// it). Readers never wait for a commit.
type Index struct {
	shards [16]shard
	names  atomic.Pointer[[]string] // interned "kind NUL owner id", by number; only appended to
	mu     sync.Mutex               // serializes writers: interning, puts, removals, owned
	ids    map[string]uint32
	// owned lists each owner's tokens (entry.pos is a token's place in its owner's list), so
	// RemoveOwner costs the owner's tokens, not a scan of the index.
	owned map[uint32][]token.ID
}

type shard struct {
	mu sync.RWMutex
	m  map[token.ID]entry
	// limits holds the constraints of the few tokens that have some (store.Limits), apart
	// from m so that its entries stay pointer-free.
	limits map[token.ID]*store.Limits
}

type entry struct {
	hash    token.Hash
	expires int64  // Unix nanoseconds; 0 for none
	owner   uint32 // the interned kind and owner
	pos     uint32 // the token's index in owned[owner]
}

// New returns an empty index.
func New() *Index {
	x := &Index{ids: map[string]uint32{}, owned: map[uint32][]token.ID{}}
	x.names.Store(&[]string{})
	for i := range x.shards {
		x.shards[i].m = map[token.ID]entry{}
		x.shards[i].limits = map[token.ID]*store.Limits{}
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

// intern returns the number of s, adding it if new. The table only grows; it holds each
// owner once, however many tokens share it. The caller holds mu.
func (x *Index) intern(s string) uint32 {
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

// ownerKey is what is interned for a token's owner: its kind and id (a kind has one owner table).
func ownerKey(kind token.Kind, owner string) string { return string(kind) + "\x00" + owner }

// Put adds (or replaces) a token; a's Limits replace the token's (nil: none), in the same
// step as the rest, so no reader sees the token without the constraints it has.
func (x *Index) Put(id token.ID, a store.TokenAuth) {
	x.mu.Lock()
	defer x.mu.Unlock()
	e := entry{hash: a.Hash, owner: x.intern(ownerKey(a.Kind, a.OwnerID))}
	if !a.ExpiresAt.IsZero() {
		e.expires = a.ExpiresAt.UnixNano()
	}
	sh := x.shard(&id)
	sh.mu.Lock()
	old, had := sh.m[id]
	if had && old.owner == e.owner {
		e.pos = old.pos
	} else {
		e.pos = uint32(len(x.owned[e.owner]))
	}
	sh.m[id] = e
	if a.Limits != nil {
		sh.limits[id] = a.Limits
	} else {
		delete(sh.limits, id)
	}
	sh.mu.Unlock()
	if had && old.owner == e.owner {
		return
	}
	if had {
		x.disown(old.owner, old.pos)
	}
	x.owned[e.owner] = append(x.owned[e.owner], id)
}

// disown takes the token at pos off owner's list, moving the last one into its place. The
// caller holds mu.
func (x *Index) disown(owner, pos uint32) {
	list := x.owned[owner]
	last := uint32(len(list) - 1)
	if pos != last {
		moved := list[last]
		list[pos] = moved
		sh := x.shard(&moved)
		sh.mu.Lock()
		e := sh.m[moved]
		e.pos = pos
		sh.m[moved] = e
		sh.mu.Unlock()
	}
	if last == 0 {
		delete(x.owned, owner)
		return
	}
	x.owned[owner] = list[:last]
}

// Remove drops tokens; ids it does not hold are ignored.
func (x *Index) Remove(ids ...token.ID) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for i := range ids {
		sh := x.shard(&ids[i])
		sh.mu.Lock()
		e, ok := sh.m[ids[i]]
		delete(sh.m, ids[i])
		delete(sh.limits, ids[i])
		sh.mu.Unlock()
		if ok {
			x.disown(e.owner, e.pos)
		}
	}
}

// RemoveOwner drops every token of an owner (a deleted user or service) and returns their ids,
// so the engine can remember them as revoked. It costs the owner's tokens, not the index's; the
// tokens go a shard at a time, so a check may still find one not yet removed: the caller
// records their revocation (tombstones) first.
func (x *Index) RemoveOwner(kind token.Kind, owner string) []token.ID {
	x.mu.Lock()
	defer x.mu.Unlock()
	n, ok := x.ids[ownerKey(kind, owner)]
	if !ok {
		return nil
	}
	list := x.owned[n]
	delete(x.owned, n)
	// One lock of each shard, not one per token: an owner may hold hundreds of thousands.
	var byShard [16][]token.ID
	for _, id := range list {
		byShard[id[15]&15] = append(byShard[id[15]&15], id)
	}
	for i := range x.shards {
		if len(byShard[i]) == 0 {
			continue
		}
		sh := &x.shards[i]
		sh.mu.Lock()
		for _, id := range byShard[i] {
			delete(sh.m, id)
			delete(sh.limits, id)
		}
		sh.mu.Unlock()
	}
	return list
}

// Owned returns the ids of an owner's tokens.
func (x *Index) Owned(kind token.Kind, owner string) []token.ID {
	x.mu.Lock()
	defer x.mu.Unlock()
	n, ok := x.ids[ownerKey(kind, owner)]
	if !ok {
		return nil
	}
	return append([]token.ID(nil), x.owned[n]...)
}

// Get returns a live token's check facts.
func (x *Index) Get(id token.ID) (store.TokenAuth, bool) {
	sh := x.shard(&id)
	sh.mu.RLock()
	e, ok := sh.m[id]
	lim := sh.limits[id]
	sh.mu.RUnlock()
	if !ok {
		return store.TokenAuth{}, false
	}
	kind, owner, _ := strings.Cut((*x.names.Load())[e.owner], "\x00")
	t := store.TokenAuth{Kind: token.Kind(kind), OwnerID: owner, Hash: e.hash, Limits: lim}
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
