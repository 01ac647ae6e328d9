package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

func testOutbox(t *testing.T, su suite) {
	ctx := context.Background()
	s := su.fresh(t)
	now := time.Now().Truncate(time.Millisecond)
	mk := func(id string, due time.Time) store.Notification {
		return store.Notification{ID: id, Sink: "https://example.test/hook", Body: []byte(`{"id":"` + id + `"}`), CreatedAt: now, NextAt: due}
	}
	n, err := s.EnqueueNotifications(ctx, []store.Notification{mk("a", now), mk("b", now.Add(-time.Second)), mk("later", now.Add(time.Hour))})
	if err != nil || n != 3 {
		t.Fatalf("enqueue: %d, %v; want 3 new", n, err)
	}
	// The same IDs again (another replica finding the same events) add nothing.
	if n, err := s.EnqueueNotifications(ctx, []store.Notification{mk("a", now), mk("c", now)}); err != nil || n != 1 {
		t.Fatalf("enqueue again: %d, %v; want only c new", n, err)
	}
	if _, err := s.EnqueueNotifications(ctx, []store.Notification{{Sink: "x"}}); err == nil {
		t.Fatal("a notification without an id was enqueued")
	}
	got, err := s.ClaimNotifications(ctx, now, time.Minute, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "b" {
		t.Fatalf("claim 2: %+v; want b first (oldest due), then one more", got)
	}
	if string(got[0].Body) != `{"id":"b"}` || got[0].Sink != "https://example.test/hook" {
		t.Fatalf("claimed %+v: body or sink changed", got[0])
	}
	rest, err := s.ClaimNotifications(ctx, now, time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != 1 {
		t.Fatalf("second claim: %+v; want only the one row not leased and due", rest)
	}
	if again, _ := s.ClaimNotifications(ctx, now.Add(30*time.Second), time.Minute, 0); len(again) != 0 {
		t.Fatalf("claimed rows still leased: %+v", again)
	}
	// A failed attempt ends the lease and makes it due later.
	if err := s.RetryNotification(ctx, "b", now.Add(10*time.Second), "HTTP 500"); err != nil {
		t.Fatal(err)
	}
	b, err := s.GetNotification(ctx, "b")
	if err != nil || b.Attempts != 1 || b.LastError != "HTTP 500" || !b.NextAt.Equal(now.Add(10*time.Second)) || !b.LeaseUntil.IsZero() {
		t.Fatalf("after retry: %+v, %v", b, err)
	}
	if got, _ := s.ClaimNotifications(ctx, now.Add(5*time.Second), time.Minute, 0); len(got) != 0 {
		t.Fatalf("claimed before it is due again: %+v", got)
	}
	if got, _ := s.ClaimNotifications(ctx, now.Add(10*time.Second), time.Minute, 0); len(got) != 1 || got[0].ID != "b" {
		t.Fatalf("claim when due again: %+v", got)
	}
	// A lease that ran out (its replica stopped) lets another claim it.
	if got, _ := s.ClaimNotifications(ctx, now.Add(2*time.Minute), time.Minute, 0); len(got) != 3 {
		t.Fatalf("claim after the leases ended: %+v; want a, b, c", got)
	}
	for _, id := range []string{"a", "b", "c"} {
		if err := s.FinishNotification(ctx, id, now.Add(3*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.FinishNotification(ctx, "nope", now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("finish unknown: %v; want ErrNotFound", err)
	}
	if err := s.RetryNotification(ctx, "nope", now, ""); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("retry unknown: %v; want ErrNotFound", err)
	}
	if got, _ := s.ClaimNotifications(ctx, now.Add(time.Hour), time.Minute, 0); len(got) != 1 || got[0].ID != "later" {
		t.Fatalf("done rows claimed again, or later not due: %+v", got)
	}
	// A done row still refuses its ID until pruned.
	if n, _ := s.EnqueueNotifications(ctx, []store.Notification{mk("a", now)}); n != 0 {
		t.Fatal("a delivered notification was enqueued again")
	}
	if n, err := s.PruneNotifications(ctx, now.Add(4*time.Minute)); err != nil || n != 3 {
		t.Fatalf("prune: %d, %v; want 3", n, err)
	}
	if _, err := s.GetNotification(ctx, "a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("pruned row: %v", err)
	}
	if _, err := s.GetNotification(ctx, "later"); err != nil {
		t.Fatalf("pending row pruned: %v", err)
	}

	t.Run("ConcurrentClaims", func(t *testing.T) {
		s := su.fresh(t)
		var ns []store.Notification
		for i := range 200 {
			ns = append(ns, mk(fmt.Sprintf("n%03d", i), now))
		}
		if _, err := s.EnqueueNotifications(ctx, ns); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		seen := map[string]int{}
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for {
					got, err := s.ClaimNotifications(ctx, now, time.Hour, 7)
					if err != nil {
						t.Error(err)
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, x := range got {
						seen[x.ID]++
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(seen) != 200 {
			t.Fatalf("claimed %d distinct rows; want 200", len(seen))
		}
		for id, c := range seen {
			if c != 1 {
				t.Errorf("%s claimed %d times", id, c)
			}
		}
	})
}

func testExpiringTokens(t *testing.T, su suite) {
	s := su.fresh(t)
	c := t.Context()
	must(t, s.CreateOrg(c, store.Org{Name: "acme", CreatedAt: now()}))
	u := newUser("ann@acme.test")
	must(t, s.CreateUser(c, u))
	gone := newUser("bob@acme.test")
	must(t, s.CreateUser(c, gone))
	cut := now()
	mk := func(owner string, expires time.Time) store.Token {
		tk := newToken(t, token.User, owner)
		tk.CreatedAt = cut.Add(-time.Hour)
		tk.ExpiresAt = expires
		must(t, s.CreateToken(c, tk))
		return tk
	}
	mk(u.ID, cut.Add(-time.Minute)) // expired already
	late := mk(u.ID, cut.Add(3*24*time.Hour))
	soon := mk(u.ID, cut.Add(time.Hour))
	edge := mk(u.ID, cut.Add(7*24*time.Hour))
	mk(u.ID, cut.Add(8*24*time.Hour)) // beyond the window
	mk(u.ID, time.Time{})             // never expires
	revoked := mk(u.ID, cut.Add(time.Hour))
	must(t, s.DeleteToken(c, revoked.ID))
	mk(gone.ID, cut.Add(time.Hour))
	if _, err := s.DeleteUser(c, gone.ID); err != nil {
		t.Fatal(err)
	}
	got := val(s.ExpiringTokens(c, cut, cut.Add(7*24*time.Hour), 0))(t)
	var ids []token.ID
	for _, tk := range got {
		ids = append(ids, tk.ID)
	}
	if want := []token.ID{soon.ID, late.ID, edge.ID}; !slices.Equal(ids, want) {
		t.Fatalf("ExpiringTokens = %v, want %v (soonest first, live, in the window)", ids, want)
	}
	if got := val(s.ExpiringTokens(c, cut, cut.Add(7*24*time.Hour), 1))(t); len(got) != 1 || got[0].ID != soon.ID {
		t.Fatalf("with limit 1: %+v", got)
	}
}

func testDeleteTokenNotify(t *testing.T, su suite) {
	s := su.fresh(t)
	c := t.Context()
	u := newUser("ann@acme.test")
	must(t, s.CreateUser(c, u))
	tk := newToken(t, token.User, u.ID)
	must(t, s.CreateToken(c, tk))
	note := func(id string) []store.Notification {
		return []store.Notification{{ID: id, Sink: "audit", Body: []byte(`{}`)}}
	}
	must(t, s.DeleteTokenNotify(c, tk.ID, note("leak-1")))
	if _, err := s.TokenAuth(c, tk.ID); !errors.Is(err, store.ErrRevoked) {
		t.Fatalf("token after DeleteTokenNotify: %v, want revoked", err)
	}
	if _, err := s.GetNotification(c, "leak-1"); err != nil {
		t.Fatalf("the notification of the revoke: %v", err)
	}
	if n := counts(t, s)[token.User]; n != 0 {
		t.Fatalf("live user tokens %d after the revoke", n)
	}
	// No revoke, no notification.
	if err := s.DeleteTokenNotify(c, tk.ID, note("leak-2")); err == nil {
		t.Fatal("revoked a revoked token again")
	}
	if err := s.DeleteTokenNotify(c, newTokenID(t), note("leak-3")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown token: %v, want ErrNotFound", err)
	}
	for _, id := range []string{"leak-2", "leak-3"} {
		if _, err := s.GetNotification(c, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s written without its revoke: %v", id, err)
		}
	}
}
