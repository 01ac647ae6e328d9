package badger

import (
	"context"
	"testing"
	"time"

	bdg "github.com/dgraph-io/badger/v4"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// TestIssuerIndexKeepsNoDeadKeys: the issuer index entry of a token that represents its owner
// goes with the token when it is revoked, purged after expiry, or revoked with its
// notifications, so an issuer who assumes users every day does not grow it forever.
func TestIssuerIndexKeepsNoDeadKeys(t *testing.T) {
	s := open(t, Options{InMemory: true})
	ctx := context.Background()
	now := time.Now().UTC()
	for _, id := range []string{"u-su", "u-bob"} {
		if err := s.CreateUser(ctx, store.User{ID: id, Email: id + "@x.io", CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	keys := func() int {
		n := 0
		if err := s.view(func(txn *bdg.Txn) error {
			return scan(txn, pTokIssuer+"u-su/", func(_, _ []byte) error { n++; return nil })
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	mk := func(expires time.Time) store.Token {
		t.Helper()
		raw, err := token.New(token.User)
		if err != nil {
			t.Fatal(err)
		}
		rec := store.NewToken(raw, "u-bob", "Support for bob", "user:su", now.Add(-2*time.Hour), 0)
		rec.IssuedBy, rec.ExpiresAt = "u-su", expires
		if err := s.CreateToken(ctx, rec); err != nil {
			t.Fatal(err)
		}
		return rec
	}
	revoked, _, notified := mk(now.Add(time.Hour)), mk(now.Add(-time.Hour)), mk(now.Add(time.Hour)) // the second expired an hour ago
	if n := keys(); n != 3 {
		t.Fatalf("%d issuer keys, want 3", n)
	}
	if err := s.DeleteToken(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PurgeExpiredTokens(ctx, now, 0); err != nil || n != 1 {
		t.Fatalf("purge: %d %v", n, err)
	}
	if err := s.DeleteTokenNotify(ctx, notified.ID, nil); err != nil {
		t.Fatal(err)
	}
	if n := keys(); n != 0 {
		t.Errorf("%d issuer keys left after the tokens are gone, want 0", n)
	}
}
