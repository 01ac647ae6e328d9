package store

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/token"
)

// BenchmarkGetToken reads random tokens from on-disk stores of 1,000 and of N (RILL_BENCH_TOKENS,
// default 1,000,000) tokens.
func BenchmarkGetToken(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("RILL_BENCH_TOKENS")); err == nil && v > 0 {
		n = v
	}
	for _, size := range []int{1000, n} {
		b.Run(fmt.Sprintf("tokens=%d", size), func(b *testing.B) {
			s, err := Open(Options{Dir: b.TempDir(), GCInterval: -1})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if err := s.CreateOrg(ctx, Org{Name: "acme"}); err != nil {
				b.Fatal(err)
			}
			if err := s.CreateService(ctx, Service{ID: "s1", Org: "acme", Name: "ci"}); err != nil {
				b.Fatal(err)
			}
			var ids []string
			for done := 0; done < size; done += 50_000 {
				var recs []Token
				for i := done; i < min(done+50_000, size); i++ {
					tk, _ := token.New(token.Service)
					recs = append(recs, Token{ID: tk.ID.String(), Kind: token.Service, OwnerID: "s1", Prefix: tk.Display(), Hash: tk.Hash(), CreatedAt: time.Now()})
					if i%max(1, size/10000) == 0 {
						ids = append(ids, tk.ID.String())
					}
				}
				if err := s.ImportTokens(ctx, recs); err != nil {
					b.Fatal(err)
				}
			}
			if err := s.Compact(); err != nil {
				b.Fatal(err)
			}
			r := rand.New(rand.NewPCG(1, 2))
			b.ResetTimer()
			for b.Loop() {
				if _, err := s.GetToken(ctx, ids[r.IntN(len(ids))]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
