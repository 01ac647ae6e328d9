package console

import (
	"net/http/httptest"
	"testing"
	"time"
)

// TestOwnedTokenRevokedWhenTheSessionEnds: a session whose token the console issued (an OIDC
// sign-in) revokes it however it ends (idle here, or replaced by the user's newer sessions);
// a session opened with a pasted token never revokes it; a disowned one (sign-out revoked it
// already) is not revoked twice.
func TestOwnedTokenRevokedWhenTheSessionEnds(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	ss := newSessions(func() time.Time { return now }, 30*time.Minute, 12*time.Hour)
	ss.perUser = 1
	revoked := make(chan string, 10)
	ss.revoke = func(tok string) { revoked <- tok }
	expect := func(want string) {
		t.Helper()
		select {
		case got := <-revoked:
			if got != want {
				t.Fatalf("revoked %q, want %q", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%q not revoked", want)
		}
	}
	none := func() {
		t.Helper()
		select {
		case got := <-revoked:
			t.Fatalf("revoked %q", got)
		case <-time.After(50 * time.Millisecond):
		}
	}

	_, id, err := ss.openOwned("ana", "owned-1", true)
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(31 * time.Minute)
	r := httptest.NewRequest("GET", "/ui/tokens", nil)
	r.AddCookie(cookie(r, cookieName, id, 0))
	if s, why := ss.get(r); s != nil || why != "idle" {
		t.Fatalf("after 31 idle minutes: %v %q", s, why)
	}
	expect("owned-1")

	if _, _, err := ss.openOwned("ana", "owned-2", true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ss.open("ana", "pasted"); err != nil { // replaces owned-2 (one per user here)
		t.Fatal(err)
	}
	expect("owned-2")
	if _, _, err := ss.openOwned("ana", "owned-3", true); err != nil { // replaces the pasted one
		t.Fatal(err)
	}
	none()

	s, _, err := ss.openOwned("bob", "owned-4", true)
	if err != nil {
		t.Fatal(err)
	}
	ss.disown(s)
	ss.end(s)
	none()
}
