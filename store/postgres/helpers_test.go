package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

var ctx = context.Background()

// serverURL is the test server from RILL_AUTHD_TEST_POSTGRES. Without one the test is skipped
// locally and fails in CI, where .ci/pg.sh starts one.
func serverURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("RILL_AUTHD_TEST_POSTGRES")
	if u == "" {
		msg := "RILL_AUTHD_TEST_POSTGRES is not set: the PostgreSQL store is NOT TESTED. " +
			"Start a server (see .ci/pg.sh) and set it to its URL, e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip("SKIPPED: " + msg)
	}
	return u
}

// newDatabase creates an empty database of the test's own on the test server, dropped when the
// test ends, and returns its URL.
func newDatabase(t testing.TB) string {
	t.Helper()
	admin := serverURL(t)
	b := make([]byte, 6)
	rand.Read(b)
	name := "rill_authd_test_" + hex.EncodeToString(b)
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to the test server: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), admin)
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("RILL_AUTHD_TEST_POSTGRES must be a URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
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
