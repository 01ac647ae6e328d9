package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/store"
)

// testIssuer: a fresh store has no issuer; SwapIssuer records one only over the one it names
// (none, or the Same recorded one), atomically, and says what is recorded either way; the
// issuer outlives other writes, is not in the feed, and goes with a Dump into a Load.
func testIssuer(t *testing.T, su suite) {
	t.Run("Swap", func(t *testing.T) {
		s, c := su.fresh(t), t.Context()
		if got := val(s.GetIssuer(c))(t); got != (store.Issuer{}) {
			t.Fatalf("a fresh store's issuer: %+v, want none", got)
		}
		seq := lastSeq(t, s)
		def := store.Issuer{URL: "http://127.0.0.1:8080", Default: true, RecordedAt: now()}
		flag := store.Issuer{URL: "https://authd.example.com", RecordedAt: now().Add(time.Second)}
		other := store.Issuer{URL: "https://other.example.com", RecordedAt: now().Add(2 * time.Second)}
		for _, step := range []struct {
			name      string
			old, next store.Issuer
			want      store.Issuer
		}{
			{"record the first", store.Issuer{}, def, def},
			{"record over none again: another was first", store.Issuer{}, flag, def},
			{"over a stale old one", store.Issuer{URL: def.URL}, flag, def}, // Default differs: not the Same
			{"replace the default", store.Issuer{URL: def.URL, Default: true}, flag, flag},
			{"over the same, another time", store.Issuer{URL: flag.URL, RecordedAt: now().Add(time.Hour)}, other, other},
		} {
			got := val(s.SwapIssuer(c, step.old, step.next))(t)
			got.RecordedAt = utc(got.RecordedAt)
			if got != step.want {
				t.Errorf("%s: SwapIssuer returned %+v, want %+v", step.name, got, step.want)
			}
			if rec := val(s.GetIssuer(c))(t); !rec.Same(step.want) || !rec.RecordedAt.Equal(step.want.RecordedAt) {
				t.Errorf("%s: GetIssuer %+v, want %+v", step.name, rec, step.want)
			}
		}
		must(t, s.CreateOrg(c, store.Org{Name: "acme", CreatedAt: now()}))
		if got := val(s.GetIssuer(c))(t); !got.Same(other) {
			t.Errorf("after another write: %+v", got)
		}
		if got := lastSeq(t, s); got != seq+1 {
			t.Errorf("LastSeq %d after the swaps and one org, want %d: the issuer is not in the feed", got, seq+1)
		}
	})
	t.Run("Race", func(t *testing.T) {
		// Replicas starting together, each with its own default: one records, all agree.
		s, c := su.fresh(t), t.Context()
		var wg sync.WaitGroup
		got := make([]store.Issuer, 8)
		for i := range got {
			wg.Go(func() {
				var err error
				got[i], err = s.SwapIssuer(c, store.Issuer{}, store.Issuer{URL: "http://replica-" + string(rune('a'+i)) + ":8080", Default: true, RecordedAt: now()})
				if err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		rec := val(s.GetIssuer(c))(t)
		for i, g := range got {
			if !g.Same(rec) {
				t.Errorf("swapper %d was told %+v, but %+v is recorded", i, g, rec)
			}
		}
	})
	t.Run("DumpAndLoad", func(t *testing.T) {
		src, c := su.fresh(t), t.Context()
		iss := store.Issuer{URL: "https://authd.example.com", RecordedAt: now()}
		val(src.SwapIssuer(c, store.Issuer{}, iss))(t)
		must(t, src.CreateOrg(c, store.Org{Name: "acme", CreatedAt: now()}))
		dump := val(store.Dump(c, src))(t)
		if !dump.Issuer.Same(iss) {
			t.Fatalf("Dump's issuer %+v, want %+v", dump.Issuer, iss)
		}
		dst := su.fresh(t)
		l, ok := dst.(store.Loader)
		if !ok {
			t.Skipf("%T does not implement store.Loader", dst)
		}
		must(t, l.Load(c, dump, false))
		if got := val(dst.GetIssuer(c))(t); !got.Same(iss) || !got.RecordedAt.Equal(iss.RecordedAt) {
			t.Errorf("after Load: %+v, want %+v", got, iss)
		}
		// A replacing load of a snapshot without one leaves none: the state of the source.
		dump.Issuer = store.Issuer{}
		must(t, l.Load(c, dump, true))
		if got := val(dst.GetIssuer(c))(t); got != (store.Issuer{}) {
			t.Errorf("after a replacing Load of a store without an issuer: %+v", got)
		}
	})
}
