package storetest

import (
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// testRepresenting: a user token a superuser issued to act as its owner (Token.IssuedBy) keeps
// its issuer, is listed by owner and by issuer, and is revoked by deleting either user; the
// issuer's other tokens and other issuers' tokens stay.
func testRepresenting(t *testing.T, su suite) {
	for _, tc := range []struct {
		name   string
		delete func(w *world) string // the user deleted
		why    string
	}{
		{"DeleteIssuer", func(w *world) string { return w.user2.ID }, "issuer deleted"},
		{"DeleteOwner", func(w *world) string { return w.user.ID }, "user deleted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, c := su.fresh(t), t.Context()
			w := populate(t, s)
			carol := newUser("carol@acme.test")
			must(t, s.CreateUser(c, carol))
			// user2 (the "superuser") acts as user; carol acts as user too.
			rep := newToken(t, token.User, w.user.ID)
			rep.IssuedBy, rep.DisplayName, rep.ExpiresAt = w.user2.ID, "Support for "+w.user.Email, now().Add(time.Hour)
			must(t, s.CreateToken(c, rep))
			other := newToken(t, token.User, w.user.ID)
			other.IssuedBy = carol.ID
			must(t, s.CreateToken(c, other))
			own := newToken(t, token.User, w.user2.ID) // the issuer's own token
			must(t, s.CreateToken(c, own))

			got := val(s.GetToken(c, rep.ID))(t)
			same(t, "GetToken of a representing token", got, rep, normToken)
			wantAuth(t, s, rep) // the check sees the owner: the user it acts as
			same(t, "ListIssuedTokens", val(s.ListIssuedTokens(c, w.user2.ID))(t), []store.Token{rep}, normTokens)
			if ts := val(s.ListIssuedTokens(c, w.user.ID))(t); len(ts) != 0 {
				t.Errorf("ListIssuedTokens of a user who issued none: %+v", ts)
			}
			if ts := val(s.ListIssuedTokens(c, ""))(t); len(ts) != 0 {
				t.Errorf("ListIssuedTokens of no issuer: %+v", ts)
			}
			owned := val(s.ListTokens(c, w.user.ID))(t)
			if len(owned) != 3 { // userTok, rep, other
				t.Fatalf("ListTokens of the represented user: %d tokens, want 3", len(owned))
			}

			gone := tc.delete(w)
			val(s.DeleteUser(c, gone))(t)
			wantRevoked(t, s, rep.ID, tc.why)
			if ts := val(s.ListIssuedTokens(c, w.user2.ID))(t); len(ts) != 0 {
				t.Errorf("ListIssuedTokens after the delete: %+v", ts)
			}
			if gone == w.user2.ID {
				wantLive(t, s, other) // another issuer's token of the same owner stays
				wantLive(t, s, w.userTok)
				same(t, "ListIssuedTokens of the other issuer", val(s.ListIssuedTokens(c, carol.ID))(t), []store.Token{other}, normTokens)
				// Revoking one by id clears it from its issuer's list.
				must(t, s.DeleteToken(c, other.ID))
				if ts := val(s.ListIssuedTokens(c, carol.ID))(t); len(ts) != 0 {
					t.Errorf("ListIssuedTokens after DeleteToken: %+v", ts)
				}
			} else {
				wantLive(t, s, own)
				wantRevoked(t, s, other.ID, "user deleted")
				if ts := val(s.ListIssuedTokens(c, carol.ID))(t); len(ts) != 0 {
					t.Errorf("ListIssuedTokens of carol after the owner's delete: %+v", ts)
				}
				// The issuer can still be deleted (its index may hold keys of gone tokens).
				val(s.DeleteUser(c, carol.ID))(t)
			}
		})
	}
}

// testRepresentingLoad: a dump (copy-store, restore) keeps a representing token's issuer, and
// the destination's issuer index: deleting the issuer there revokes it.
func testRepresentingLoad(t *testing.T, su suite) {
	src, c := su.fresh(t), t.Context()
	w := populate(t, src)
	rep := newToken(t, token.User, w.user.ID)
	rep.IssuedBy, rep.ExpiresAt = w.user2.ID, now().Add(time.Hour)
	must(t, src.CreateToken(c, rep))
	dump := val(store.Dump(c, src))(t)
	dst := su.fresh(t)
	l, ok := dst.(store.Loader)
	if !ok {
		t.Skipf("%T does not implement store.Loader", dst)
	}
	must(t, l.Load(c, dump, false))
	same(t, "ListIssuedTokens after Load", val(dst.ListIssuedTokens(c, w.user2.ID))(t), []store.Token{rep}, normTokens)
	val(dst.DeleteUser(c, w.user2.ID))(t)
	wantRevoked(t, dst, rep.ID, "issuer deleted")
	wantLive(t, dst, w.userTok)
}
