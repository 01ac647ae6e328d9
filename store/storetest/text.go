package storetest

import (
	"testing"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// testText: every write refuses text no engine may store (a NUL, bytes that are not UTF-8:
// store.CheckText) with store.ErrInvalid, whatever record or field holds it, and changes
// nothing; Badger took it before, PostgreSQL failed with an error of its own.
func testText(t *testing.T, su suite) {
	s, c := su.fresh(t), t.Context()
	w := populate(t, s)
	before := snap(t, s)
	bad := func(v string) map[string]any { return map[string]any{"deep": []any{1, v}} }
	tok := newToken(t, token.User, w.user.ID)
	tok.DisplayName = "laptop\x00"
	svc := newService(w.org, "etl")
	svc.Attributes = map[string]any{"team\x00": "x"}
	user := newUser("eve@acme.test")
	user.Orgs = map[string]store.UserOrg{w.org: {Groups: []string{"ops", "\xff"}}}
	calls := map[string]error{
		"CreateOrg":               s.CreateOrg(c, store.Org{Name: "new\x00", CreatedAt: now()}),
		"CreateProject":           s.CreateProject(c, store.Project{Org: w.org, Name: "api", RuntimeHost: "https://rt\x00", CreatedAt: now()}),
		"CreateUser email":        s.CreateUser(c, newUser("eve\x00@acme.test")),
		"CreateUser group":        s.CreateUser(c, user),
		"CreateService attribute": s.CreateService(c, svc),
		"CreateToken":             s.CreateToken(c, tok),
		"ImportTokens":            s.ImportTokens(c, []store.Token{newToken(t, token.User, w.user.ID), tok}),
	}
	_, calls["UpdateUser display name"] = s.UpdateUser(c, w.user.ID, func(u *store.User) error { u.DisplayName = "A\x00"; return nil })
	_, calls["UpdateUser attribute"] = s.UpdateUser(c, w.user.ID, func(u *store.User) error {
		u.Orgs = map[string]store.UserOrg{w.org: {Attributes: map[string]any{"k": bad("v\x00")}}}
		return nil
	})
	_, calls["UpdateService attribute"] = s.UpdateService(c, w.svc.ID, func(sv *store.Service) error {
		sv.Attributes = map[string]any{"k": bad("\xc3")}
		return nil
	})
	for what, err := range calls {
		wantErr(t, what, err, store.ErrInvalid)
	}
	sameSnapshot(t, "after refused writes", snap(t, s), before)
}
