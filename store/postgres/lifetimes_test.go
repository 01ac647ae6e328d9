package postgres

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// expiredTokens imports n service tokens of s1 that expired a thousand hours ago.
func expiredTokens(tb testing.TB, s *DB, n int) []token.ID {
	tb.Helper()
	past := time.Now().Add(-1000 * time.Hour)
	var ids []token.ID
	for done := 0; done < n; done += 20_000 {
		var recs []store.Token
		for i := done; i < min(done+20_000, n); i++ {
			tk, err := token.New(token.Service)
			must(tb, err)
			recs = append(recs, store.NewToken(tk, "s1", "", "", past.Add(-time.Hour), time.Hour))
			ids = append(ids, tk.ID)
		}
		must(tb, s.ImportTokens(ctx, recs))
	}
	return ids
}

// TestPurgeExpiredReplicas: two replicas on one database; the maintenance of one (after its
// --expired-token-retention) purges the expired tokens, and the other, following the feed,
// drops them from its index and answers revoked for them; the counts agree on both.
func TestPurgeExpiredReplicas(t *testing.T) {
	u := newDatabase(t)
	a := openDB(t, u)
	b := openDB(t, u)
	must(t, a.CreateOrg(ctx, store.Org{Name: "acme"}))
	must(t, a.CreateService(ctx, store.Service{ID: "s1", Org: "acme", Name: "ci"}))
	ids := expiredTokens(t, a, 2*store.PurgeBatch+10)
	live, _ := newToken(t, token.Service, "s1")
	must(t, a.CreateToken(ctx, live))
	eventually(t, 5*time.Second, "replica b sees the tokens", func() bool {
		_, err := b.TokenAuth(ctx, ids[len(ids)-1])
		return err == nil
	})
	// A third replica whose maintenance purges tokens expired over a day ago.
	c := openDB(t, u, func(o *Options) { o.MaintainInterval = 50 * time.Millisecond; o.ExpiredTokenRetention = 24 * time.Hour })
	// The purge is done once c (which applies its own writes before they return) has dropped
	// every token: one of them gone says only that its batch is (a flake when the last id came
	// in the first batch and the other two took over 5s on a loaded machine).
	eventually(t, 30*time.Second, "maintenance purges the expired tokens", func() bool {
		for _, id := range ids {
			if _, err := c.TokenAuth(ctx, id); !errors.Is(err, store.ErrRevoked) {
				return false
			}
		}
		return true
	})
	for _, s := range []*DB{a, b, c} {
		eventually(t, 5*time.Second, "every replica hears of every purge", func() bool {
			for _, id := range ids {
				if _, err := s.TokenAuth(ctx, id); !errors.Is(err, store.ErrRevoked) {
					return false
				}
			}
			return true
		})
		if _, err := s.TokenAuth(ctx, live.ID); err != nil {
			t.Errorf("the live token: %v", err)
		}
		got, err := s.GetToken(ctx, ids[0])
		if !errors.Is(err, store.ErrRevoked) || err.Error() == "" {
			t.Errorf("GetToken of a purged token: %+v %v", got, err)
		}
	}
	n, err := a.CountTokens(ctx)
	must(t, err)
	if n[token.Service] != 1 {
		t.Errorf("live service tokens after the purge: %d, want 1", n[token.Service])
	}
}

