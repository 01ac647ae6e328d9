package postgres

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/internal/testenv"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// benchSizes are the store sizes the token benchmarks compare: 1,000 and N (RILL_BENCH_TOKENS,
// default 1,000,000), as the embedded engine's benchmarks.
func benchSizes() []int {
	return []int{1000, testenv.BenchTokens()}
}

// BenchmarkTokenAuth reads what a check needs from the in-memory index of a database of 1,000
// and of N tokens, one in ten never seen (answered from memory too); it also reports how long
// opening a replica on the large database takes, index load included.
func BenchmarkTokenAuth(b *testing.B) {
	for _, size := range benchSizes() {
		b.Run(fmt.Sprintf("tokens=%d", size), func(b *testing.B) {
			u := newDatabase(b)
			s, err := Open(ctx, Options{URL: u, MaintainInterval: -1})
			must(b, err)
			must(b, s.CreateOrg(ctx, store.Org{Name: "acme"}))
			must(b, s.CreateService(ctx, store.Service{ID: "s1", Org: "acme", Name: "ci"}))
			var ids []token.ID
			for done := 0; done < size; done += 50_000 {
				var recs []store.Token
				for i := done; i < min(done+50_000, size); i++ {
					tk, _ := token.New(token.Service)
					recs = append(recs, store.NewToken(tk, "s1", "", "", time.Now(), 0))
					if i%max(1, size/10000) == 0 {
						ids = append(ids, tk.ID)
					}
				}
				must(b, s.ImportTokens(ctx, recs))
			}
			must(b, s.Close())
			for i := 0; i < len(ids); i += 10 {
				raw, _ := token.New(token.Service)
				ids[i] = raw.ID // never seen
			}
			start := time.Now()
			s, err = Open(ctx, Options{URL: u, MaintainInterval: -1})
			must(b, err)
			open := time.Since(start)
			defer s.Close()
			r := rand.New(rand.NewPCG(1, 2))
			b.ReportAllocs()
			for b.Loop() {
				_, _ = s.TokenAuth(ctx, ids[r.IntN(len(ids))])
			}
			b.ReportMetric(float64(open.Milliseconds()), "open-ms")
		})
	}
}

// BenchmarkRevocationLag revokes tokens on replica A and times until replica B denies each
// (B's subscribers are told after its index dropped the token), reporting p50 and p99. The lag
// is one commit's NOTIFY reaching B plus one read of the feed on B's listening connection.
func BenchmarkRevocationLag(b *testing.B) {
	u := newDatabase(b)
	a, r := openDB(b, u), openDB(b, u)
	must(b, a.CreateUser(ctx, store.User{ID: "u1", Email: "a@b.c"}))
	heard := make(chan string, 1)
	r.Subscribe(func(cs []store.Change) {
		for _, c := range cs {
			if c.Kind == store.ChangeToken && c.Op == store.OpDelete {
				heard <- c.ID
			}
		}
	})
	var lags []time.Duration
	for b.Loop() {
		b.StopTimer()
		tk, _ := newToken(b, token.User, "u1")
		must(b, a.CreateToken(ctx, tk))
		b.StartTimer()
		start := time.Now()
		must(b, a.DeleteToken(ctx, tk.ID))
		if id := <-heard; id != tk.ID.String() {
			b.Fatalf("heard of %s, revoked %s", id, tk.ID)
		}
		lags = append(lags, time.Since(start))
	}
	b.ReportMetric(float64(pct(lags, .5).Microseconds()), "p50-µs")
	b.ReportMetric(float64(pct(lags, .99).Microseconds()), "p99-µs")
}

// BenchmarkAdminWrites creates services one after another through one replica.
func BenchmarkAdminWrites(b *testing.B) {
	s := openDB(b, newDatabase(b))
	must(b, s.CreateOrg(ctx, store.Org{Name: "acme"}))
	i := 0
	for b.Loop() {
		i++
		must(b, s.CreateService(ctx, store.Service{ID: fmt.Sprint("s", i), Org: "acme", Name: fmt.Sprint("svc-", i)}))
	}
}
