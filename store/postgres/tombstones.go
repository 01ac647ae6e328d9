package postgres

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/rill-authd/rill-authd/token"
)

// tombstones is the in-memory set of tokens revoked within the tombstone period, so TokenAuth
// tells revoked from unknown without a query. Writes are rare (revocations); reads are checks
// of tokens the index lacks, possibly a flood, so it is sharded like the index.
type tombstones struct {
	shards [16]tombShard
	mu     sync.Mutex
	whys   atomic.Pointer[[]string] // interned reasons, few distinct; only appended to
}

type tombShard struct {
	mu sync.RWMutex
	m  map[token.ID]tombstone
}

type tombstone struct {
	at  int64 // Unix nanoseconds of the deletion
	why uint32
}

func newTombstones() *tombstones {
	d := &tombstones{}
	d.whys.Store(&[]string{})
	for i := range d.shards {
		d.shards[i].m = map[token.ID]tombstone{}
	}
	return d
}

func (d *tombstones) intern(why string) uint32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	whys := *d.whys.Load()
	for i, w := range whys {
		if w == why {
			return uint32(i)
		}
	}
	whys = append(whys, why)
	d.whys.Store(&whys)
	return uint32(len(whys) - 1)
}

func (d *tombstones) add(id token.ID, why string, at time.Time) {
	t := tombstone{at: at.UnixNano(), why: d.intern(why)}
	sh := &d.shards[id[15]&15]
	sh.mu.Lock()
	sh.m[id] = t
	sh.mu.Unlock()
}

// addAll adds many tombstones of one reason, locking each shard once.
func (d *tombstones) addAll(ids []token.ID, why string, at time.Time) {
	if len(ids) == 0 {
		return
	}
	t := tombstone{at: at.UnixNano(), why: d.intern(why)}
	var byShard [16][]token.ID
	for _, id := range ids {
		byShard[id[15]&15] = append(byShard[id[15]&15], id)
	}
	for i := range d.shards {
		if len(byShard[i]) == 0 {
			continue
		}
		sh := &d.shards[i]
		sh.mu.Lock()
		for _, id := range byShard[i] {
			sh.m[id] = t
		}
		sh.mu.Unlock()
	}
}

func (d *tombstones) get(id token.ID) (string, bool) {
	sh := &d.shards[id[15]&15]
	sh.mu.RLock()
	t, ok := sh.m[id]
	sh.mu.RUnlock()
	if !ok {
		return "", false
	}
	return (*d.whys.Load())[t.why], true
}

// prune forgets tombstones older than before.
func (d *tombstones) prune(before time.Time) {
	for i := range d.shards {
		sh := &d.shards[i]
		sh.mu.Lock()
		for id, t := range sh.m {
			if t.at < before.UnixNano() {
				delete(sh.m, id)
			}
		}
		sh.mu.Unlock()
	}
}

func (d *tombstones) len() int {
	n := 0
	for i := range d.shards {
		sh := &d.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}
