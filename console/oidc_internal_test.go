package console

import (
	"net/http"
	"net/http/httptest"
	"sync"
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

// TestIdleOwnedTokenRevokedUnseen: the token of an OIDC session is revoked when the session
// ends idle or expires even if its browser never comes back (a closed tab): the console sweeps
// its sessions in the background, rather than leaving the token live for the rest of its 12 h
// until some request happens to look at the session.
func TestIdleOwnedTokenRevokedUnseen(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	c, err := New(Options{API: http.NotFoundHandler(), Now: clock, SampleEvery: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	revoked := make(chan string, 10)
	c.sessions.revoke = func(tok string) { revoked <- tok }
	_, id, err := c.sessions.openOwned("ana", "owned-idle", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.sessions.open("bob", "pasted"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(31 * time.Minute)
	mu.Unlock()
	select {
	case got := <-revoked:
		if got != "owned-idle" {
			t.Fatalf("revoked %q, want owned-idle", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the idle session's token was not revoked without a request")
	}
	// The browser comes back: told why, and the token is not revoked twice.
	r := httptest.NewRequest("GET", "/ui/tokens", nil)
	r.AddCookie(cookie(r, cookieName, id, 0))
	if s, why := c.sessions.get(r); s != nil || why != "idle" {
		t.Fatalf("the cookie back after 31 idle minutes: %v %q", s, why)
	}
	select {
	case got := <-revoked:
		t.Fatalf("revoked %q again", got)
	case <-time.After(100 * time.Millisecond):
	}
}
