package adminapi_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// setupLimited is setup's world plus two project editors of acme/web limited to the explore
// "sales": "limited" (limited@acme.io) and "peer" (peer@acme.io), "free" (free@acme.io), a
// project viewer without a limit, and "orged" (orged@acme.io), an org editor (who manages the
// org's members) whose editor role on acme/web is limited to "sales" too.
func setupLimited(t *testing.T) *env {
	t.Helper()
	e := setup(t)
	sales := []token.ResourceName{{Kind: token.KindExplore, Name: "sales"}}
	for _, u := range []store.User{
		{ID: "u-limited", Email: "limited@acme.io", ProjectRoles: map[string]policy.Role{"acme/web": policy.Editor},
			Restricted: map[string]store.Restricted{"acme/web": {Resources: sales}}},
		{ID: "u-peer", Email: "peer@acme.io", ProjectRoles: map[string]policy.Role{"acme/web": policy.Editor},
			Restricted: map[string]store.Restricted{"acme/web": {Resources: sales}}},
		{ID: "u-free", Email: "free@acme.io", ProjectRoles: map[string]policy.Role{"acme/web": policy.Viewer}},
		{ID: "u-orged", Email: "orged@acme.io", OrgRoles: map[string]policy.Role{"acme": policy.Editor}, ProjectRoles: map[string]policy.Role{"acme/web": policy.Editor},
			Restricted: map[string]store.Restricted{"acme/web": {Resources: sales}}},
	} {
		if u.OrgRoles == nil {
			u.OrgRoles = map[string]policy.Role{"acme": policy.Guest}
		}
		if err := e.st.CreateUser(context.Background(), u); err != nil {
			t.Fatal(err)
		}
		e.issue(t, strings.TrimPrefix(u.ID, "u-"), token.User, u.ID, "t")
	}
	return e
}

// limitOf is the stored limit of a user on acme/web (nil, false: none).
func (e *env) limitOf(t *testing.T, id string) ([]token.ResourceName, bool) {
	t.Helper()
	u, err := e.st.GetUser(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	r, ok := u.Restricted["acme/web"]
	return r.Resources, ok
}

// TestLimitedMemberCannotWidenLimits (third red team): an editor limited to some resources
// lifted their own limit with DELETE …/users/{self}/resources (200). Nobody changes their own
// limit; a limited member limits others only within their own limit and lifts no one's; an
// unlimited manager still sets and lifts limits. A refusal is a 403 that changes nothing.
func TestLimitedMemberCannotWidenLimits(t *testing.T) {
	e := setupLimited(t)
	const path = "/v1/orgs/acme/projects/web/users/"
	sales := []token.ResourceName{{Kind: token.KindExplore, Name: "sales"}}
	for _, c := range []struct {
		name, who, method, email, body string
		code                           int
		want                           string // in the refusal
	}{
		{"lift their own", "limited", "DELETE", "limited@acme.io", "", 403, "own resource limit"},
		{"lift their own, e-mail in capitals", "limited", "DELETE", "LIMITED@acme.io", "", 403, "own resource limit"},
		{"widen their own", "limited", "PUT", "limited@acme.io", `{"resources":[{"type":"explore","name":"sales"},{"type":"explore","name":"secret"}]}`, 403, "own resource limit"},
		{"lift a peer's", "limited", "DELETE", "peer@acme.io", "", 403, "cannot lift"},
		{"PUT without resources lifts too", "limited", "PUT", "peer@acme.io", `{}`, 403, "cannot lift"},
		{"widen a peer's", "limited", "PUT", "peer@acme.io", `{"resources":[{"type":"explore","name":"secret"}]}`, 403, `"secret", which is outside`},
		{"a canvas of the same name is another resource", "limited", "PUT", "peer@acme.io", `{"resources":[{"type":"canvas","name":"sales"}]}`, 403, "outside"},
		{"limit an unlimited member past their own", "limited", "PUT", "free@acme.io", `{"resources":[{"type":"explore","name":"secret"}]}`, 403, "outside"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, apiErr, _ := e.call(t, c.who, c.method, path+c.email+"/resources", c.body)
			if code != c.code || !strings.Contains(apiErr.Message, c.want) {
				t.Errorf("%d %q, want %d with %q", code, apiErr.Message, c.code, c.want)
			}
		})
	}
	for _, id := range []string{"u-limited", "u-peer"} {
		if got, ok := e.limitOf(t, id); !ok || !reflect.DeepEqual(got, sales) {
			t.Errorf("%s's limit after refusals: %v %v, want sales", id, got, ok)
		}
	}
	if _, ok := e.limitOf(t, "u-free"); ok {
		t.Error("a refused request limited free@acme.io")
	}
	// Within the limit: a limited member limits others to what they hold, or to nothing.
	if code, apiErr, _ := e.call(t, "limited", "PUT", path+"free@acme.io/resources", `{"resources":[{"type":"explore","name":"sales"}]}`); code != 200 {
		t.Fatalf("limit free to sales: %d %q, want 200", code, apiErr.Message)
	}
	if code, apiErr, _ := e.call(t, "limited", "PUT", path+"peer@acme.io/resources", `{"restrict_resources":true}`); code != 200 {
		t.Fatalf("limit peer to nothing: %d %q, want 200", code, apiErr.Message)
	}
	// An unlimited manager (the org admin) still lifts limits, a superuser too.
	for _, c := range []struct{ who, email string }{{"admin", "limited@acme.io"}, {"su", "peer@acme.io"}} {
		if code, apiErr, _ := e.call(t, c.who, "DELETE", path+c.email+"/resources", ""); code != 200 {
			t.Fatalf("%s lifts %s's limit: %d %q, want 200", c.who, c.email, code, apiErr.Message)
		}
	}
	if _, ok := e.limitOf(t, "u-limited"); ok {
		t.Error("the org admin's DELETE left the limit")
	}
}

