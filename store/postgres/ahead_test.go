package postgres

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/internal/testenv"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// TestOwnWriteToldAheadWhenBehind: replica B cannot read the feed (its role lost SELECT on the
// column of the feed state that only the feed query reads, so its follower and its catch-up
// fail) while A writes. B's
// own writes still commit; their revocations hold on B at once, and B's subscribers hear the
// write's own changes ahead of their turn (Seq 0): what they name, so a cache drops exactly
// that, and no reset (which would make a cache re-read everything just when the store may be
// failing).
func TestOwnWriteToldAheadWhenBehind(t *testing.T) {
	dbURL := newDatabase(t)
	a := openDB(t, dbURL)
	b4 := make([]byte, 4)
	rand.Read(b4)
	role := "rill_authd_test_b_" + hex.EncodeToString(b4)
	testenv.Exec(t, dbURL, "CREATE ROLE "+role+" LOGIN")
	t.Cleanup(func() {
		testenv.Exec(t, dbURL, "REASSIGN OWNED BY "+role+" TO postgres; DROP OWNED BY "+role+"; DROP ROLE "+role)
	})
	testenv.Exec(t, dbURL, "GRANT ALL ON SCHEMA public TO "+role+"; GRANT ALL ON ALL TABLES IN SCHEMA public TO "+role+"; GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO "+role)
	u, err := url.Parse(dbURL)
	must(t, err)
	u.User = url.User(role)
	b := openDB(t, u.String())
	logB := (&seqLog{}).subscribe(b)

	must(t, a.CreateUser(ctx, store.User{ID: "u1", Email: "a@b.c"}))
	tk, raw := newToken(t, token.User, "u1")
	must(t, a.CreateToken(ctx, tk))
	eventually(t, 2*time.Second, "B knows the token", func() bool { _, err := b.TokenAuth(ctx, raw.ID); return err == nil })

	// The feed query reads how far the feed was pruned; a write reads only the last sequence.
	testenv.Exec(t, dbURL, "REVOKE SELECT ON feed_state FROM "+role+"; GRANT SELECT (last_seq) ON feed_state TO "+role)
	must(t, a.CreateOrg(ctx, store.Org{Name: "acme"})) // B cannot apply it
	logB.mu.Lock()
	m := len(logB.cs)
	logB.mu.Unlock()
	must(t, b.DeleteToken(ctx, tk.ID))
	if _, err := b.TokenAuth(ctx, raw.ID); !errors.Is(err, store.ErrRevoked) {
		t.Errorf("B after its own revoke, behind the feed: %v, want ErrRevoked at once", err)
	}
	logB.mu.Lock()
	heard := append([]store.Change(nil), logB.cs[m:]...)
	logB.mu.Unlock()
	if len(heard) != 1 || heard[0].Seq != 0 || heard[0].IsReset() || heard[0].Kind != store.ChangeToken ||
		heard[0].Op != store.OpDelete || heard[0].ID != tk.ID.String() {
		t.Fatalf("B's subscribers heard %+v before the write returned, want its token delete ahead (Seq 0)", heard)
	}

	// Readable again: the follower tells everything in order, the delete again with its Seq.
	testenv.Exec(t, dbURL, "GRANT SELECT ON feed_state TO "+role)
	last, err := a.LastSeq(ctx)
	must(t, err)
	eventually(t, 10*time.Second, "B catches up", func() bool { return logB.last() == last })
	logB.exactlyOnce(t, 0, last)
}
