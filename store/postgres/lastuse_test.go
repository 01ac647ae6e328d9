package postgres

import (
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// TestLastUsedWhereMigration: a database from before migration 0008 (its columns dropped and
// its row removed) keeps its tokens when a release with it opens the database: their where is
// empty, then recorded like any other; and 0008 applies whatever other migration came first.
func TestLastUsedWhereMigration(t *testing.T) {
	u := newDatabase(t)
	s := openDB(t, u)
	must(t, s.CreateUser(ctx, store.User{ID: "u1", Email: "bob@acme.com"}))
	tk, _ := newToken(t, token.User, "u1")
	must(t, s.CreateToken(ctx, tk))
	_, err := s.pool.Exec(ctx, `ALTER TABLE tokens DROP COLUMN last_used_ip, DROP COLUMN last_used_user_agent;
		DELETE FROM schema_migrations WHERE version = 8`)
	must(t, err)
	s.Close()

	s = openDB(t, u)
	got, err := s.GetToken(ctx, tk.ID)
	must(t, err)
	if got.LastUsedIP != "" || got.LastUsedUserAgent != "" || got.Hash != tk.Hash {
		t.Fatalf("a token from before 0008: %+v", got)
	}
	at := time.Now().Add(time.Minute)
	must(t, s.RecordUses(ctx, map[token.ID]store.TokenUse{tk.ID: {At: at, IP: "203.0.113.7:443", UserAgent: "curl/8"}}))
	got, err = s.GetToken(ctx, tk.ID)
	must(t, err)
	if got.LastUsedIP != "203.0.113.7" || got.LastUsedUserAgent != "curl/8" || !got.LastUsedAt.Equal(at) {
		t.Fatalf("after a use: %+v", got)
	}
}
