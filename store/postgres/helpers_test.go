package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/internal/testenv"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

var ctx = context.Background()

// newDatabase creates an empty database of the test's own, dropped when the test ends, and
// returns its URL.
func newDatabase(t testing.TB) string {
	u, _ := testenv.PostgresDB(t, "")
	return u
}

// openDB opens a replica on dbURL, closed when the test ends.
func openDB(t testing.TB, dbURL string, mod ...func(*Options)) *DB {
	t.Helper()
	o := Options{URL: dbURL, PollInterval: 200 * time.Millisecond, MaintainInterval: -1}
	for _, m := range mod {
		m(&o)
	}
	s, err := Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// freshDB opens a replica on a new database.
func freshDB(t testing.TB) *DB { return openDB(t, newDatabase(t)) }

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func newToken(t testing.TB, k token.Kind, owner string) (store.Token, token.Token) {
	t.Helper()
	raw, err := token.New(k)
	must(t, err)
	return store.NewToken(raw, owner, "", "", time.Now(), 0), raw
}

// eventually polls cond every millisecond until it holds or within passes; it returns how long
// that took.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}
