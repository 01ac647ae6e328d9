package console

import (
	"errors"
	"net/http"
	"testing"
	"time"
)

// TestSessionPoolNeverEvictsAnotherUser: a full pool refuses a sign-in (503) rather than end
// anyone's session (third red team: the oldest went first, so 10,000 sign-ins signed everyone
// out); a user at their own bound loses their own oldest; ended sessions make room.
func TestSessionPoolNeverEvictsAnotherUser(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	ss := newSessions(func() time.Time { return now }, 30*time.Minute, 12*time.Hour)
	ss.limit, ss.perUser = 4, 2
	open := func(user string) *session {
		t.Helper()
		s, id, err := ss.open(user, "tok-"+user)
		if err != nil || id == "" {
			t.Fatalf("open a session of %s: %v", user, err)
		}
		return s
	}
	alice := open("alice")
	bob1, bob2 := open("bob"), open("bob")
	now = now.Add(20 * time.Minute)
	carol := open("carol")
	// bob at his bound of 2: his own oldest makes room, no one else's.
	bob3 := open("bob")
	if _, ok := ss.m[bob1.key]; ok {
		t.Error("bob's oldest session kept past his bound")
	}
	for name, s := range map[string]*session{"alice": alice, "bob's 2nd": bob2, "bob's 3rd": bob3, "carol": carol} {
		if _, ok := ss.m[s.key]; !ok {
			t.Errorf("%s's session ended by bob's sign-in", name)
		}
	}
	// The pool is full (4): dave is refused with 503, and nobody is signed out for him.
	_, _, err := ss.open("dave", "tok-dave")
	var oe *openError
	if !errors.As(err, &oe) || oe.status != http.StatusServiceUnavailable {
		t.Fatalf("a sign-in into a full pool: %v, want 503", err)
	}
	if len(ss.m) != 4 || len(ss.byUser["dave"]) != 0 {
		t.Fatalf("a refused sign-in changed the pool: %d sessions, dave has %d", len(ss.m), len(ss.byUser["dave"]))
	}
	// 15 minutes on, alice's and bob's 2nd (opened at 0) have been idle 35 minutes: ended, they
	// make room.
	now = now.Add(15 * time.Minute)
	open("dave")
	if _, ok := ss.m[alice.key]; ok {
		t.Error("an idle session kept while the pool was full")
	}
	if _, ok := ss.m[carol.key]; !ok {
		t.Error("carol's live session ended to make room")
	}
}
