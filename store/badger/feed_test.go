package badger

import (
	"errors"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// TestFeedPruning: pruning drops changes older than the cut-off but never the newest, a reader
// from before the pruned point is told to reload (ErrFeedTruncated) instead of missing changes,
// and both the pruned point and the sequence survive a reopen.
func TestFeedPruning(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, GCInterval: -1})
	must(t, err)
	defer func() { s.Close() }()
	must(t, s.CreateOrg(ctx, store.Org{Name: "acme"}))
	must(t, s.CreateService(ctx, store.Service{ID: "s1", Org: "acme", Name: "ci"}))
	time.Sleep(5 * time.Millisecond)
	cut := time.Now()
	time.Sleep(5 * time.Millisecond)
	var toks []store.Token
	for range purgeBatch + 500 { // more changes than one prune transaction deletes
		tk, _ := newToken(t, token.Service, "s1")
		toks = append(toks, tk)
	}
	must(t, s.ImportTokens(ctx, toks))
	last := uint64(2 + len(toks))

	truncated := func(when string, afters ...uint64) {
		t.Helper()
		for _, after := range afters {
			if cs, err := s.ChangesSince(ctx, after, 0); !errors.Is(err, store.ErrFeedTruncated) {
				t.Fatalf("%s: ChangesSince(%d) = %d changes, %v; want ErrFeedTruncated", when, after, len(cs), err)
			}
		}
	}
	from := func(when string, after uint64, want int) {
		t.Helper()
		cs, err := s.ChangesSince(ctx, after, 0)
		if err != nil || len(cs) != want || (want > 0 && (cs[0].Seq != after+1 || cs[want-1].Seq != after+uint64(want))) {
			t.Fatalf("%s: ChangesSince(%d) = %d changes, %v; want %d from %d", when, after, len(cs), err, want, after+1)
		}
	}
	seqIs := func(when string, want uint64) {
		t.Helper()
		if got, err := s.LastSeq(ctx); err != nil || got != want {
			t.Fatalf("%s: LastSeq %d, %v; want %d", when, got, err, want)
		}
	}

	must(t, s.pruneFeed(cut.Add(-time.Hour)))
	from("a cut-off before every change prunes nothing", 0, int(last))

	must(t, s.pruneFeed(cut))
	truncated("pruned up to the cut-off", 0, 1)
	from("pruned up to the cut-off", 2, len(toks))

	must(t, s.pruneFeed(time.Now().Add(time.Hour)))
	truncated("pruned all but the newest", 0, 2, last-2)
	from("pruned all but the newest", last-1, 1)
	from("pruned all but the newest", last, 0)
	seqIs("pruned all but the newest", last)

	must(t, s.Close())
	s, err = Open(Options{Dir: dir, GCInterval: -1})
	must(t, err)
	seqIs("after reopening", last)
	truncated("after reopening", 0, last-2)
	must(t, s.CreateOrg(ctx, store.Org{Name: "globex"}))
	from("the first write after reopening", last-1, 2)

	// Pruning again moves the pruned point on, still keeping the newest change.
	must(t, s.pruneFeed(time.Now().Add(time.Hour)))
	truncated("pruned again", last-1)
	from("pruned again", last, 1)
	seqIs("pruned again", last+1)
}
