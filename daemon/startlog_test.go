package daemon_test

import (
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rill-authd/rill-authd/internal/testenv"
)

// startedLine is the daemon's "rill-authd started" log line.
func startedLine(t *testing.T, d *testenv.Daemon) string {
	t.Helper()
	for _, l := range strings.Split(d.Stderr(), "\n") {
		if strings.Contains(l, "rill-authd started") {
			return l
		}
	}
	t.Fatalf("no start line:\n%s", d.Stderr())
	return ""
}

// TestStartLogNamesTheStoreInUse: the start line names the store the daemon really uses, the
// data directory for Badger and the URL for PostgreSQL, never a --data-dir it ignores nor a
// password (in the user info or a password= parameter).
func TestStartLogNamesTheStoreInUse(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	d := testenv.Start(t, dir)
	if l := startedLine(t, d); !strings.Contains(l, "store="+dir) {
		t.Errorf("Badger: the start line does not name %s: %s", dir, l)
	}
	d.Stop(t)

	dbURL, name := testenv.PostgresDB(t, "")
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	// The test server trusts loopback, so the passwords are never checked, only shown.
	u.User = url.UserPassword(u.User.Username(), "hunter2-userinfo")
	q := u.Query()
	q.Set("password", "hunter2-param")
	u.RawQuery = q.Encode()
	pg := testenv.Start(t, filepath.Join(t.TempDir(), "unused"), "--store", u.String())
	l := startedLine(t, pg)
	if strings.Contains(l, "data_dir") || strings.Contains(l, "unused") {
		t.Errorf("PostgreSQL: the start line names the unused --data-dir: %s", l)
	}
	if !strings.Contains(l, "store=") || !strings.Contains(l, "127.0.0.1") || !strings.Contains(l, name) {
		t.Errorf("PostgreSQL: the start line does not name the database %s: %s", name, l)
	}
	if strings.Contains(pg.Stderr(), "hunter2") {
		t.Errorf("the log holds the database password:\n%s", pg.Stderr())
	}
}
