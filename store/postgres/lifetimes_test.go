package postgres

import (
	"errors"
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
	eventually(t, 30*time.Second, "maintenance purges the expired tokens, and b hears of it", func() bool {
		_, err := b.TokenAuth(ctx, ids[len(ids)-1])
		return errors.Is(err, store.ErrRevoked)
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
