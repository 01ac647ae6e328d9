package resolver

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// entry is one resolved token. It is immutable once in the cache, except for memo and retry.
type entry struct {
	hash      token.Hash
	kind      token.Kind
	expires   time.Time // zero: never
	principal *policy.Principal
	id        token.ID // the token id to report (a JWT's jti)
	// limits are where the token may be used, parsed when it was read (nil: anywhere).
	limits *store.Limits
	// deps are the records the entry was built from: a change of any of them drops it.
	deps []dep
	// epoch is the cache's reset epoch when the entry was read from the store: one from an
	// older epoch is re-checked before it is used (see cache.reset).
	epoch uint64
	// retry is when (Unix nanoseconds) to re-check a stale entry again after a re-check could
	// not reach the store; until then it is served as it is (within the staleness limit).
	retry atomic.Int64
	// memo holds per-target results computed by callers (extauthz's decisions), so a repeated
	// check of the same target costs one map read. It dies with the entry, and a project's
	// part of it with a change of that project. See MemoOf.
	memo atomic.Pointer[memoTable]
}

// dep names a record an entry depends on.
type dep struct {
	kind depKind
	id   string // an owner's id, or "org/project"
}

type depKind uint8

const (
	depOwner   depKind = iota + 1 // a token's owner, or the issuer of one of our JWTs
	depProject                    // the project one of our JWTs names (its audience)
	depKeys                       // our signing keys (every JWT we verified with them)
)

const shards = 64

// cache maps token ids to resolved principals. It is bounded (approximately random eviction
// when a shard is full) and drops exactly what a change names: one token (drop), every entry
// built from one record (dropDep, through an index of the records entries depend on), or a
// project's memoized decisions (dropProject). It is generation-stamped: every drop bumps the
// generation first, and a store read that started under an older generation is never inserted,
// so a check racing a revocation cannot put a stale principal back.
type cache struct {
	gen      atomic.Uint64
	epoch    atomic.Uint64 // bumped by reset
	resetAt  atomic.Int64  // Unix nanoseconds of the last reset
	perShard int
	shard    [shards]struct {
		mu sync.RWMutex
		m  map[token.ID]*entry
	}
	// deps indexes entries by the records they depend on: for each record, the ids of the
	// entries (with how many entries or insertions in flight hold it: an id's count drops to
	// zero only once no entry under it depends on the record).
	dmu  sync.Mutex
	deps map[dep]map[token.ID]int

	hits, misses, evictions, drops atomic.Uint64
	rechecks, staleServed          atomic.Uint64
}

func newCache(size int) *cache {
	if size < 0 {
		size = 0 // every get misses
	} else if size < shards {
		size = shards
	}
	c := &cache{perShard: size / shards, deps: map[dep]map[token.ID]int{}}
	for i := range c.shard {
		c.shard[i].m = make(map[token.ID]*entry)
	}
	return c
}

func (c *cache) get(id token.ID) *entry {
	s := &c.shard[id[0]%shards]
	s.mu.RLock()
	e := s.m[id]
	s.mu.RUnlock()
	if e == nil {
		c.misses.Add(1)
	} else {
		c.hits.Add(1)
	}
	return e
}

// stale reports whether e was read before the last reset and must be re-checked.
func (c *cache) stale(e *entry) bool { return e.epoch != c.epoch.Load() }

// ref adds n to the count of id under each of deps.
func (c *cache) ref(deps []dep, id token.ID, n int) {
	if len(deps) == 0 {
		return
	}
	c.dmu.Lock()
	defer c.dmu.Unlock()
	for _, d := range deps {
		ids := c.deps[d]
		if ids == nil {
			if n < 0 {
				continue
			}
			ids = map[token.ID]int{}
			c.deps[d] = ids
		}
		if ids[id] += n; ids[id] <= 0 {
			delete(ids, id)
			if len(ids) == 0 {
				delete(c.deps, d)
			}
		}
	}
}

