package storetest

import (
	"errors"
	"testing"

	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

func testOrgs(t *testing.T, su suite) {
	s, c := su.fresh(t), t.Context()
	if os := val(s.ListOrgs(c))(t); len(os) != 0 {
		t.Fatalf("orgs of an empty store: %+v", os)
	}
	// Created out of name order: the list is by name.
	orgs := []store.Org{{Name: "globex", CreatedAt: now()}, {Name: "acme", CreatedAt: now()}, {Name: "acme-eu", CreatedAt: now()}}
	for _, o := range orgs {
		must(t, s.CreateOrg(c, o))
	}
	same(t, "GetOrg", val(s.GetOrg(c, "globex"))(t), orgs[0], normOrg)
	same(t, "ListOrgs", val(s.ListOrgs(c))(t), []store.Org{orgs[1], orgs[2], orgs[0]}, normOrgs)
	wantErr(t, "CreateOrg of a taken name", s.CreateOrg(c, store.Org{Name: "acme"}), store.ErrConflict)
	_, err := s.GetOrg(c, "initech")
	wantErr(t, "GetOrg of a missing org", err, store.ErrNotFound)
}

func testProjects(t *testing.T, su suite) {
	s, c := su.fresh(t), t.Context()
	for _, o := range []string{"acme", "acme-eu"} {
		must(t, s.CreateOrg(c, store.Org{Name: o, CreatedAt: now()}))
	}
	web, api := store.Project{Org: "acme", Name: "web", CreatedAt: now()}, store.Project{Org: "acme", Name: "api", CreatedAt: now()}
	other := store.Project{Org: "acme-eu", Name: "web", CreatedAt: now()} // the same name in another org is fine
	for _, p := range []store.Project{web, api, other} {
		must(t, s.CreateProject(c, p))
	}
	same(t, "GetProject", val(s.GetProject(c, "acme", "web"))(t), web, normProject)
	same(t, "GetProject in the other org", val(s.GetProject(c, "acme-eu", "web"))(t), other, normProject)
	same(t, "ListProjects", val(s.ListProjects(c, "acme"))(t), []store.Project{api, web}, normProjects)
	same(t, "ListProjects of the other org", val(s.ListProjects(c, "acme-eu"))(t), []store.Project{other}, normProjects)
	// A missing org has no projects; saying so with ErrNotFound is fine too.
	if ps, err := s.ListProjects(c, "initech"); len(ps) != 0 || (err != nil && !errors.Is(err, store.ErrNotFound)) {
		t.Errorf("ListProjects of a missing org: %+v, %v", ps, err)
	}
	wantErr(t, "CreateProject of a taken name", s.CreateProject(c, store.Project{Org: "acme", Name: "web"}), store.ErrConflict)
	wantErr(t, "CreateProject in a missing org", s.CreateProject(c, store.Project{Org: "initech", Name: "web"}), store.ErrNotFound)
	_, err := s.GetProject(c, "acme", "zzz")
	wantErr(t, "GetProject of a missing project", err, store.ErrNotFound)
	_, err = s.GetProject(c, "initech", "web")
	wantErr(t, "GetProject in a missing org", err, store.ErrNotFound)
}

func fullUser(email string) store.User {
	u := newUser(email)
	u.DisplayName = "Ada Lovelace"
	u.OrgRoles = map[string]policy.Role{"acme": "admin", "acme-eu": "viewer"}
	u.ProjectRoles = map[string]policy.Role{store.ProjectKey("acme", "web"): "editor"}
	u.Orgs = map[string]store.UserOrg{
		"acme":    {Groups: []string{"eng", "ops"}, Attributes: map[string]any{"tier": "gold", "n": 3.5, "ok": true, "tags": []any{"a", "b"}}},
		"acme-eu": {Groups: []string{"eu"}},
	}
	u.Superuser = true
	return u
}

func testUsers(t *testing.T, su suite) {
	s, c := su.fresh(t), t.Context()
	full, bare := fullUser("ada@acme.test"), newUser("bob@acme.test")
	must(t, s.CreateUser(c, full))
	must(t, s.CreateUser(c, bare))
	for _, u := range []store.User{full, bare} {
		same(t, "GetUser", val(s.GetUser(c, u.ID))(t), u, normUser)
		same(t, "GetUserByEmail", val(s.GetUserByEmail(c, u.Email))(t), u, normUser)
	}
	got := val(s.ListUsers(c))(t)
	if len(got) != 2 {
		t.Fatalf("ListUsers: %+v", got)
	}
	if got[0].ID != full.ID {
		got[0], got[1] = got[1], got[0]
	}
	same(t, "ListUsers", got, []store.User{full, bare}, normUsers)

	// What a read returns is the caller's: changing it changes nothing stored.
	u := val(s.GetUser(c, full.ID))(t)
	u.OrgRoles["acme"] = "guest"
	u.Orgs["acme"].Groups[0] = "nobody"
	u.Orgs["acme"].Attributes["tier"] = "lead"
	u.Orgs["acme-eu"] = store.UserOrg{}
	same(t, "GetUser after the caller changed an earlier result", val(s.GetUser(c, full.ID))(t), full, normUser)

	wantErr(t, "CreateUser with a taken email", s.CreateUser(c, newUser("ada@acme.test")), store.ErrConflict)
	_, err := s.GetUser(c, token.NewID())
	wantErr(t, "GetUser of a missing user", err, store.ErrNotFound)
	_, err = s.GetUserByEmail(c, "eve@acme.test")
	wantErr(t, "GetUserByEmail of a missing email", err, store.ErrNotFound)
}

func testUpdateUser(t *testing.T, su suite) {
	s, c := su.fresh(t), t.Context()
	ada, bob := fullUser("ada@acme.test"), newUser("bob@acme.test")
	must(t, s.CreateUser(c, ada))
	must(t, s.CreateUser(c, bob))

	want := ada
	want.Email, want.DisplayName = "ada@lovelace.test", "Countess"
	want.OrgRoles = map[string]policy.Role{"acme": "editor"}
	want.UpdatedAt = now()
	got, err := s.UpdateUser(c, ada.ID, func(u *store.User) error {
		same(t, "the user fn is given", *u, ada, normUser)
		u.Email, u.DisplayName, u.OrgRoles, u.UpdatedAt = want.Email, want.DisplayName, want.OrgRoles, want.UpdatedAt
		u.ID = token.NewID() // ignored: the id is the record's
		return nil
	})
	must(t, err)
	same(t, "UpdateUser's result", got, want, normUser)
	same(t, "GetUser after UpdateUser", val(s.GetUser(c, ada.ID))(t), want, normUser)
	same(t, "GetUserByEmail of the new email", val(s.GetUserByEmail(c, want.Email))(t), want, normUser)
	_, err = s.GetUserByEmail(c, ada.Email)
	wantErr(t, "GetUserByEmail of the old email", err, store.ErrNotFound)
	if n := len(val(s.ListUsers(c))(t)); n != 2 {
		t.Errorf("ListUsers after UpdateUser holds %d users, want 2", n)
	}
	// The old email is free again.
	must(t, s.CreateUser(c, newUser(ada.Email)))

	before := snap(t, s)
	_, err = s.UpdateUser(c, ada.ID, func(u *store.User) error { u.Email = bob.Email; u.DisplayName = "x"; return nil })
	wantErr(t, "UpdateUser onto a taken email", err, store.ErrConflict)
	_, err = s.UpdateUser(c, ada.ID, func(u *store.User) error { u.DisplayName = "x"; return errBoom })
	wantErr(t, "UpdateUser whose fn fails", err, errBoom)
	_, err = s.UpdateUser(c, token.NewID(), func(*store.User) error { t.Error("fn called for a missing user"); return nil })
	wantErr(t, "UpdateUser of a missing user", err, store.ErrNotFound)
	sameSnapshot(t, "after failed updates", snap(t, s), before)
}

func fullService(org, name string) store.Service {
	sv := newService(org, name)
	sv.OrgRole = "viewer"
	sv.ProjectRoles = map[string]policy.Role{"web": "admin"}
	sv.Attributes = map[string]any{"tier": "gold", "n": 3.5, "ok": true, "nested": map[string]any{"k": "v"}}
	sv.CreatedBy = token.NewID()
	return sv
}

func testServices(t *testing.T, su suite) {
	s, c := su.fresh(t), t.Context()
	for _, o := range []string{"acme", "acme-eu"} {
		must(t, s.CreateOrg(c, store.Org{Name: o, CreatedAt: now()}))
	}
	ci, deploy, bare := fullService("acme", "ci"), fullService("acme", "deploy"), newService("acme", "b")
	other := newService("acme-eu", "ci") // the same name in another org is fine
	for _, sv := range []store.Service{deploy, ci, bare, other} {
		must(t, s.CreateService(c, sv))
	}
	for _, sv := range []store.Service{ci, deploy, bare, other} {
		same(t, "GetService", val(s.GetService(c, sv.ID))(t), sv, normService)
		same(t, "GetServiceByName", val(s.GetServiceByName(c, sv.Org, sv.Name))(t), sv, normService)
	}
	same(t, "ListServices", val(s.ListServices(c, "acme"))(t), []store.Service{bare, ci, deploy}, normServices)
	same(t, "ListServices of the other org", val(s.ListServices(c, "acme-eu"))(t), []store.Service{other}, normServices)
	if ss, err := s.ListServices(c, "initech"); len(ss) != 0 || (err != nil && !errors.Is(err, store.ErrNotFound)) {
		t.Errorf("ListServices of a missing org: %+v, %v", ss, err)
	}

	got := val(s.GetService(c, ci.ID))(t)
	got.Attributes["tier"] = "lead"
	got.ProjectRoles["web"] = "viewer"
	same(t, "GetService after the caller changed an earlier result", val(s.GetService(c, ci.ID))(t), ci, normService)

	wantErr(t, "CreateService of a taken name", s.CreateService(c, newService("acme", "ci")), store.ErrConflict)
	wantErr(t, "CreateService in a missing org", s.CreateService(c, newService("initech", "x")), store.ErrNotFound)
	_, err := s.GetService(c, token.NewID())
	wantErr(t, "GetService of a missing service", err, store.ErrNotFound)
	for _, on := range [][2]string{{"acme", "nope"}, {"initech", "ci"}, {"acme-eu", "deploy"}} {
		_, err = s.GetServiceByName(c, on[0], on[1])
		wantErr(t, "GetServiceByName "+on[0]+"/"+on[1], err, store.ErrNotFound)
	}
}

func testUpdateService(t *testing.T, su suite) {
	s, c := su.fresh(t), t.Context()
	for _, o := range []string{"acme", "acme-eu"} {
		must(t, s.CreateOrg(c, store.Org{Name: o, CreatedAt: now()}))
	}
	ci, deploy := fullService("acme", "ci"), newService("acme", "deploy")
	must(t, s.CreateService(c, ci))
	must(t, s.CreateService(c, deploy))

	want := ci
	want.Name, want.OrgRole, want.Attributes, want.UpdatedAt = "builder", "admin", map[string]any{"tier": "silver"}, now()
	got, err := s.UpdateService(c, ci.ID, func(sv *store.Service) error {
		same(t, "the service fn is given", *sv, ci, normService)
		sv.Name, sv.OrgRole, sv.Attributes, sv.UpdatedAt = want.Name, want.OrgRole, want.Attributes, want.UpdatedAt
		sv.ID, sv.Org = token.NewID(), "acme-eu" // ignored: neither may change
		return nil
	})
	must(t, err)
	same(t, "UpdateService's result", got, want, normService)
	same(t, "GetService after UpdateService", val(s.GetService(c, ci.ID))(t), want, normService)
	same(t, "GetServiceByName of the new name", val(s.GetServiceByName(c, "acme", "builder"))(t), want, normService)
	_, err = s.GetServiceByName(c, "acme", "ci")
	wantErr(t, "GetServiceByName of the old name", err, store.ErrNotFound)
	_, err = s.GetServiceByName(c, "acme-eu", "builder")
	wantErr(t, "GetServiceByName in the org fn tried to move it to", err, store.ErrNotFound)
	same(t, "ListServices after a rename", val(s.ListServices(c, "acme"))(t), []store.Service{want, deploy}, normServices)
	if ss := val(s.ListServices(c, "acme-eu"))(t); len(ss) != 0 {
		t.Errorf("ListServices of the org fn tried to move it to: %+v", ss)
	}
	// The old name is free again.
	must(t, s.CreateService(c, newService("acme", "ci")))

	before := snap(t, s)
	_, err = s.UpdateService(c, ci.ID, func(sv *store.Service) error { sv.Name = "deploy"; sv.OrgRole = "guest"; return nil })
	wantErr(t, "UpdateService rename onto a taken name", err, store.ErrConflict)
	_, err = s.UpdateService(c, ci.ID, func(sv *store.Service) error { sv.OrgRole = "guest"; return errBoom })
	wantErr(t, "UpdateService whose fn fails", err, errBoom)
	_, err = s.UpdateService(c, token.NewID(), func(*store.Service) error { t.Error("fn called for a missing service"); return nil })
	wantErr(t, "UpdateService of a missing service", err, store.ErrNotFound)
	sameSnapshot(t, "after failed updates", snap(t, s), before)
}

// testFailedCalls makes every call that must fail fail, and checks that none of them wrote
// anything: not a record, a count or a change, and no subscriber heard of one.
func testFailedCalls(t *testing.T, su suite) {
	s, c := su.fresh(t), t.Context()
	w := populate(t, s)
	revoked := newToken(t, token.User, w.user.ID)
	must(t, s.CreateToken(c, revoked))
	must(t, s.DeleteToken(c, revoked.ID))
	missing, missingTok := token.NewID(), newTokenID(t)
	dup := newToken(t, token.User, w.user.ID)
	dup.ID = w.userTok.ID // a taken id, with another hash and owner
	dup.OwnerID = w.user2.ID

	before := snap(t, s)
	rec := record(t, s)
	calls := []struct {
		name string
		call func() error
		want error
	}{
		{"CreateOrg of a taken name", func() error { return s.CreateOrg(c, store.Org{Name: w.org}) }, store.ErrConflict},
		{"GetOrg of a missing org", func() error { _, err := s.GetOrg(c, "initech"); return err }, store.ErrNotFound},
		{"CreateProject in a missing org", func() error { return s.CreateProject(c, store.Project{Org: "initech", Name: "web"}) }, store.ErrNotFound},
		{"CreateProject of a taken name", func() error { return s.CreateProject(c, store.Project{Org: w.org, Name: "web"}) }, store.ErrConflict},
		{"GetProject of a missing project", func() error { _, err := s.GetProject(c, w.org, "api"); return err }, store.ErrNotFound},
		{"CreateUser with a taken email", func() error { return s.CreateUser(c, newUser(w.user.Email)) }, store.ErrConflict},
		{"GetUser of a missing user", func() error { _, err := s.GetUser(c, missing); return err }, store.ErrNotFound},
		{"GetUserByEmail of a missing email", func() error { _, err := s.GetUserByEmail(c, "eve@acme.test"); return err }, store.ErrNotFound},
		{"UpdateUser of a missing user", func() error { _, err := s.UpdateUser(c, missing, func(*store.User) error { return nil }); return err }, store.ErrNotFound},
		{"UpdateUser onto a taken email", func() error {
			_, err := s.UpdateUser(c, w.user.ID, func(u *store.User) error { u.Email = w.user2.Email; return nil })
			return err
		}, store.ErrConflict},
		{"UpdateUser whose fn fails", func() error {
			_, err := s.UpdateUser(c, w.user.ID, func(u *store.User) error { u.Superuser = true; return errBoom })
			return err
		}, errBoom},
		{"DeleteUser of a missing user", func() error { _, err := s.DeleteUser(c, missing); return err }, store.ErrNotFound},
		{"CreateService in a missing org", func() error { return s.CreateService(c, newService("initech", "ci")) }, store.ErrNotFound},
		{"CreateService of a taken name", func() error { return s.CreateService(c, newService(w.org, "ci")) }, store.ErrConflict},
		{"GetService of a missing service", func() error { _, err := s.GetService(c, missing); return err }, store.ErrNotFound},
		{"GetServiceByName of a name only another org has", func() error { _, err := s.GetServiceByName(c, w.org2, "deploy"); return err }, store.ErrNotFound},
		{"UpdateService of a missing service", func() error {
			_, err := s.UpdateService(c, missing, func(*store.Service) error { return nil })
			return err
		}, store.ErrNotFound},
		{"UpdateService rename onto a taken name", func() error {
			_, err := s.UpdateService(c, w.svc.ID, func(sv *store.Service) error { sv.Name = w.svc2.Name; return nil })
			return err
		}, store.ErrConflict},
		{"UpdateService whose fn fails", func() error {
			_, err := s.UpdateService(c, w.svc.ID, func(sv *store.Service) error { sv.OrgRole = "admin"; return errBoom })
			return err
		}, errBoom},
		{"DeleteService of a missing service", func() error { _, err := s.DeleteService(c, missing); return err }, store.ErrNotFound},
		{"CreateToken for a missing user", func() error { return s.CreateToken(c, newToken(t, token.User, missing)) }, store.ErrNotFound},
		{"CreateToken for a missing service", func() error { return s.CreateToken(c, newToken(t, token.Service, missing)) }, store.ErrNotFound},
		{"CreateToken of a user for a service", func() error { return s.CreateToken(c, newToken(t, token.User, w.svc.ID)) }, store.ErrNotFound},
		{"CreateToken of a service for a user", func() error { return s.CreateToken(c, newToken(t, token.Service, w.user.ID)) }, store.ErrNotFound},
		{"CreateToken of a taken id", func() error { return s.CreateToken(c, dup) }, store.ErrConflict},
		{"ImportTokens with a missing owner", func() error {
			return s.ImportTokens(c, []store.Token{newToken(t, token.User, w.user.ID), newToken(t, token.Service, missing)})
		}, store.ErrNotFound},
		{"ImportTokens with a taken id", func() error { return s.ImportTokens(c, []store.Token{dup, newToken(t, token.User, w.user.ID)}) }, store.ErrConflict},
		{"GetToken of an unknown token", func() error { _, err := s.GetToken(c, missingTok); return err }, store.ErrNotFound},
		{"TokenAuth of an unknown token", func() error { _, err := s.TokenAuth(c, missingTok); return err }, store.ErrNotFound},
		{"DeleteToken of an unknown token", func() error { return s.DeleteToken(c, missingTok) }, store.ErrNotFound},
		{"DeleteToken of a revoked token", func() error { return s.DeleteToken(c, revoked.ID) }, store.ErrNotFound},
	}
	for _, tc := range calls {
		m, seq := rec.mark(), lastSeq(t, s)
		err := tc.call()
		wantErr(t, tc.name, err, tc.want)
		if got := lastSeq(t, s); got != seq {
			t.Errorf("%s: LastSeq went from %d to %d", tc.name, seq, got)
		}
		if bs := rec.since(m); len(bs) > 0 {
			t.Errorf("%s: subscribers heard of %v", tc.name, bs)
		}
	}
	sameSnapshot(t, "after failed calls", snap(t, s), before)
}
