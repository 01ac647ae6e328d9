package badger

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
// default 1,000,000).
func benchSizes() []int {
	return []int{1000, testenv.BenchTokens()}
}

// benchStore opens an on-disk store in dir holding size service tokens, compacted, and returns
// it with the ids of a sample of them.
func benchStore(b *testing.B, dir string, size int) (*DB, []token.ID) {
	b.Helper()
	s, err := Open(Options{Dir: dir, GCInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.CreateOrg(ctx, store.Org{Name: "acme"}); err != nil {
		b.Fatal(err)
	}
	if err := s.CreateService(ctx, store.Service{ID: "s1", Org: "acme", Name: "ci"}); err != nil {
		b.Fatal(err)
	}
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
		if err := s.ImportTokens(ctx, recs); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Compact(); err != nil {
		b.Fatal(err)
	}
	return s, ids
}

// BenchmarkGetToken reads whole token records from Badger (what the admin API does) and
// BenchmarkTokenAuth reads what a check needs from the in-memory index, each from stores of
// 1,000 and of N tokens. The second also reports how long reopening the large store takes,
// index load included.
func BenchmarkGetToken(b *testing.B) {
	for _, size := range benchSizes() {
		b.Run(fmt.Sprintf("tokens=%d", size), func(b *testing.B) {
			s, ids := benchStore(b, b.TempDir(), size)
			defer s.Close()
			r := rand.New(rand.NewPCG(1, 2))
			for b.Loop() {
				if _, err := s.GetToken(ctx, ids[r.IntN(len(ids))]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkTokenAuth(b *testing.B) {
	for _, size := range benchSizes() {
		b.Run(fmt.Sprintf("tokens=%d", size), func(b *testing.B) {
			dir := b.TempDir()
			s, ids := benchStore(b, dir, size)
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			s, err := Open(Options{Dir: dir, GCInterval: -1})
			if err != nil {
				b.Fatal(err)
			}
			open := time.Since(start)
			defer s.Close()
			r := rand.New(rand.NewPCG(1, 2))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.TokenAuth(ctx, ids[r.IntN(len(ids))]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(open.Milliseconds()), "open-ms")
		})
	}
}
