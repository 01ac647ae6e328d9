package postgres

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// TestWriteLargerThanARead: a write of more changes than one read of the feed returns reaches
// the other replica whole (its subscribers hear it in one call, once), read in bounded pieces.
func TestWriteLargerThanARead(t *testing.T) {
	old := feedBatch
	feedBatch = 7
	t.Cleanup(func() { feedBatch = old })
	u := newDatabase(t)
	a, b, c := openDB(t, u), openDB(t, u), openDB(t, u)
	logB := (&seqLog{}).subscribe(b)
	var calls []int
	b.Subscribe(func(cs []store.Change) { calls = append(calls, len(cs)) })
	must(t, a.CreateUser(ctx, store.User{ID: "u1", Email: "a@b.c"}))
	eventually(t, 2*time.Second, "C follows", func() bool { applied, _ := c.Current(); return applied == 1 })
	c.amu.Lock() // C's follower waits; the test reads C's feed itself, one bounded read at a time
	cLocked := true
	defer func() {
		if cLocked {
			c.amu.Unlock()
		}
	}()
	const n = 40 // one ImportTokens batch: one write of 40 changes, more than 5 reads
	var recs []store.Token
	var raws []token.Token
	for range n {
		tk, raw := newToken(t, token.User, "u1")
		recs, raws = append(recs, tk), append(raws, raw)
	}
	must(t, a.ImportTokens(ctx, recs))
	var p partial
	for read := 1; ; read++ {
		more, err := c.applyBatch(ctx, c.pool, 0, &p)
		must(t, err)
		applied, _ := c.Current()
		switch {
		case read*feedBatch < n+1 && (!more || applied != 1 || len(p.rows) != read*feedBatch):
			t.Fatalf("read %d: more %v, applied %d, %d changes held; want a bounded read of %d more, nothing applied", read, more, applied, len(p.rows), feedBatch)
		case read*feedBatch >= n+1 && applied != uint64(n)+1:
			t.Fatalf("read %d: applied %d, want the whole write (%d)", read, applied, n+1)
		}
		if !more {
			break
		}
	}
	c.amu.Unlock()
	cLocked = false
	must(t, a.CreateUser(ctx, store.User{ID: "u2", Email: "b@b.c"}))
	last, err := a.LastSeq(ctx)
	must(t, err)
	eventually(t, 5*time.Second, "B applies everything", func() bool { return logB.last() == last })
	logB.exactlyOnce(t, 0, last)
	b.amu.Lock()
	got := append([]int(nil), calls...)
	b.amu.Unlock()
	if len(got) != 3 || got[1] != n {
		t.Fatalf("B's subscriber heard writes of %v changes, want [1 %d 1]", got, n)
	}
	for _, raw := range raws {
		if _, err := b.TokenAuth(ctx, raw.ID); err != nil {
			t.Fatalf("B does not know a token of the large write: %v", err)
		}
	}
	if _, at := b.Current(); time.Since(at) > 2*time.Second {
		t.Fatalf("B is not confirmed current after the large write (%v ago)", time.Since(at))
	}
}

// TestPurgeCutShort: an owner's delete whose token purge stopped part way (the replica died)
// leaves its tokens revoked for every read, on replicas that follow the feed and on one that
// opens afterwards; maintenance finishes it, and creating an owner again under that id never
// brings the old tokens back.
func TestPurgeCutShort(t *testing.T) {
	u := newDatabase(t)
	a, b := openDB(t, u), openDB(t, u)
	must(t, a.CreateOrg(ctx, store.Org{Name: "acme"}))
	must(t, a.CreateService(ctx, store.Service{ID: "s1", Org: "acme", Name: "ci"}))
	var recs []store.Token
	for range 30 {
		tk, _ := newToken(t, token.Service, "s1")
		recs = append(recs, tk)
	}
	must(t, a.ImportTokens(ctx, recs))
	// What deleteOwner's write does, without its purge.
	at := time.Now().Add(-2 * purgeStale)
	err := a.write(ctx, func(w *wtx) error {
		if _, err := w.Exec(ctx, "DELETE FROM services WHERE id = 's1'"); err != nil {
			return err
		}
		if _, err := w.Exec(ctx, "INSERT INTO purges (owner_id, kind, why, deleted_at) VALUES ('s1', 'svc', 'service deleted', $1)", at); err != nil {
			return err
		}
		w.change(store.ChangeService, store.OpDelete, "s1")
		return nil
	})
	must(t, err)
	c := openDB(t, u) // reloads with the purge pending
	revokedEverywhere := func(when string) {
		t.Helper()
		for _, s := range []*DB{a, b, c} {
			eventually(t, 2*time.Second, when+": every replica refuses the tokens", func() bool {
				for _, tk := range recs {
					if _, err := s.TokenAuth(ctx, tk.ID); !errors.Is(err, store.ErrRevoked) || !strings.Contains(err.Error(), "service deleted") {
						return false
					}
				}
				return true
			})
			if _, err := s.GetToken(ctx, recs[0].ID); !errors.Is(err, store.ErrRevoked) || !strings.Contains(err.Error(), "service deleted") {
				t.Fatalf("%s: GetToken: %v, want revoked (service deleted)", when, err)
			}
			if ts, err := s.ListTokens(ctx, "s1"); err != nil || len(ts) != 0 {
				t.Fatalf("%s: ListTokens of the deleted service: %d %v", when, len(ts), err)
			}
			if err := s.DeleteToken(ctx, recs[1].ID); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("%s: DeleteToken of a token of the deleted service: %v, want ErrNotFound", when, err)
			}
		}
	}
	revokedEverywhere("purge pending")
	var left int
	must(t, a.pool.QueryRow(ctx, "SELECT count(*) FROM tokens").Scan(&left))
	if left != len(recs) {
		t.Fatalf("%d token rows before the purge resumed, want %d", left, len(recs))
	}
	// Creating a service under the same id finishes the purge first.
	must(t, b.CreateService(ctx, store.Service{ID: "s1", Org: "acme", Name: "ci"}))
	revokedEverywhere("owner created again")
	must(t, a.pool.QueryRow(ctx, "SELECT count(*) FROM tokens").Scan(&left))
	if left != 0 {
		t.Fatalf("%d token rows after the owner was created again, want 0", left)
	}
	var tombs, purges int
	must(t, a.pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM tombstones WHERE why = 'service deleted'), (SELECT count(*) FROM purges)").Scan(&tombs, &purges))
	if tombs != len(recs) || purges != 0 {
		t.Fatalf("%d tombstones and %d purges left, want %d and 0", tombs, purges, len(recs))
	}
	if counts, err := a.CountTokens(ctx); err != nil || counts[token.Service] != 0 {
		t.Fatalf("counts after the purge: %v %v", counts, err)
	}

	// Maintenance finishes a purge left by a replica that stopped.
	must(t, a.CreateService(ctx, store.Service{ID: "s2", Org: "acme", Name: "cd"}))
	tk, _ := newToken(t, token.Service, "s2")
	must(t, a.CreateToken(ctx, tk))
	must(t, a.write(ctx, func(w *wtx) error {
		if _, err := w.Exec(ctx, "DELETE FROM services WHERE id = 's2'"); err != nil {
			return err
		}
		_, err := w.Exec(ctx, "INSERT INTO purges (owner_id, kind, why, deleted_at) VALUES ('s2', 'svc', 'service deleted', $1)", at)
		w.change(store.ChangeService, store.OpDelete, "s2")
		return err
	}))
	must(t, c.prune(ctx, time.Now()))
	must(t, a.pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM tokens), (SELECT count(*) FROM purges)").Scan(&left, &purges))
	if left != 0 || purges != 0 {
		t.Fatalf("after maintenance: %d tokens and %d purges left, want none", left, purges)
	}
	if _, err := b.GetToken(ctx, tk.ID); !errors.Is(err, store.ErrRevoked) {
		t.Fatalf("a token of the purged service: %v", err)
	}
}

