package resolver

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/token"
)

// entry is one resolved token. It is immutable once in the cache, except for memo.
type entry struct {
	hash      token.Hash
	kind      token.Kind
	expires   time.Time // zero: never
	principal *policy.Principal
	id        token.ID // the token id to report (a JWT's jti)
	// memo holds per-target results computed by callers (extauthz's decisions), so a repeated
	// check of the same target costs one map read. It dies with the entry on invalidation.
	// See MemoOf.
	memo atomic.Pointer[memoTable]
}

const shards = 64

// cache maps token ids to resolved principals. It is bounded (approximately random eviction
// when a shard is full) and generation-stamped: invalidate bumps the generation before
// clearing, and a store read that started under an older generation is never inserted, so a
// check racing a revocation cannot put a stale principal back.
type cache struct {
	gen      atomic.Uint64
	perShard int
	shard    [shards]struct {
		mu sync.RWMutex
		m  map[token.ID]*entry
	}
	hits, misses, evictions atomic.Uint64
}

func newCache(size int) *cache {
	if size < 0 {
		size = 0 // every get misses
	} else if size < shards {
		size = shards
	}
	c := &cache{perShard: size / shards}
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

// put inserts e unless the cache was invalidated since gen was read.
func (c *cache) put(id token.ID, e *entry, gen uint64) {
	s := &c.shard[id[0]%shards]
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.gen.Load() != gen || c.perShard == 0 {
		return
	}
	if _, ok := s.m[id]; !ok && len(s.m) >= c.perShard {
		for k := range s.m { // map iteration starts at a random place: evict one entry
			delete(s.m, k)
			c.evictions.Add(1)
			break
		}
	}
	s.m[id] = e
}

func (c *cache) invalidate() {
	c.gen.Add(1)
	for i := range c.shard {
		s := &c.shard[i]
		s.mu.Lock()
		clear(s.m)
		s.mu.Unlock()
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
