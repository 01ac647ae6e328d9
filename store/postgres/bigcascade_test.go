package postgres

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// loadServiceTokens bulk-loads (store.Loader: one COPY) org acme with service "big" holding n
// tokens and service "other" holding one, and returns the ids of big's tokens and other's.
func loadServiceTokens(t testing.TB, s *DB, n int) ([]token.ID, token.ID) {
	t.Helper()
	now := time.Now()
	snap := store.Snapshot{
		Orgs:     []store.Org{{Name: "acme", CreatedAt: now}},
		Services: []store.Service{{ID: "big", Org: "acme", Name: "big"}, {ID: "other", Org: "acme", Name: "other"}},
		Tokens:   make([]store.Token, n+1),
	}
	// Random ids and hashes (no secrets are needed to ask TokenAuth), fast even under -race.
	rnd := rand.NewChaCha8([32]byte{byte(n)})
	ids := make([]token.ID, n)
	for i := range snap.Tokens {
		tk := store.Token{Kind: token.Service, OwnerID: "big", CreatedAt: now}
		rnd.Read(tk.ID[:])
		rnd.Read(tk.Hash[:])
		if i == n {
			tk.OwnerID = "other"
		} else {
			ids[i] = tk.ID
		}
		snap.Tokens[i] = tk
	}
	must(t, s.Load(ctx, snap, false))
	return ids, snap.Tokens[n].ID
}

