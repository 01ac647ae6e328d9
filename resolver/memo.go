package resolver

import (
	"maps"
	"sync"
	"sync/atomic"
)

// Memo is a table of values a caller derives from one token's principal, such as extauthz's
// decision for each target. It belongs to the token's cache entry: a change of the token or its
// owner, or an eviction, drops it with the entry, so a revocation is seen by the next check; a
// change of a project drops the values whose key is about that project (ProjectScoped).
//
// Keys are typed, so a lookup boxes nothing and allocates nothing. Reads of a key that has
// been promoted take no lock; like sync.Map, newer keys are read under the lock from a dirty
// copy until as many such reads as there are keys have paid for promoting it.
type Memo[K comparable, V any] struct {
	read   atomic.Pointer[map[K]V] // never written once published
	mu     sync.Mutex
	dirty  map[K]V // nil, or every key: read's and newer ones
	misses int
}

// ProjectScoped is a memo key about one project: a change of that project drops its value.
// A key that does not implement it is dropped by a change of any project.
type ProjectScoped interface {
	MemoProject() (org, project string)
}

// memoTable is a *Memo of any type: what an entry holds, made by the first MemoOf.
type memoTable interface {
	memoTable()
	dropProject(org, project string)
}

func (*Memo[K, V]) memoTable() {}

// dropProject removes the values about org/project.
func (m *Memo[K, V]) dropProject(org, project string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dirty == nil {
		r := m.read.Load()
		if r == nil {
			return
		}
		found := false
		for k := range *r {
			if about(k, org, project) {
				found = true
				break
			}
		}
		if !found {
			return // nothing to drop: keep read as it is, with no copy
		}
		m.makeDirty()
	}
	for k := range m.dirty {
		if about(k, org, project) {
			delete(m.dirty, k)
		}
	}
	m.promote()
}

func about(k any, org, project string) bool {
	ps, ok := k.(ProjectScoped)
	if !ok {
		return true
	}
	o, p := ps.MemoProject()
	return o == org && p == project
}

// MemoOf returns r's memo, making it on first use. A token's entry holds one memo, so all
// callers of a resolver use the same K and V (one does: extauthz); a caller asking with
// other types, or a Result that is not from Resolve, gets an empty memo that is not kept.
func MemoOf[K comparable, V any](r Result) *Memo[K, V] {
	if r.entry == nil {
		return new(Memo[K, V])
	}
	if p := r.entry.memo.Load(); p != nil {
		m, _ := (*p).(*Memo[K, V])
		if m == nil {
			return new(Memo[K, V])
		}
		return m
	}
	var t memoTable = new(Memo[K, V])
	r.entry.memo.CompareAndSwap(nil, &t)
	return MemoOf[K, V](r) // ours, or the one a concurrent first use stored

}

// Load returns the value of key.
func (m *Memo[K, V]) Load(key K) (V, bool) {
	if r := m.read.Load(); r != nil {
		if v, ok := (*r)[key]; ok {
			return v, true
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.dirty[key]
	if m.dirty != nil {
		m.misses++
		if m.misses >= len(m.dirty) {
			m.promote()
		}
	}
	return v, ok
}

// LoadOrStore returns the value of key, storing v first if there is none, so concurrent
// callers end up sharing one value.
func (m *Memo[K, V]) LoadOrStore(key K, v V) V {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dirty == nil {
		if r := m.read.Load(); r != nil {
			if cur, ok := (*r)[key]; ok {
				return cur
			}
		}
		m.makeDirty()
	} else if cur, ok := m.dirty[key]; ok {
		return cur
	}
	m.dirty[key] = v
	return v
}

// Store replaces the value of key (one that went stale). The replacement is published at
// once: the old value may still be in read.
func (m *Memo[K, V]) Store(key K, v V) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dirty == nil {
		m.makeDirty()
	}
	m.dirty[key] = v
	m.promote()
}

// makeDirty starts a dirty copy of read; mu is held.
func (m *Memo[K, V]) makeDirty() {
	r := m.read.Load()
	if r == nil {
		m.dirty = make(map[K]V, 1)
		return
	}
	m.dirty = make(map[K]V, len(*r)+1)
	maps.Copy(m.dirty, *r)
}

// promote publishes dirty as read; mu is held.
func (m *Memo[K, V]) promote() {
	d := m.dirty
	m.read.Store(&d)
	m.dirty, m.misses = nil, 0
}