// put inserts e unless the cache was invalidated since gen was read. Its dependencies are
// indexed before it is inserted, so a drop that bumps the generation after this put checked it
// finds the entry through the index.
func (c *cache) put(id token.ID, e *entry, gen uint64) {
	if c.perShard == 0 {
		return
	}
	c.ref(e.deps, id, 1)
	s := &c.shard[id[0]%shards]
	s.mu.Lock()
	if c.gen.Load() != gen {
		s.mu.Unlock()
		c.ref(e.deps, id, -1)
		return
	}
	var gone *entry
	var goneID token.ID
	if old, ok := s.m[id]; ok {
		gone, goneID = old, id
	} else if len(s.m) >= c.perShard {
		for k, v := range s.m { // map iteration starts at a random place: evict one entry
			delete(s.m, k)
			gone, goneID = v, k
			c.evictions.Add(1)
			break
		}
	}
	s.m[id] = e
	s.mu.Unlock()
	if gone != nil {
		c.ref(gone.deps, goneID, -1)
	}
}

// remove takes id's entry out of the cache and returns it.
func (c *cache) remove(id token.ID) *entry {
	s := &c.shard[id[0]%shards]
	s.mu.Lock()
	e := s.m[id]
	delete(s.m, id)
	s.mu.Unlock()
	if e != nil {
		c.drops.Add(1)
		c.ref(e.deps, id, -1)
	}
	return e
}

// drop removes one token's entry (a revocation).
func (c *cache) drop(id token.ID) {
	c.gen.Add(1)
	c.remove(id)
}

// dropDep removes every entry that depends on d (an owner's tokens and the JWTs it issued),
// and returns the ids of the tokens (not JWTs) it removed.
func (c *cache) dropDep(d dep) []token.ID {
	c.gen.Add(1)
	c.dmu.Lock()
	var ids []token.ID
	for id := range c.deps[d] {
		ids = append(ids, id)
	}
	c.dmu.Unlock()
	toks := ids[:0]
	for _, id := range ids {
		if e := c.remove(id); e != nil && e.kind != kindJWT {
			toks = append(toks, id)
		}
	}
	return toks
}

// dropProject removes what depends on org/project: our JWTs naming it (their audience is the
// project's), and every memoized decision about it.
func (c *cache) dropProject(org, project string) {
	c.dropDep(dep{depProject, org + "/" + project}) // JWTs only
	for i := range c.shard {
		s := &c.shard[i]
		s.mu.RLock()
		for _, e := range s.m {
			if t := e.memo.Load(); t != nil {
				(*t).dropProject(org, project)
			}
		}
		s.mu.RUnlock()
	}
}

// reset marks every entry as needing a re-check: the store said anything may have changed.
// Nothing is dropped, so a store that is unreachable right after does not empty the cache.
func (c *cache) reset(now time.Time) {
	c.resetAt.Store(now.UnixNano())
	c.epoch.Add(1)
}

// invalidate drops everything: for a change the cache does not know how to target.
func (c *cache) invalidate() {
	c.gen.Add(1)
	for i := range c.shard {
		s := &c.shard[i]
		s.mu.Lock()
		m := s.m
		s.m = make(map[token.ID]*entry, len(m))
		s.mu.Unlock()
		c.drops.Add(uint64(len(m)))
		for id, e := range m {
			c.ref(e.deps, id, -1)
		}
	}
}

// dropKind drops the entries of one kind; like invalidate, it discards what is being resolved
// meanwhile.
func (c *cache) dropKind(k token.Kind) {
	c.gen.Add(1)
	for i := range c.shard {
		s := &c.shard[i]
		var gone []token.ID
		s.mu.Lock()
		for id, e := range s.m {
			if e.kind == k {
				gone = append(gone, id)
			}
		}
		s.mu.Unlock()
		for _, id := range gone {
			c.remove(id)
		}
	}
}

func (c *cache) len() int {
	n := 0
	for i := range c.shard {
		s := &c.shard[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