// TestDeleteServiceWithManyTokens deletes a service holding 50,000 tokens (ten purge batches)
// through replica A while replica B answers token checks and writes: B never stops answering
// (its token of another service stays valid, it stays current), its writes are not held behind
// the delete (the write lock is held for one short write, the tokens move to tombstones outside
// it), and B refuses every one of them as revoked ("service deleted") at once, from the feed's
// one change. Before, the delete was one write of 50,001 changes under the lock.
// daemon.TestDeleteServiceWith200kTokensAcrossReplicas does 200,000 end to end.
func TestDeleteServiceWithManyTokens(t *testing.T) {
	const n = 50_000
	u := newDatabase(t)
	a := openDB(t, u)
	began := time.Now()
	ids, other := loadServiceTokens(t, a, n)
	loaded := time.Since(began)
	b := openDB(t, u)
	t.Logf("loaded %d tokens in %v, and opened replica B in %v", n, loaded.Round(time.Millisecond), (time.Since(began) - loaded).Round(time.Millisecond))

	var (
		stop                       = make(chan struct{})
		wg                         sync.WaitGroup
		checks, writes             atomic.Int64
		maxCheck, maxWrite, maxLag atomic.Int64 // nanoseconds
		mu                         sync.Mutex
		failures                   []string
		deleteStarted, deleteDone  atomic.Int64
	)
	fail := func(f string, args ...any) {
		mu.Lock()
		failures = append(failures, fmt.Sprintf(f, args...))
		mu.Unlock()
	}
	raise := func(m *atomic.Int64, d time.Duration) {
		for v := m.Load(); int64(d) > v && !m.CompareAndSwap(v, int64(d)); v = m.Load() {
		}
	}
	wg.Add(2)
	go func() { // checks on B: another service's token, and the big service's
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			t0 := time.Now()
			_, oerr := b.TokenAuth(ctx, other)
			_, berr := b.TokenAuth(ctx, ids[rand.IntN(n)])
			raise(&maxCheck, time.Since(t0)/2)
			checks.Add(2)
			if oerr != nil {
				fail("B refused the other service's token: %v", oerr)
			}
			if berr != nil && !errors.Is(berr, store.ErrRevoked) {
				fail("B answered a token of the big service with %v", berr)
			}
			_, confirmed := b.Current()
			if deleteStarted.Load() != 0 {
				raise(&maxLag, time.Since(confirmed))
			}
			time.Sleep(50 * time.Microsecond) // a busy replica, not a spinning one: the machine is shared
		}
	}()
	go func() { // writes through B while A deletes
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			t0 := time.Now()
			if err := b.CreateOrg(ctx, store.Org{Name: fmt.Sprint("org-", i)}); err != nil {
				fail("a write through B: %v", err)
				return
			}
			if d := deleteDone.Load(); deleteStarted.Load() != 0 && (d == 0 || t0.UnixNano() < d) {
				raise(&maxWrite, time.Since(t0))
				writes.Add(1)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()

	time.Sleep(100 * time.Millisecond)
	deleteStarted.Store(time.Now().UnixNano())
	t0 := time.Now()
	got, err := a.DeleteService(ctx, "big")
	took := time.Since(t0)
	deleteDone.Store(time.Now().UnixNano())
	must(t, err)
	if got != n {
		t.Errorf("DeleteService revoked %d tokens, want %d", got, n)
	}
	seen := eventually(t, 10*time.Second, "B refuses the big service's tokens", func() bool {
		_, err := b.TokenAuth(ctx, ids[n-1])
		return errors.Is(err, store.ErrRevoked)
	})
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	for _, f := range failures {
		t.Error(f)
	}
	for _, s := range []*DB{a, b} {
		for i, id := range ids {
			if _, err := s.TokenAuth(ctx, id); !errors.Is(err, store.ErrRevoked) || !strings.Contains(err.Error(), "service deleted") {
				t.Fatalf("token %d of the deleted service: %v, want revoked (service deleted)", i, err)
			}
		}
		if s.idx.Load().Len() != 1 {
			t.Errorf("an index holds %d tokens after the delete, want 1 (the other service's)", s.idx.Load().Len())
		}
	}
	var rows, tombs, purges int
	must(t, a.pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM tokens), (SELECT count(*) FROM tombstones), (SELECT count(*) FROM purges)").Scan(&rows, &tombs, &purges))
	if rows != 1 || tombs != n || purges != 0 {
		t.Errorf("after the delete: %d token rows, %d tombstones, %d purges; want 1, %d, 0", rows, tombs, purges, n)
	}
	t.Logf("delete of %d tokens took %v; B refused them %v after it returned; on B meanwhile: %d checks (slowest %v), %d writes (slowest %v), confirmed current at most %v ago",
		n, took.Round(time.Millisecond), seen.Round(time.Millisecond), checks.Load(), time.Duration(maxCheck.Load()),
		writes.Load(), time.Duration(maxWrite.Load()).Round(time.Millisecond), time.Duration(maxLag.Load()).Round(time.Millisecond))
	// Generous bounds for a loaded CI box; the log above has the figures. Before, writes waited
	// for the whole delete and B's feed read all 200,001 changes at once.
	if w := time.Duration(maxWrite.Load()); w > 5*time.Second {
		t.Errorf("a write through B waited %v during the delete, want it not held behind the delete (under 5s)", w)
	}
	if l := time.Duration(maxLag.Load()); l > 10*time.Second {
		t.Errorf("B went %v without confirming it is current during the delete, want well under --max-staleness (under 10s)", l)
	}
}

// BenchmarkCascade deletes a service of 100,000 tokens the way deleteOwner does (one change,
// the tokens purged outside the write lock) and, as the baseline in the same run, the way it
// was done before (one write holding the lock: the owner's delete, then a token delete change
// per token), and reports for each how long a write through replica B started meanwhile
// waited, and how long B took to refuse every token.
func BenchmarkCascade(b *testing.B) {
	const n = 100_000
	for range b.N {
		for _, way := range []struct {
			name string
			del  func(a *DB) error
		}{
			{"one change", func(a *DB) error { _, err := a.DeleteService(ctx, "big"); return err }},
			{"a change per token (before)", func(a *DB) error {
				return a.write(ctx, func(w *wtx) error {
					if _, err := w.Exec(ctx, "DELETE FROM services WHERE id = 'big'"); err != nil {
						return err
					}
					w.change(store.ChangeService, store.OpDelete, "big")
					_, err := deleteTokens(w, "owner_id = $1", "service deleted", "big")
					return err
				})
			}},
		} {
			u := newDatabase(b)
			a := openDB(b, u)
			ids, _ := loadServiceTokens(b, a, n)
			rb := openDB(b, u)
			b.StartTimer()
			start := time.Now()
			done, seenC := make(chan error, 1), make(chan time.Duration, 1)
			go func() {
				for {
					if _, err := rb.TokenAuth(ctx, ids[n-1]); errors.Is(err, store.ErrRevoked) {
						seenC <- time.Since(start)
						return
					}
					time.Sleep(time.Millisecond)
				}
			}()
			go func() { done <- way.del(a) }()
			time.Sleep(50 * time.Millisecond)
			t0 := time.Now()
			must(b, rb.CreateOrg(ctx, store.Org{Name: "meanwhile"}))
			waited := time.Since(t0)
			must(b, <-done)
			took := time.Since(start)
			seen := <-seenC
			b.StopTimer()
			b.Logf("%s: the delete took %v; a write through B meanwhile waited %v; B refused the tokens %v after the delete began",
				way.name, took.Round(time.Millisecond), waited.Round(time.Millisecond), seen.Round(time.Millisecond))
			if strings.HasSuffix(way.name, "(before)") {
				b.ReportMetric(float64(waited.Milliseconds()), "write-wait-before-ms")
			} else {
				b.ReportMetric(float64(waited.Milliseconds()), "write-wait-ms")
			}
		}
	}
}
