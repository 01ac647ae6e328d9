package badger

import (
	"errors"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// TestGCLoopPurgesExpired: the store's own loop purges tokens expired longer than
// ExpiredTokenRetention (and no others), and a store without a retention keeps them.
func TestGCLoopPurgesExpired(t *testing.T) {
	for _, tc := range []struct {
		name      string
		retention time.Duration
		purged    bool
	}{{"retention 24h", 24 * time.Hour, true}, {"no retention", 0, false}} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, Options{Dir: t.TempDir(), GCInterval: 20 * time.Millisecond, ExpiredTokenRetention: tc.retention})
			defer s.Close()
			must(t, s.CreateOrg(ctx, store.Org{Name: "acme"}))
			must(t, s.CreateService(ctx, store.Service{ID: "s1", Org: "acme", Name: "ci"}))
			mk := func(created time.Time, ttl time.Duration) token.ID {
				tk, err := token.New(token.Service)
				must(t, err)
				must(t, s.CreateToken(ctx, store.NewToken(tk, "s1", "", "", created, ttl)))
				return tk.ID
			}
			old := mk(time.Now().Add(-49*time.Hour), time.Hour)   // expired 48h ago
			recent := mk(time.Now().Add(-2*time.Hour), time.Hour) // expired 1h ago: within the retention
			never := mk(time.Now(), 0)
			deadline := time.Now().Add(5 * time.Second)
			for tc.purged && time.Now().Before(deadline) {
				if _, err := s.TokenAuth(ctx, old); errors.Is(err, store.ErrRevoked) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if !tc.purged {
				time.Sleep(200 * time.Millisecond) // ten rounds of the loop
			}
			_, err := s.GetToken(ctx, old)
			if gone := errors.Is(err, store.ErrRevoked); gone != tc.purged {
				t.Errorf("the token expired 48h ago: %v, want purged %v", err, tc.purged)
			}
			for _, id := range []token.ID{recent, never} {
				if _, err := s.GetToken(ctx, id); err != nil {
					t.Errorf("a token within the retention or never expiring: %v", err)
				}
			}
		})
	}
}

// TestOpenPurgesExpired: a store opened with a retention purges the tokens expired longer than
// it at once, not one GCInterval later (an hour here), and keeps the rest; with the GC loop
// disabled (GCInterval < 0) nothing is purged. Before, the first purge waited for the first tick.
func TestOpenPurgesExpired(t *testing.T) {
	for _, tc := range []struct {
		name   string
		every  time.Duration
		purged bool
	}{{"at open", time.Hour, true}, {"gc disabled", -1, false}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, Options{Dir: dir, GCInterval: -1})
			must(t, s.CreateOrg(ctx, store.Org{Name: "acme"}))
			must(t, s.CreateService(ctx, store.Service{ID: "s1", Org: "acme", Name: "ci"}))
			mk := func(created time.Time, ttl time.Duration) token.ID {
				tk, err := token.New(token.Service)
				must(t, err)
				must(t, s.CreateToken(ctx, store.NewToken(tk, "s1", "", "", created, ttl)))
				return tk.ID
			}
			var old []token.ID // more than one transaction's worth, expired 2h ago
			for range store.PurgeBatch + 3 {
				old = append(old, mk(time.Now().Add(-3*time.Hour), time.Hour))
			}
			recent := mk(time.Now().Add(-90*time.Minute), time.Hour) // expired 30 min ago
			never := mk(time.Now(), 0)
			must(t, s.Close())

			s = open(t, Options{Dir: dir, GCInterval: tc.every, ExpiredTokenRetention: time.Hour})
			defer s.Close()
			allGone := func() bool { // every token, not one: there are two batches
				for _, id := range old {
					if _, err := s.TokenAuth(ctx, id); !errors.Is(err, store.ErrRevoked) {
						return false
					}
				}
				return true
			}
			deadline := time.Now().Add(10 * time.Second)
			for tc.purged && time.Now().Before(deadline) && !allGone() {
				time.Sleep(10 * time.Millisecond)
			}
			if !tc.purged {
				time.Sleep(200 * time.Millisecond)
			}
			for _, id := range old {
				_, err := s.GetToken(ctx, id)
				if gone := errors.Is(err, store.ErrRevoked); gone != tc.purged {
					t.Fatalf("a token expired 2h ago: %v, want purged %v", err, tc.purged)
				}
			}
			for _, id := range []token.ID{recent, never} {
				if _, err := s.GetToken(ctx, id); err != nil {
					t.Errorf("a token within the retention or never expiring: %v", err)
				}
			}
			n, err := s.CountTokens(ctx)
			must(t, err)
			if want := uint64(2); tc.purged && n[token.Service] != want {
				t.Errorf("service tokens counted after the purge: %d, want %d", n[token.Service], want)
			}
		})
	}
}
