package storetest

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"testing"

	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// testRestricted: a user's project roles limited to resources (none: to nothing) come back as
// written, through create, update and list, and Only shows one org's alone.
func testRestricted(t *testing.T, su suite) {
	s := su.fresh(t)
	ctx, at := t.Context(), now()
	// A project's id (Rill's, for an imported one) comes back: external users' subjects use it.
	must(t, s.CreateOrg(ctx, store.Org{Name: "acme", CreatedAt: at}))
	must(t, s.CreateProject(ctx, store.Project{ID: "6f1c1a52-93b8-4d5e-a4c9-0b7d2e1f3a44", Org: "acme", Name: "web", CreatedAt: at}))
	if p := val(s.GetProject(ctx, "acme", "web"))(t); p.ID != "6f1c1a52-93b8-4d5e-a4c9-0b7d2e1f3a44" ||
		p.ExternalSubject("cust-42") != "ext_"+hexSHA256("cust-42"+p.ID) {
		t.Errorf("project id %q, external subject %s", p.ID, p.ExternalSubject("cust-42"))
	}
	two := []token.ResourceName{{Kind: token.KindExplore, Name: "sales <é>"}, {Kind: token.KindCanvas, Name: "exec"}}
	u := store.User{ID: token.NewID(), Email: "limited@acme.io", CreatedAt: at, UpdatedAt: at,
		ProjectRoles: map[string]policy.Role{"acme/web": policy.Viewer, "acme/api": policy.Editor, "beta/x": policy.Viewer},
		Restricted:   map[string]store.Restricted{"acme/web": {Resources: two}, "acme/api": {}, "beta/x": {Resources: two[:1]}}}
	must(t, s.CreateUser(ctx, u))
	same := func(what string, got store.User, want map[string]store.Restricted) {
		t.Helper()
		if !maps.EqualFunc(got.Restricted, want, func(a, b store.Restricted) bool { return slices.Equal(a.Resources, b.Resources) }) {
			t.Errorf("%s: restricted %v, want %v", what, got.Restricted, want)
		}
	}
	same("get", val(s.GetUser(ctx, u.ID))(t), u.Restricted)
	same("by email", val(s.GetUserByEmail(ctx, u.Email))(t), u.Restricted)
	got := val(s.GetUser(ctx, u.ID))(t)
	if _, ok := got.Restricted["acme/api"]; !ok {
		t.Error("a restriction to no resources was lost (it is not the same as none)")
	}
	same("only acme", got.Only("acme"), map[string]store.Restricted{"acme/web": {Resources: two}, "acme/api": {}})

	// Losing the role drops its restriction.
	after := val(s.UpdateUser(ctx, u.ID, func(u *store.User) error {
		delete(u.ProjectRoles, "acme/web")
		u.DropStaleRestrictions()
		return nil
	}))(t)
	want := map[string]store.Restricted{"acme/api": {}, "beta/x": {Resources: two[:1]}}
	same("update", after, want)
	same("get after update", val(s.GetUser(ctx, u.ID))(t), want)
	for _, l := range val(s.ListUsers(ctx))(t) {
		if l.ID == u.ID {
			same("list", l, want)
		}
	}
}

func hexSHA256(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
