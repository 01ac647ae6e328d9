package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// Two replicas in one process: two *DB on one database, each with its own pool, listener and
// index.

// seqLog records every sequence a replica's subscribers hear, to check each arrives once, in
// order.
type seqLog struct {
	mu   sync.Mutex
	seqs []uint64
	cs   []store.Change
}

func (l *seqLog) subscribe(s *DB) *seqLog {
	s.Subscribe(func(cs []store.Change) {
		l.mu.Lock()
		for _, c := range cs {
			l.cs = append(l.cs, c)
			if c.Seq != 0 { // 0: a notice outside the sequence
				l.seqs = append(l.seqs, c.Seq)
			}
		}
		l.mu.Unlock()
	})
	return l
}

func (l *seqLog) last() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.seqs) == 0 {
		return 0
	}
	return l.seqs[len(l.seqs)-1]
}

// exactlyOnce fails unless the log is from+1, from+2, ..., upTo.
func (l *seqLog) exactlyOnce(t *testing.T, from, upTo uint64) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, s := range l.seqs {
		if s != from+uint64(i)+1 {
			t.Fatalf("subscribers heard sequence %d at position %d, want %d (%d heard, up to %d)", s, i, from+uint64(i)+1, len(l.seqs), upTo)
		}
	}
	if uint64(len(l.seqs)) != upTo-from {
		t.Fatalf("subscribers heard %d changes, want %d", len(l.seqs), upTo-from)
	}
}

func twoReplicas(t *testing.T) (*DB, *DB) {
	u := newDatabase(t)
	return openDB(t, u), openDB(t, u)
}

