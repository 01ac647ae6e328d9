package badger

import (
	"io/fs"
	"path/filepath"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// purgeBenchTokens is how many expired tokens BenchmarkPurgeExpired purges.
const purgeBenchTokens = 100_000

// dirSize is the bytes of the files under dir; it logs them by kind (sst, vlog, ...).
func dirSize(tb testing.TB, dir string) int64 {
	var n int64
	byExt := map[string]int64{}
	defer func() { tb.Logf("%s: %v", dir, byExt) }()
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err == nil {
			n += fi.Size()
			byExt[filepath.Ext(d.Name())] += fi.Size()
		}
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// BenchmarkPurgeExpired measures the data directory (closed, so memtables are flushed) holding
// 1,000 live and 100,000 expired service tokens, then after PurgeExpiredTokens and a compaction
// (the purged tokens' tombstones and feed changes still there), then once the feed's retention
// has passed (the tombstones stay their 90 days). Run with -benchtime=1x; it reports MB and the
// purge's time.
func BenchmarkPurgeExpired(b *testing.B) {
	for b.Loop() {
		dir := b.TempDir()
		s, err := Open(Options{Dir: dir, GCInterval: -1})
		mustB(b, err)
		mustB(b, s.CreateOrg(ctx, store.Org{Name: "acme"}))
		mustB(b, s.CreateService(ctx, store.Service{ID: "s1", Org: "acme", Name: "ci"}))
		past := time.Now().Add(-1000 * time.Hour)
		for done := 0; done < purgeBenchTokens+1000; done += 20_000 {
			var recs []store.Token
			for i := done; i < min(done+20_000, purgeBenchTokens+1000); i++ {
				tk, _ := token.New(token.Service)
				rec := store.NewToken(tk, "s1", "", "", past.Add(-time.Hour), time.Hour) // expired 1000h ago
				if i >= purgeBenchTokens {
					rec = store.NewToken(tk, "s1", "", "", time.Now(), 0)
				}
				recs = append(recs, rec)
			}
			mustB(b, s.ImportTokens(ctx, recs))
		}
		mustB(b, s.Compact())
		mustB(b, s.Close())
		before := dirSize(b, dir)

		s, err = Open(Options{Dir: dir, GCInterval: -1})
		mustB(b, err)
		start := time.Now()
		n, err := s.PurgeExpiredTokens(ctx, time.Now().Add(-720*time.Hour), 0)
		took := time.Since(start)
		mustB(b, err)
		if n != purgeBenchTokens {
			b.Fatalf("purged %d, want %d", n, purgeBenchTokens)
		}
		if c := counts(b, s); c[token.Service] != 1000 {
			b.Fatalf("live service tokens after the purge: %d, want 1000", c[token.Service])
		}
		mustB(b, s.Compact())
		mustB(b, s.Close())
		after := dirSize(b, dir)

		s, err = Open(Options{Dir: dir, GCInterval: -1})
		mustB(b, err)
		mustB(b, s.pruneFeed(time.Now().Add(time.Hour)))
		mustB(b, s.Compact())
		mustB(b, s.Close())
		pruned := dirSize(b, dir)

		b.ReportMetric(float64(before)/1e6, "MB-before")
		b.ReportMetric(float64(after)/1e6, "MB-after-purge")
		b.ReportMetric(float64(pruned)/1e6, "MB-after-feed-prune")
		b.ReportMetric(took.Seconds(), "s-purge")
		b.Logf("badger dir: %d bytes before, %d after purging %d expired tokens, %d once the feed is pruned (purge took %s)", before, after, n, pruned, took.Round(time.Millisecond))
	}
}

func counts(tb testing.TB, s *DB) map[token.Kind]uint64 {
	tb.Helper()
	c, err := s.CountTokens(ctx)
	mustB(tb, err)
	return c
}

func mustB(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}