// TestLimitedMemberSharesWithinLimit (third red team): the same limited editor issued a public
// URL for a resource outside their limit, sharing what they could not see. A limited member
// shares only resources within their limit (filters and fields, which only narrow, as they
// like); an unlimited one shares any.
func TestLimitedMemberSharesWithinLimit(t *testing.T) {
	e := setupLimited(t)
	const path = "/v1/orgs/acme/projects/web/tokens/magic"
	filter := `{"cond":{"op":"OPERATION_EQ","exprs":[{"ident":"country"},{"val":"DK"}]}}`
	for _, c := range []struct {
		name, who, body string
		code            int
	}{
		{"outside the limit", "limited", `{"resources":[{"type":"explore","name":"secret"}]}`, 403},
		{"inside and outside", "limited", `{"resources":[{"type":"explore","name":"sales"},{"type":"canvas","name":"board"}]}`, 403},
		{"a canvas of the limit's name", "limited", `{"resources":[{"type":"canvas","name":"sales"}]}`, 403},
		{"within, with a filter and fields", "limited", `{"resources":[{"type":"explore","name":"sales"}],"metrics_view_filters":{"mv":` + filter + `},"fields":["country"]}`, 201},
		{"no resources (deny-all)", "limited", `{}`, 201},
		{"an unlimited editor, anything", "admin", `{"resources":[{"type":"explore","name":"secret"}]}`, 201},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, apiErr, _ := e.call(t, c.who, "POST", path, c.body)
			if code != c.code || code == 403 && !strings.Contains(apiErr.Message, "outside that limit") {
				t.Errorf("%d %q, want %d", code, apiErr.Message, c.code)
			}
		})
	}
	toks, err := e.st.ListTokens(context.Background(), store.MagicOwner("acme", "web"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range toks {
		if tk.Magic != nil && tk.Magic.CreatedByUserID == "u-limited" {
			for _, r := range tk.Magic.Resources {
				if r.Name != "sales" || r.Kind != token.KindExplore {
					t.Errorf("limited@acme.io holds a public URL of %v", r)
				}
			}
		}
	}
	if n := len(toks); n != 3 {
		t.Errorf("%d public URLs stored, want the 3 allowed", n)
	}
}

// TestLimitedMemberCannotLiftLimitsThroughRoles: removing a project role drops its limit and a
// role given again has none, so a limited org editor could lift their own limit with two role
// changes, or give someone an unlimited role. A member limited on the project changes no role of
// their own there, and gives a role there only to someone limited within their limit; taking a
// role away, and everything an unlimited admin does, stays allowed.
func TestLimitedMemberCannotLiftLimitsThroughRoles(t *testing.T) {
	e := setupLimited(t)
	for _, c := range []struct {
		name, who, email, body string
		code                   int
	}{
		{"remove their own project role", "orged", "orged@acme.io", `{"org":"acme","project":"web","remove":true}`, 403},
		{"change their own project role", "orged", "orged@acme.io", `{"org":"acme","project":"web","project_role":"viewer"}`, 403},
		{"leave the org (an org admin without a project role is not limited)", "orged", "orged@acme.io", `{"org":"acme","remove":true}`, 403},
		{"give an unlimited member a role", "orged", "free@acme.io", `{"org":"acme","project":"web","project_role":"editor"}`, 403},
		{"give a new member a role (unlimited)", "orged", "editor@acme.io", `{"org":"acme","project":"web","project_role":"viewer"}`, 403},
		{"change a role of a member limited within theirs", "orged", "peer@acme.io", `{"org":"acme","project":"web","project_role":"viewer"}`, 200},
		{"take an unlimited member's role away", "orged", "free@acme.io", `{"org":"acme","project":"web","remove":true}`, 200},
		{"the org admin gives an unlimited role", "admin", "free@acme.io", `{"org":"acme","project":"web","project_role":"editor"}`, 200},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, apiErr, _ := e.call(t, c.who, "PUT", "/v1/users/"+c.email+"/roles", c.body)
			if code != c.code || code == 403 && !strings.Contains(apiErr.Message, "limited to some resources") {
				t.Errorf("%d %q, want %d", code, apiErr.Message, c.code)
			}
		})
	}
	if got, ok := e.limitOf(t, "u-orged"); !ok || len(got) != 1 || got[0].Name != "sales" {
		t.Errorf("orged's limit after the refusals: %v %v, want sales", got, ok)
	}
}
