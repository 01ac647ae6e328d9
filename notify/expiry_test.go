package notify_test

import (
	"context"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/notify"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// addToken stores a user token of owner expiring at exp.
func addToken(t *testing.T, st store.Store, owner string, exp time.Time) store.Token {
	t.Helper()
	raw, err := token.New(token.User)
	if err != nil {
		t.Fatal(err)
	}
	tk := store.NewToken(raw, owner, "ci", "test", time.Now(), 0)
	tk.ExpiresAt = exp
	if err := st.CreateToken(context.Background(), tk); err != nil {
		t.Fatal(err)
	}
	return tk
}

// TestExpiryWarningOncePerWindow: a token expiring within the window is told of once, however
// many scans find it (every replica scans); one outside it is not, until it enters it.
func TestExpiryWarningOncePerWindow(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	c := &clock{t: time.Now()}
	if err := st.CreateUser(ctx, store.User{ID: "u1", Email: "ann@acme.test", CreatedAt: c.Now()}); err != nil {
		t.Fatal(err)
	}
	soon := addToken(t, st, "u1", c.Now().Add(2*24*time.Hour))
	later := addToken(t, st, "u1", c.Now().Add(10*24*time.Hour))
	addToken(t, st, "u1", time.Time{}) // never expires
	r := newReceiver(t, c.Now)
	n := newNotifier(t, st, c, notify.Options{}, r.srv.URL)
	// A second notifier on the same store stands for another replica's scan.
	other := newNotifier(t, st, c, notify.Options{}, r.srv.URL)
	const week = 7 * 24 * time.Hour
	for range 3 {
		for _, x := range []*notify.Notifier{n, other} {
			if k, err := x.WarnExpiring(ctx, week); err != nil || k != 1 {
				t.Fatalf("WarnExpiring: %d, %v; want 1 token in the window", k, err)
			}
			if _, err := x.DeliverDue(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n.Expiring() != 1 {
		t.Fatalf("gauge %d, want 1", n.Expiring())
	}
	_, ok := r.posts()
	if len(ok) != 1 || ok[0].Type != notify.TokenExpiring || ok[0].TokenID != soon.ID.String() || ok[0].ExpiresAt == nil ||
		!ok[0].ExpiresAt.Equal(soon.ExpiresAt) {
		t.Fatalf("posts %+v; want one warning for %s", ok, soon.ID)
	}
	// Four days on, the other token is in its window and told of; the first is not again.
	c.Add(4 * 24 * time.Hour)
	if _, err := n.WarnExpiring(ctx, week); err != nil {
		t.Fatal(err)
	}
	if _, err := n.DeliverDue(ctx); err != nil {
		t.Fatal(err)
	}
	_, ok = r.posts()
	if len(ok) != 2 || ok[1].TokenID != later.ID.String() {
		t.Fatalf("posts %+v; want the second token's warning next", ok)
	}
}