// syncBuffer is a bytes.Buffer two replicas' loggers write to at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestPurgeExpiredAtStartTwoReplicas: two replicas opened at once on a database holding tokens
// expired 2h ago (over two batches) purge them at start, not a MaintainInterval (an hour) later:
// both run the purge, neither logs an error, each token is purged once (one delete in the feed
// and one tombstone each; the tokens the replicas' logs say they purged add up), both answer
// revoked for them, and a token expired 30 minutes ago (within the 1h retention) is kept.
// Before, the first purge waited for the first tick.
func TestPurgeExpiredAtStartTwoReplicas(t *testing.T) {
	u := newDatabase(t)
	seed := openDB(t, u)
	must(t, seed.CreateOrg(ctx, store.Org{Name: "acme"}))
	must(t, seed.CreateService(ctx, store.Service{ID: "s1", Org: "acme", Name: "ci"}))
	var old []store.Token
	for range 2*store.PurgeBatch + 10 {
		tk, _ := newToken(t, token.Service, "s1")
		tk.CreatedAt, tk.ExpiresAt = time.Now().Add(-3*time.Hour), time.Now().Add(-2*time.Hour)
		old = append(old, tk)
	}
	must(t, seed.ImportTokens(ctx, old))
	recent, _ := newToken(t, token.Service, "s1")
	recent.CreatedAt, recent.ExpiresAt = time.Now().Add(-90*time.Minute), time.Now().Add(-30*time.Minute)
	must(t, seed.CreateToken(ctx, recent))
	must(t, seed.Close())

	var logs syncBuffer
	var reps [2]*DB
	var wg sync.WaitGroup
	for i := range reps {
		wg.Go(func() {
			reps[i] = openDB(t, u, func(o *Options) {
				o.MaintainInterval, o.ExpiredTokenRetention = time.Hour, time.Hour
				o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
			})
		})
	}
	wg.Wait()
	for _, s := range reps {
		// Every token, not one: the batches may be the two replicas' in turn.
		eventually(t, 30*time.Second, "both replicas answer revoked for every purged token", func() bool {
			for _, tk := range old {
				if _, err := s.TokenAuth(ctx, tk.ID); !errors.Is(err, store.ErrRevoked) {
					return false
				}
			}
			return true
		})
		if _, err := s.GetToken(ctx, recent.ID); err != nil {
			t.Errorf("the token expired 30 minutes ago: %v, want kept", err)
		}
	}
	var deletes, tombs int64
	must(t, reps[0].pool.QueryRow(ctx, "SELECT count(*), count(DISTINCT id) FROM changes WHERE kind = $1 AND op = $2",
		string(store.ChangeToken), string(store.OpDelete)).Scan(&deletes, &tombs))
	if deletes != int64(len(old)) || tombs != deletes {
		t.Errorf("token deletes in the feed: %d (%d distinct), want one for each of the %d purged", deletes, tombs, len(old))
	}
	must(t, reps[0].pool.QueryRow(ctx, "SELECT count(*) FROM tombstones WHERE why = $1", store.ExpiredWhy).Scan(&tombs))
	if tombs != int64(len(old)) {
		t.Errorf("tombstones: %d, want %d", tombs, len(old))
	}
	purged := 0
	for line := range bytes.Lines([]byte(logs.String())) {
		var rec struct {
			Level, Msg string
			Tokens     int
		}
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec.Level == "ERROR" {
			t.Errorf("a replica logged an error: %s", line)
		}
		if rec.Msg == "purged expired tokens" {
			purged += rec.Tokens
		}
	}
	if purged != len(old) {
		t.Errorf("the replicas logged %d tokens purged, want %d:\n%s", purged, len(old), logs.String())
	}
}

// BenchmarkPurgeExpired measures the tables holding 1,000 live and 100,000 expired service
// tokens before and after PurgeExpiredTokens (and a plain VACUUM, which autovacuum would run):
// pg_total_relation_size of tokens, tombstones and changes, and of tokens after VACUUM FULL. Run with -benchtime=1x.
func BenchmarkPurgeExpired(b *testing.B) {
	for b.Loop() {
		s := openDB(b, newDatabase(b))
		must(b, s.CreateOrg(ctx, store.Org{Name: "acme"}))
		must(b, s.CreateService(ctx, store.Service{ID: "s1", Org: "acme", Name: "ci"}))
		expiredTokens(b, s, 100_000)
		for range 1000 {
			tk, _ := newToken(b, token.Service, "s1")
			must(b, s.CreateToken(ctx, tk))
		}
		size := func(table string) int64 {
			if _, err := s.pool.Exec(ctx, "VACUUM "+table); err != nil {
				b.Fatal(err)
			}
			var n int64
			must(b, s.pool.QueryRow(ctx, "SELECT pg_total_relation_size($1)", table).Scan(&n))
			return n
		}
		tb, tt, tc := size("tokens"), size("tombstones"), size("changes")
		start := time.Now()
		n, err := s.PurgeExpiredTokens(ctx, time.Now().Add(-720*time.Hour), 0)
		took := time.Since(start)
		must(b, err)
		if n != 100_000 {
			b.Fatalf("purged %d, want 100000", n)
		}
		ta, ta2, ta3 := size("tokens"), size("tombstones"), size("changes")
		// What the rows left take (plain VACUUM keeps the freed pages for new rows: the table
		// stops growing rather than shrinking; VACUUM FULL returns them).
		if _, err := s.pool.Exec(ctx, "VACUUM FULL tokens"); err != nil {
			b.Fatal(err)
		}
		var full int64
		must(b, s.pool.QueryRow(ctx, "SELECT pg_total_relation_size('tokens')").Scan(&full))
		b.ReportMetric(float64(full)/1e6, "MB-tokens-after-vacuum-full")
		b.ReportMetric(float64(tb)/1e6, "MB-tokens-before")
		b.ReportMetric(float64(ta)/1e6, "MB-tokens-after")
		b.ReportMetric(took.Seconds(), "s-purge")
		b.Logf("tokens table %d -> %d bytes (%d after VACUUM FULL); tombstones %d -> %d; changes %d -> %d (the feed's are pruned after its retention, tombstones after 90 days); purge of %d took %s",
			tb, ta, full, tt, ta2, tc, ta3, n, took.Round(time.Millisecond))
	}
}
