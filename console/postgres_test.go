package console_test

import (
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"

	"github.com/rill-authd/rill-authd/internal/testenv"
)

// TestOverviewShowsTheReplicaOnPostgres: a daemon on PostgreSQL shows its view of the change
// feed on the Overview (on Badger there is no such section).
func TestOverviewShowsTheReplicaOnPostgres(t *testing.T) {
	dbURL, _ := testenv.PostgresDB(t, "")
	for _, args := range [][]string{{"--store", dbURL}, nil} {
		d := testenv.Start(t, "", args...)
		jar, _ := cookiejar.New(nil)
		b := &browser{t: t, base: d.URL(), c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
		if r := b.signIn(d.Token); r.code != http.StatusSeeOther {
			t.Fatalf("sign in: %d %s", r.code, r.body)
		}
		r := b.get("/ui/overview")
		if r.code != 200 {
			t.Fatalf("overview: %d %s", r.code, r.body)
		}
		onPG := strings.Contains(r.body, "Replicas (PostgreSQL)")
		if onPG != (args != nil) {
			t.Fatalf("replica section shown %v with %v:\n%s", onPG, args, r.body)
		}
		if args != nil && (!strings.Contains(r.body, d.HTTPAddr+" (this replica)") || !strings.Contains(r.body, "✔ current") || !strings.Contains(r.body, "following")) {
			t.Fatalf("replica state:\n%s", r.body)
		}
		if !strings.Contains(r.body, "✔ signing") {
			t.Fatalf("no signing key on the Overview:\n%s", r.body)
		}
		d.Stop(t)
	}
}
