package storetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// newMagic makes the record of a fresh magic token (a public URL) of org/project.
func newMagic(t *testing.T, org, project string) store.Token {
	t.Helper()
	tk := newToken(t, token.Magic, store.MagicOwner(org, project))
	tk.DisplayName = "Q3 for partners"
	tk.ExpiresAt = now().Add(time.Hour)
	tk.Magic = &store.Magic{Org: org, Project: project,
		Resources: []token.ResourceName{{Kind: token.KindExplore, Name: "sales"}, {Kind: token.KindMetricsView, Name: "sales_mv"}},
		Filters:   map[string]string{"sales_mv": `{"cond":{"op":"OPERATION_EQ","exprs":[{"ident":"country"},{"val":"DK"}]}}`},
		Fields:    []string{"country", "revenue"}, State: "Cg5zdGF0ZQ==",
		Attributes:      map[string]any{"email": "ada@acme.test", "admin": false, "groups": []any{"eu"}},
		CreatedByUserID: token.NewID(), CreatedByEmail: "ada@acme.test"}
	return tk
}

// testMagicTokens: a magic token is a token owned by its project (store.MagicOwner), whose grant
// (store.Magic) every read gives back as written; it is in the feed and the counts like any
// token, revoked like one, and carried by Dump and Load.
func testMagicTokens(t *testing.T, su suite) {
	s, c := su.fresh(t), t.Context()
	w := populate(t, s)
	rec := record(t, s)
	owner := store.MagicOwner(w.org, w.project.Name)

	m := newMagic(t, w.org, w.project.Name)
	mark := rec.mark()
	must(t, s.CreateToken(c, m))
	if got := rec.since(mark); len(got) != 1 || !sameSet(descs(got[0]), []string{put(store.ChangeToken, m.ID.String())}) {
		t.Errorf("feed of a magic token's create: %v", got)
	}
	got := normToken(val(s.GetToken(c, m.ID))(t))
	if !reflect.DeepEqual(got, normToken(m)) {
		t.Errorf("GetToken of a magic token:\n got %+v %+v\nwant %+v %+v", got, got.Magic, m, m.Magic)
	}
	if a := val(s.TokenAuth(c, m.ID))(t); a.Kind != token.Magic || a.OwnerID != owner || a.Hash != m.Hash || !a.ExpiresAt.Equal(m.ExpiresAt) {
		t.Errorf("TokenAuth of a magic token: %+v", a)
	}
	plain := newMagic(t, w.org, w.project.Name) // the least a magic token holds
	plain.ExpiresAt, plain.DisplayName = time.Time{}, ""
	plain.Magic = &store.Magic{Org: w.org, Project: w.project.Name}
	must(t, s.CreateToken(c, plain))
	list := normTokens(val(s.ListTokens(c, owner))(t))
	if len(list) != 2 || !reflect.DeepEqual(list[0], normToken(m)) || !reflect.DeepEqual(list[1], normToken(plain)) {
		t.Errorf("ListTokens(%s) = %+v", owner, list)
	}
	if n := counts(t, s)[token.Magic]; n != 2 {
		t.Errorf("CountTokens: %d magic tokens, want 2", n)
	}
	// Its owner is a project: none of another org, nor a user, owns one.
	wantErr(t, "a magic token of a missing project", s.CreateToken(c, newMagic(t, w.org2, w.project.Name)), store.ErrNotFound)
	wrong := newMagic(t, w.org, w.project.Name)
	wrong.OwnerID = w.user.ID
	wantErr(t, "a magic token owned by a user", s.CreateToken(c, wrong), store.ErrNotFound)
	bad := newMagic(t, w.org, w.project.Name)
	bad.Magic.Fields = []string{"a\x00b"}
	wantErr(t, "a magic token holding a NUL", s.CreateToken(c, bad), store.ErrInvalid)

	// Touching keeps the grant.
	used := now()
	must(t, s.RecordUses(c, map[token.ID]store.TokenUse{m.ID: {At: used, IP: "192.0.2.9", UserAgent: "Mozilla/5.0"}}))
	if got := val(s.GetToken(c, m.ID))(t); !got.LastUsedAt.Equal(used) || !reflect.DeepEqual(got.Magic, m.Magic) ||
		got.LastUsedIP != "192.0.2.9" || got.LastUsedUserAgent != "Mozilla/5.0" {
		t.Errorf("after RecordUses: %+v %+v", got, got.Magic)
	}
	m.LastUsedAt, m.LastUsedIP, m.LastUsedUserAgent = used, "192.0.2.9", "Mozilla/5.0"

	// Dump and Load carry it, grant and all.
	dump := val(store.Dump(c, s))(t)
	found := 0
	for _, tk := range dump.Tokens {
		if tk.Kind == token.Magic {
			found++
		}
	}
	if found != 2 {
		t.Errorf("Dump holds %d magic tokens, want 2", found)
	}
	if dst := su.fresh(t); true {
		if l, ok := dst.(store.Loader); ok {
			must(t, l.Load(c, dump, false))
			if got := normToken(val(dst.GetToken(c, m.ID))(t)); !reflect.DeepEqual(got, normToken(m)) {
				t.Errorf("after Load: %+v %+v", got, got.Magic)
			}
			if a := val(dst.TokenAuth(c, plain.ID))(t); a.Kind != token.Magic || a.OwnerID != owner {
				t.Errorf("TokenAuth after Load: %+v", a)
			}
			if n := counts(t, dst)[token.Magic]; n != 2 {
				t.Errorf("CountTokens after Load: %d magic tokens, want 2", n)
			}
		}
	}

	// Revoking is one token delete in the feed, and reads say revoked.
	mark = rec.mark()
	must(t, s.DeleteToken(c, m.ID))
	if got := rec.since(mark); len(got) != 1 || !sameSet(descs(got[0]), []string{del(store.ChangeToken, m.ID.String())}) {
		t.Errorf("feed of a magic token's revoke: %v", got)
	}
	_, err := s.GetToken(c, m.ID)
	wantErr(t, "GetToken of a revoked magic token", err, store.ErrRevoked)
	_, err = s.TokenAuth(c, m.ID)
	wantErr(t, "TokenAuth of a revoked magic token", err, store.ErrRevoked)
	if list := val(s.ListTokens(c, owner))(t); len(list) != 1 || list[0].ID != plain.ID {
		t.Errorf("ListTokens after the revoke: %+v", list)
	}
	if n := counts(t, s)[token.Magic]; n != 1 {
		t.Errorf("CountTokens after the revoke: %d magic tokens, want 1", n)
	}
}
