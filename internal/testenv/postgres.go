package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

// PostgresServer is the URL of the test PostgreSQL server from RILL_AUTHD_TEST_POSTGRES (.ci/pg.sh
// starts one). Without it the test is skipped, loudly, and under CI=true it fails.
func PostgresServer(t testing.TB) string {
	t.Helper()
	u := os.Getenv("RILL_AUTHD_TEST_POSTGRES")
	if u == "" {
		Unavailable(t, "PostgreSQL", "RILL_AUTHD_TEST_POSTGRES is not set, so the PostgreSQL store, replica, copy-store and import tests did not run; "+
			"run them with bash -c 'source .ci/pg.sh && make test', or set RILL_AUTHD_TEST_POSTGRES to a server's URL")
	}
	return u
}

// PostgresDB creates an empty database of the test's own on server (PostgresServer if ""),
// dropped (its connections cut) when the test ends, and returns its URL and name.
func PostgresDB(t testing.TB, server string) (dbURL, name string) {
	t.Helper()
	if server == "" {
		server = PostgresServer(t)
	}
	b := make([]byte, 6)
	rand.Read(b)
	name = "rill_authd_test_" + hex.EncodeToString(b)
	Exec(t, server, "CREATE DATABASE "+name)
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), server)
		if err != nil {
			return // the server is gone with its databases (a cluster of the test's own)
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(server)
	if err != nil {
		t.Fatalf("RILL_AUTHD_TEST_POSTGRES must be a URL: %v", err)
	}
	u.Path = "/" + name
	return u.String(), name
}

// Exec runs SQL statements on the database at dbURL, failing t on an error.
func Exec(t testing.TB, dbURL, sql string, args ...any) {
	t.Helper()
	c, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatalf("connect to %s: %v", dbURL, err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// WithParam is dbURL with a query parameter set (application_name, to tell replicas apart).
func WithParam(dbURL, key, value string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		return dbURL
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}
