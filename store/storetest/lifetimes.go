package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// testTokenPolicy: an org's token policy is kept in its record (read back, listed, dumped and
// loaded), is an org change in the feed, survives a reopen-free round trip through Load, and
// an unknown org or a bad policy changes nothing.
func testTokenPolicy(t *testing.T, su suite) {
	s := su.fresh(t)
	c := t.Context()
	must(t, s.CreateOrg(c, store.Org{Name: "acme", CreatedAt: now()}))
	must(t, s.CreateOrg(c, store.Org{Name: "globex", CreatedAt: now()}))
	if o := val(s.GetOrg(c, "acme"))(t); !o.TokenPolicy.IsZero() {
		t.Fatalf("a new org has policy %+v, want none", o.TokenPolicy)
	}
	rec := record(t, s)
	p := store.TokenPolicy{MaxUserTokenTTLMinutes: 90 * 24 * 60, MaxServiceTokenTTLMinutes: 60, MaxMagicTokenTTLMinutes: 7 * 24 * 60, RequireExpiry: true}
	if o := val(s.SetTokenPolicy(c, "acme", p))(t); o.TokenPolicy != p || o.Name != "acme" {
		t.Fatalf("SetTokenPolicy returned %+v", o)
	}
	if got := val(s.GetOrg(c, "acme"))(t).TokenPolicy; got != p {
		t.Errorf("GetOrg: policy %+v, want %+v", got, p)
	}
	if got := val(s.GetOrg(c, "globex"))(t).TokenPolicy; !got.IsZero() {
		t.Errorf("globex got acme's policy: %+v", got)
	}
	os := val(s.ListOrgs(c))(t)
	if len(os) != 2 || os[0].TokenPolicy != p || !os[1].TokenPolicy.IsZero() {
		t.Errorf("ListOrgs: %+v", os)
	}
	if got := descs(rec.all()); len(got) != 1 || got[0] != put(store.ChangeOrg, "acme") {
		t.Errorf("feed: %v, want one org put of acme", got)
	}

	before := lastSeq(t, s)
	_, err := s.SetTokenPolicy(c, "nope", p)
	wantErr(t, "SetTokenPolicy of an unknown org", err, store.ErrNotFound)
	_, err = s.SetTokenPolicy(c, "acme", store.TokenPolicy{MaxUserTokenTTLMinutes: -1})
	if err == nil {
		t.Error("SetTokenPolicy took a negative limit")
	}
	if got := val(s.GetOrg(c, "acme"))(t).TokenPolicy; got != p {
		t.Errorf("a refused SetTokenPolicy changed the policy to %+v", got)
	}
	if after := lastSeq(t, s); after != before {
		t.Errorf("refused writes moved the feed from %d to %d", before, after)
	}

	// Clearing it is setting the zero policy.
	if o := val(s.SetTokenPolicy(c, "acme", store.TokenPolicy{}))(t); !o.TokenPolicy.IsZero() {
		t.Errorf("cleared policy: %+v", o.TokenPolicy)
	}
	val(s.SetTokenPolicy(c, "acme", p))(t)

	// copy-store (Dump, Load) keeps it.
	dump := val(store.Dump(c, s))(t)
	dst := su.fresh(t)
	l, ok := dst.(store.Loader)
	if !ok {
		return
	}
	must(t, l.Load(c, dump, false))
	if got := val(dst.GetOrg(c, "acme"))(t).TokenPolicy; got != p {
		t.Errorf("after Dump and Load: policy %+v, want %+v", got, p)
	}
}

// testPurgeExpired: PurgeExpiredTokens deletes exactly the tokens that expired before the
// cut (not those expiring later, nor those that never expire), leaves each revoked as
// "expired" (a tombstone: GetToken and TokenAuth say revoked, not unknown), keeps the counts,
// puts a token delete per token in the feed, honours its limit, and a second run finds nothing.
func testPurgeExpired(t *testing.T, su suite) {
	s := su.fresh(t)
	c := t.Context()
	must(t, s.CreateOrg(c, store.Org{Name: "acme", CreatedAt: now()}))
	u := newUser("ann@acme.test")
	must(t, s.CreateUser(c, u))
	svc := newService("acme", "ci")
	must(t, s.CreateService(c, svc))

	cut := now()
	mk := func(k token.Kind, owner string, expires time.Time) store.Token {
		tk := newToken(t, k, owner)
		tk.CreatedAt = cut.Add(-100 * 24 * time.Hour)
		tk.ExpiresAt = expires
		must(t, s.CreateToken(c, tk))
		return tk
	}
	// More than one batch of expired tokens, of both owner kinds.
	var expired []store.Token
	for i := range store.PurgeBatch + 5 {
		k, owner := token.User, u.ID
		if i%2 == 1 {
			k, owner = token.Service, svc.ID
		}
		expired = append(expired, mk(k, owner, cut.Add(-time.Duration(i+1)*time.Second)))
	}
	later := mk(token.User, u.ID, cut.Add(time.Hour))
	never := mk(token.Service, svc.ID, time.Time{})
	live := counts(t, s)

	rec := record(t, s)
	if n := val(s.PurgeExpiredTokens(c, cut, 3))(t); n != 3 {
		t.Errorf("PurgeExpiredTokens with limit 3 purged %d", n)
	}
	if n := val(s.PurgeExpiredTokens(c, cut, 0))(t); n != len(expired)-3 {
		t.Errorf("PurgeExpiredTokens purged %d, want %d", n, len(expired)-3)
	}
	if n := val(s.PurgeExpiredTokens(c, cut, 0))(t); n != 0 {
		t.Errorf("a second purge found %d more", n)
	}
	for _, tk := range expired {
		_, err := s.GetToken(c, tk.ID)
		if !errors.Is(err, store.ErrRevoked) {
			t.Fatalf("GetToken of a purged token: %v, want revoked", err)
		}
		if _, err := s.TokenAuth(c, tk.ID); !errors.Is(err, store.ErrRevoked) {
			t.Fatalf("TokenAuth of a purged token: %v, want revoked", err)
		}
	}
	for _, tk := range []store.Token{later, never} {
		if _, err := s.GetToken(c, tk.ID); err != nil {
			t.Errorf("a token not expired before the cut was purged: %v", err)
		}
	}
	got := counts(t, s)
	if got[token.User]+got[token.Service] != live[token.User]+live[token.Service]-uint64(len(expired)) {
		t.Errorf("counts after purge %v, before %v, purged %d", got, live, len(expired))
	}
	var want []string
	for _, tk := range expired {
		want = append(want, del(store.ChangeToken, tk.ID.String()))
	}
	if got := descs(rec.all()); !sameSet(got, want) {
		t.Errorf("feed has %d changes for %d purged tokens (want a token delete each)", len(got), len(expired))
	}
	if ts := val(s.ListTokens(c, u.ID))(t); len(ts) != 1 || ts[0].ID != later.ID {
		t.Errorf("ListTokens after purge: %d tokens", len(ts))
	}
}