// TestImportForAnOwnerDeletedMeanwhile: an import batch whose owner was deleted after the
// import checked it writes nothing (no replica would ever drop those tokens).
func TestImportForAnOwnerDeletedMeanwhile(t *testing.T) {
	s := freshDB(t)
	must(t, s.CreateUser(ctx, store.User{ID: "u1", Email: "a@b.c"}))
	tk, _ := newToken(t, token.User, "u1")
	err := s.write(ctx, func(w *wtx) error {
		if _, err := w.Exec(ctx, "DELETE FROM users WHERE id = 'u1'"); err != nil {
			return err
		}
		return ownersExist(w, []store.Token{tk})
	})
	if !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "u1") {
		t.Fatalf("a batch for a deleted owner: %v, want ErrNotFound naming it", err)
	}
}

// TestDeleteReturnsBeforeItsPurge: a delete waits for its owner's tokens to reach tombstones at
// most purgeWait (here a nanosecond), then returns how many it revoked, the tokens refused
// already, and the purge finishes on its own. Before, the request waited for the whole purge,
// which for an owner of a million imported tokens outlasted the HTTP write timeout.
func TestDeleteReturnsBeforeItsPurge(t *testing.T) {
	u := newDatabase(t)
	a := openDB(t, u, func(o *Options) { o.purgeWait = time.Nanosecond })
	must(t, a.CreateOrg(ctx, store.Org{Name: "acme"}))
	must(t, a.CreateService(ctx, store.Service{ID: "s1", Org: "acme", Name: "ci"}))
	old := purgeBatch
	purgeBatch = 100
	t.Cleanup(func() { purgeBatch = old })
	const n = 1000 // ten batches
	recs := make([]store.Token, n)
	for i := range recs {
		recs[i], _ = newToken(t, token.Service, "s1")
	}
	must(t, a.ImportTokens(ctx, recs))
	// The count's connection is taken first: taken after, it could wait in the pool behind the
	// purge's own (a loaded machine under -race) and count what the purge left, nothing.
	conn, err := a.pool.Acquire(ctx)
	must(t, err)
	defer conn.Release()
	got, err := a.DeleteService(ctx, "s1")
	must(t, err)
	var left int
	must(t, conn.QueryRow(ctx, "SELECT count(*) FROM tokens").Scan(&left))
	if got != n || left == 0 {
		t.Fatalf("DeleteService: %d revoked with %d token rows left, want %d revoked before the purge finished", got, left, n)
	}
	for _, tk := range []store.Token{recs[0], recs[n-1]} {
		if _, err := a.TokenAuth(ctx, tk.ID); !errors.Is(err, store.ErrRevoked) {
			t.Fatalf("a token of the deleted service while its purge runs: %v", err)
		}
	}
	eventually(t, 10*time.Second, "the purge finishes on its own", func() bool {
		var tombs, purges int
		must(t, a.pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM tokens), (SELECT count(*) FROM tombstones), (SELECT count(*) FROM purges)").Scan(&left, &tombs, &purges))
		return left == 0 && tombs == n && purges == 0
	})
}