func pct(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func TestReplicaSeesNewTokenAndRevocation(t *testing.T) {
	a, b := twoReplicas(t)
	start, _ := b.Current()
	logB := (&seqLog{}).subscribe(b)
	must(t, a.CreateUser(ctx, store.User{ID: "u1", Email: "a@b.c"}))
	const n = 50
	var seen, denied []time.Duration
	for range n {
		tk, raw := newToken(t, token.User, "u1")
		must(t, a.CreateToken(ctx, tk))
		seen = append(seen, eventually(t, time.Second, "B accepts a token made on A", func() bool {
			got, err := b.TokenAuth(ctx, raw.ID)
			return err == nil && got.Hash == raw.Hash()
		}))
		must(t, a.DeleteToken(ctx, tk.ID))
		if _, err := a.TokenAuth(ctx, raw.ID); !errors.Is(err, store.ErrRevoked) {
			t.Fatalf("the writing replica accepts a token it revoked: %v", err)
		}
		denied = append(denied, eventually(t, time.Second, "B denies a token revoked on A", func() bool {
			_, err := b.TokenAuth(ctx, raw.ID)
			return errors.Is(err, store.ErrRevoked)
		}))
	}
	t.Logf("to replica B: new token p50 %v p99 %v; revocation p50 %v p99 %v", pct(seen, .5), pct(seen, .99), pct(denied, .5), pct(denied, .99))
	// The promise is 100 ms at p99 (BenchmarkRevocationLag measures it over 1,000); this test
	// runs beside others on a shared machine, often under the race detector, so it holds the
	// 90th percentile to it and every one to a second.
	for what, ds := range map[string][]time.Duration{"new token": seen, "revocation": denied} {
		if p := pct(ds, .9); p > 100*time.Millisecond {
			t.Errorf("%s reached replica B in %v at p90, want under 100ms", what, p)
		}
	}
	last, err := a.LastSeq(ctx)
	must(t, err)
	eventually(t, time.Second, "B applies everything", func() bool { return logB.last() == last })
	time.Sleep(3 * b.opts.PollInterval) // polls after the notifications must not deliver anything twice
	logB.exactlyOnce(t, start, last)
	if applied, at := b.Current(); applied != last || time.Since(at) > time.Second {
		t.Fatalf("B is current to %d (confirmed %v ago), want %d", applied, time.Since(at), last)
	}
}

// TestReplicasWritingTogether: both replicas write at once; each replica's subscribers hear
// every write of both, each once, in sequence order, and each sees the other's tokens.
func TestReplicasWritingTogether(t *testing.T) {
	a, b := twoReplicas(t)
	logA, logB := (&seqLog{}).subscribe(a), (&seqLog{}).subscribe(b)
	must(t, a.CreateOrg(ctx, store.Org{Name: "acme"}))
	must(t, b.CreateService(ctx, store.Service{ID: "s1", Org: "acme", Name: "ci"}))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var live, revoked []token.ID
	for i, s := range []*DB{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20 {
				tk, raw := newToken(t, token.Service, "s1")
				if err := s.CreateToken(ctx, tk); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.TokenAuth(ctx, raw.ID); err != nil {
					t.Errorf("the writing replica does not know its new token: %v", err)
				}
				if (i+j)%2 == 0 {
					if err := s.DeleteToken(ctx, tk.ID); err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					revoked = append(revoked, raw.ID)
					mu.Unlock()
				} else {
					mu.Lock()
					live = append(live, raw.ID)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	last, err := a.LastSeq(ctx)
	must(t, err)
	for _, l := range []*seqLog{logA, logB} {
		eventually(t, time.Second, "both replicas apply everything", func() bool { return l.last() == last })
		l.exactlyOnce(t, 0, last)
	}
	for _, s := range []*DB{a, b} {
		for _, id := range revoked {
			if _, err := s.TokenAuth(ctx, id); !errors.Is(err, store.ErrRevoked) {
				t.Fatalf("revoked token: %v", err)
			}
		}
		for _, id := range live {
			if _, err := s.TokenAuth(ctx, id); err != nil {
				t.Fatalf("live token: %v", err)
			}
		}
		if s.idx.Load().Len() != len(live) {
			t.Fatalf("index holds %d tokens, want %d", s.idx.Load().Len(), len(live))
		}
	}
	if c, _ := b.CountTokens(ctx); c[token.Service] != uint64(len(live)) {
		t.Fatalf("counts %v, want %d", c, len(live))
	}
}

func TestConcurrentCreateAcrossReplicas(t *testing.T) {
	a, b := twoReplicas(t)
	must(t, a.CreateOrg(ctx, store.Org{Name: "acme"}))
	for round := range 20 {
		name := fmt.Sprint("svc-", round)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, s := range []*DB{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.CreateService(ctx, store.Service{ID: fmt.Sprint(name, "-", i), Org: "acme", Name: name})
			}()
		}
		wg.Wait()
		conflicts := 0
		for _, err := range errs {
			if errors.Is(err, store.ErrConflict) {
				conflicts++
			} else if err != nil {
				t.Fatal(err)
			}
		}
		if conflicts != 1 {
			t.Fatalf("round %d: %d conflicts (%v), want exactly 1", round, conflicts, errs)
		}
	}
	ss, err := b.ListServices(ctx, "acme")
	if err != nil || len(ss) != 20 {
		t.Fatalf("%d services (%v), want 20", len(ss), err)
	}
}

// TestListenerKilled terminates B's listening connection while A revokes: B reconnects,
// replays from its last sequence, and neither misses a change nor applies one twice.
func TestListenerKilled(t *testing.T) {
	a, b := twoReplicas(t)
	start, _ := b.Current()
	logB := (&seqLog{}).subscribe(b)
	must(t, a.CreateUser(ctx, store.User{ID: "u1", Email: "a@b.c"}))
	var recs []store.Token
	var raws []token.Token
	for range 60 {
		tk, raw := newToken(t, token.User, "u1")
		recs, raws = append(recs, tk), append(raws, raw)
	}
	must(t, a.ImportTokens(ctx, recs))
	eventually(t, time.Second, "B knows the tokens", func() bool { _, err := b.TokenAuth(ctx, raws[59].ID); return err == nil })
	for round := range 3 {
		pid := b.listenPID.Load()
		var killed bool
		must(t, a.pool.QueryRow(ctx, "SELECT pg_terminate_backend($1)", int32(pid)).Scan(&killed))
		if !killed {
			t.Fatalf("could not terminate B's listener %d", pid)
		}
		for i := range 20 {
			must(t, a.DeleteToken(ctx, recs[round*20+i].ID))
		}
		eventually(t, 5*time.Second, "B reconnects", func() bool { return b.listenPID.Load() != pid })
	}
	last, err := a.LastSeq(ctx)
	must(t, err)
	eventually(t, 5*time.Second, "B applies everything", func() bool { return logB.last() == last })
	logB.exactlyOnce(t, start, last)
	for _, raw := range raws {
		if _, err := b.TokenAuth(ctx, raw.ID); !errors.Is(err, store.ErrRevoked) {
			t.Fatalf("B accepts a token revoked while its listener was down: %v", err)
		}
	}
	if b.Reconnects() < 3 {
		t.Fatalf("B reconnected %d times, want 3", b.Reconnects())
	}
}

func TestBootstrapTwoReplicasAtOnce(t *testing.T) {
	for range 5 {
		a, b := twoReplicas(t)
		var runs atomic.Int32
		var wg sync.WaitGroup
		ran := make([]bool, 2)
		for i, s := range []*DB{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var err error
				ran[i], err = s.Bootstrap(ctx, func(ctx context.Context) error {
					runs.Add(1)
					time.Sleep(50 * time.Millisecond)
					return s.CreateUser(ctx, store.User{ID: "root", Email: "root@local", Superuser: true})
				})
				if err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if runs.Load() != 1 || ran[0] == ran[1] {
			t.Fatalf("bootstrap ran %d times (%v), want once", runs.Load(), ran)
		}
	}
}

// TestReplicaBehindPrunedFeed: a replica that fell behind the pruned part of the feed reloads
// its index and tombstones and tells its subscribers that anything may have changed.
func TestReplicaBehindPrunedFeed(t *testing.T) {
	a, b := twoReplicas(t)
	logB := (&seqLog{}).subscribe(b)
	must(t, a.CreateUser(ctx, store.User{ID: "u1", Email: "a@b.c"}))
	keep, rawKeep := newToken(t, token.User, "u1")
	gone, rawGone := newToken(t, token.User, "u1")
	eventually(t, time.Second, "B follows", func() bool { return logB.last() == 1 })
	b.amu.Lock() // B's follower cannot apply anything meanwhile
	must(t, a.CreateToken(ctx, keep))
	must(t, a.CreateToken(ctx, gone))
	must(t, a.DeleteToken(ctx, gone.ID))
	must(t, a.prune(ctx, time.Now().Add(feedRetention+time.Minute)))
	b.amu.Unlock()
	eventually(t, 5*time.Second, "B reloads", func() bool {
		_, err := b.TokenAuth(ctx, rawGone.ID)
		return errors.Is(err, store.ErrRevoked)
	})
	if _, err := b.TokenAuth(ctx, rawKeep.ID); err != nil {
		t.Fatalf("a token made while B was behind: %v", err)
	}
	eventually(t, time.Second, "B's subscribers hear of the reload", func() bool {
		logB.mu.Lock()
		defer logB.mu.Unlock()
		return len(logB.cs) > 0 && logB.cs[len(logB.cs)-1].Seq == 0
	})
	logB.mu.Lock()
	defer logB.mu.Unlock()
	if c := logB.cs[len(logB.cs)-1]; !c.IsReset() {
		t.Fatalf("the reload was announced as %+v", c)
	}
}

// TestAllConnectionsKilled: every connection of B dies (as in a PostgreSQL restart); B's writes
// work again and its listener replays what A wrote meanwhile.
func TestAllConnectionsKilled(t *testing.T) {
	a, b := twoReplicas(t)
	logB := (&seqLog{}).subscribe(b)
	must(t, a.CreateUser(ctx, store.User{ID: "u1", Email: "a@b.c"}))
	tk, raw := newToken(t, token.User, "u1")
	must(t, a.CreateToken(ctx, tk))
	eventually(t, time.Second, "B knows the token", func() bool { _, err := b.TokenAuth(ctx, raw.ID); return err == nil })
	// Make B's pool hold some connections, then kill them all, and the listener.
	must(t, b.pool.Ping(ctx))
	_, err := a.pool.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
	must(t, err)
	must(t, a.DeleteToken(ctx, tk.ID))
	eventually(t, 5*time.Second, "B denies after reconnecting", func() bool {
		_, err := b.TokenAuth(ctx, raw.ID)
		return errors.Is(err, store.ErrRevoked)
	})
	// A write through B succeeds once the pool has replaced its dead connections.
	var werr error
	eventually(t, 5*time.Second, "B writes again", func() bool {
		werr = b.CreateUser(ctx, store.User{ID: "u2", Email: "b@b.c"})
		return werr == nil
	})
	last, err := a.LastSeq(ctx)
	must(t, err)
	eventually(t, time.Second, "B applies everything", func() bool { return logB.last() == last })
	logB.exactlyOnce(t, 0, last)
}
