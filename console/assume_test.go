package console_test

import (
	"context"
	"html"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// TestAssumedTokenShownAsSuch: a token a superuser issued to act as a user is marked in both
// users' My tokens ("acting as …, by …"), is found by searching for that, and a console signed
// in with it says whose it is and who assumed it.
func TestAssumedTokenShownAsSuch(t *testing.T) {
	e := setup(t, false)
	tok, err := token.New(token.User)
	if err != nil {
		t.Fatal(err)
	}
	rec := store.NewToken(tok, "u-viewer", "Support for viewer@acme.io", "user:root@x.io", time.Now(), time.Hour)
	rec.IssuedBy = "u-su"
	if err := e.st.CreateToken(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	const mark = "acting as viewer@acme.io, by root@x.io"
	for _, who := range []string{"su", "viewer"} {
		b := e.browser(t)
		if r := b.signIn(e.tokens[who]); r.code != http.StatusSeeOther {
			t.Fatalf("sign in as %s: %d", who, r.code)
		}
		r := b.get("/ui/tokens")
		if r.code != 200 || !strings.Contains(html.UnescapeString(r.body), mark) || strings.Count(r.body, "badge assumed") != 1 {
			t.Errorf("%s's My tokens: %d, want the assumed token marked once\n%s", who, r.code, r.body)
		}
		if r := b.get("/ui/tokens?q=acting+as"); !strings.Contains(r.body, rec.Prefix) {
			t.Errorf("%s's search for \"acting as\" misses the assumed token", who)
		}
	}
	b := e.browser(t)
	if r := b.signIn(tok.Encode()); r.code != http.StatusSeeOther {
		t.Fatalf("sign in with the assumed token: %d %s", r.code, r.body)
	}
	if r := b.get("/ui/tokens"); !strings.Contains(r.body, "viewer@acme.io") || !strings.Contains(r.body, "assumed by root@x.io") {
		t.Errorf("a console signed in with the assumed token does not say so:\n%s", r.body)
	}
}
