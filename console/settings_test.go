package console_test

import (
	"context"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
)

// TestSigninRulesInConsole: an org admin sees the org's sign-in rules on Org settings and
// edits them there (the API's PUT, audited via ui); a malformed line and a rule the API refuses
// come back on the field with what was typed kept, the rules unchanged; a domain the admin may
// not add is said on the field; a viewer has no Org settings in the menu and gets 403 from the
// page and the form.
func TestSigninRulesInConsole(t *testing.T) {
	e := setup(t, false)
	ctx := context.Background()
	a := e.browser(t)
	a.signIn(e.tokens["admin"])
	r := a.get("/ui/settings?org=acme")
	if r.code != 200 || !strings.Contains(r.body, "No domain rules") || !strings.Contains(r.body, "No group rules") || !strings.Contains(r.body, `href="/ui/settings"`) {
		t.Fatalf("settings with no rules: %d\n%s", r.code, r.body)
	}
	save := func(domains, groups string) resp {
		r := a.post("/ui/settings/signin-rules", url.Values{"org": {"acme"}, "domains": {domains}, "groups": {groups}})
		if r.code != http.StatusSeeOther {
			t.Fatalf("save: %d %s", r.code, r.body)
		}
		return a.get(r.h.Get("Location"))
	}
	page := save("# our domain\nAcme.io = viewer\n\n", "eng = editor : engineering, data\nCN=Admins,OU=Groups = admin\n")
	for _, w := range []string{"Sign-in rules of acme saved: 1 domain and 2 group rule(s).", "<td>acme.io</td><td>viewer</td>",
		"<td>eng</td><td>editor</td><td>data, engineering</td>", "<td>CN=Admins,OU=Groups</td><td>admin</td><td>none</td>",
		"eng = editor : data, engineering\n", "acme.io = viewer\n"} {
		if !strings.Contains(page.body, w) {
			t.Errorf("after save the page lacks %q:\n%s", w, page.body)
		}
	}
	want := store.SigninRules{Domains: []store.DomainRule{{Domain: "acme.io", OrgRole: policy.Viewer}},
		Groups: []store.GroupRule{{Group: "eng", OrgRole: policy.Editor, AttributeGroups: []string{"data", "engineering"}}, {Group: "CN=Admins,OU=Groups", OrgRole: policy.Admin}}}
	o, err := e.st.GetOrg(ctx, "acme")
	if err != nil || !reflect.DeepEqual(o.SigninRules, want) {
		t.Fatalf("stored rules %+v (%v), want %+v", o.SigninRules, err, want)
	}

	for _, tc := range []struct{ domains, groups, want, field string }{
		{"acme.io", "", "domain rules, line 1 (&#34;acme.io&#34;): want DOMAIN = ROLE", "domains"},
		{"acme.io = viewer", "eng", "group rules, line 1 (&#34;eng&#34;): want GROUP = ROLE", "groups"},
		{"ann@acme.io = viewer", "", "holds an @", "domains"},
		{"acme.io = owner", "", "org_role &#34;owner&#34; is not an org role", "domains"},
		{"acme.io = viewer", "eng = root", "org_role &#34;root&#34; is not an org role", "groups"},
		{"globex.io = viewer", "", "only for the domain of their own email", "domains"},
	} {
		page := save(tc.domains, tc.groups)
		if !strings.Contains(page.body, `id="`+tc.field+`-err" class="field-error" role="alert">⚠ `) || !strings.Contains(page.body, tc.want) {
			t.Errorf("save %q %q: the page lacks %q on %s:\n%s", tc.domains, tc.groups, tc.want, tc.field, page.body)
		}
		if !strings.Contains(page.body, ">"+tc.domains+"</textarea>") {
			t.Errorf("save %q: what was typed is not kept", tc.domains)
		}
		if o, _ := e.st.GetOrg(ctx, "acme"); !reflect.DeepEqual(o.SigninRules, want) {
			t.Errorf("a refused save changed the rules to %+v", o.SigninRules)
		}
	}
	if page := save("", ""); !strings.Contains(page.body, "saved: 0 domain and 0 group rule(s)") {
		t.Errorf("clearing:\n%s", page.body)
	}
	evs, _ := e.st.ListAudit(ctx, store.AuditFilter{Actor: "user:admin@acme.io"})
	n := 0
	for _, ev := range evs {
		if ev.Action == "org.signin_rules" && ev.Outcome == "ok" && strings.Contains(ev.Detail, "via: ui") {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d audited saves via ui, want 2: %+v", n, evs)
	}

	v := e.browser(t)
	v.signIn(e.tokens["viewer"])
	if r := v.get("/ui/tokens"); strings.Contains(r.body, `href="/ui/settings"`) {
		t.Error("a viewer's menu offers Org settings")
	}
	if r := v.get("/ui/settings?org=acme"); r.code != http.StatusForbidden {
		t.Errorf("a viewer's settings page: %d", r.code)
	}
	if r := v.post("/ui/settings/signin-rules", url.Values{"org": {"acme"}, "domains": {"acme.io = admin"}}); r.code != http.StatusForbidden {
		t.Errorf("a viewer's save: %d %s", r.code, r.body)
	}
	if o, _ := e.st.GetOrg(ctx, "acme"); !o.SigninRules.IsZero() {
		t.Errorf("a viewer changed the rules: %+v", o.SigninRules)
	}
}

// TestMembersShowRulesMemberships: Members marks a membership the sign-in rules manage, and not
// one an admin changed since the rules gave it.
func TestMembersShowRulesMemberships(t *testing.T) {
	e := setup(t, false)
	ctx := context.Background()
	pv := &store.Provisioned{Role: policy.Editor, Groups: []string{"engineering"}, Provider: "okta"}
	for id, role := range map[string]policy.Role{"u-ruled": policy.Editor, "u-changed": policy.Viewer} {
		u := store.User{ID: id, Email: strings.TrimPrefix(id, "u-") + "@acme.io", OrgRoles: map[string]policy.Role{"acme": role},
			Orgs: map[string]store.UserOrg{"acme": {Groups: []string{"engineering"}, Provisioned: pv}}}
		if err := e.st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	a := e.browser(t)
	a.signIn(e.tokens["admin"])
	body := a.get("/ui/members?org=acme").body
	row := func(email string) string {
		_, after, _ := strings.Cut(body, "<td>"+email)
		r, _, _ := strings.Cut(after, "</tr>")
		return r
	}
	if r := row("ruled@acme.io"); !strings.Contains(r, "editor <span class=\"badge\" title=\"Given by a group rule at sign-in through okta") {
		t.Errorf("the rules' member is not marked:\n%s", r)
	}
	if r := row("changed@acme.io"); strings.Contains(r, "by sign-in rules") || !strings.Contains(r, "viewer") {
		t.Errorf("a member an admin changed is marked as the rules':\n%s", r)
	}
}

// TestSigninRulesNotAsText: rules the page's text cannot say (set with rillctl --file or the
// API: an attribute group holding a comma or an =, a group starting with #, which the text reads
// as a comment) are shown in the tables but not offered for editing as text, where saving the
// page unchanged would split, garble or drop them; rules the text says are offered as before.
func TestSigninRulesNotAsText(t *testing.T) {
	e := setup(t, false)
	ctx := context.Background()
	a := e.browser(t)
	a.signIn(e.tokens["admin"])
	for _, tc := range []struct {
		name  string
		rules store.SigninRules
		text  bool
	}{
		{"plain", store.SigninRules{Groups: []store.GroupRule{{Group: "CN=Admins,OU=Groups", OrgRole: policy.Admin, AttributeGroups: []string{"a:b", "data"}}}}, true},
		{"comma in an attribute group", store.SigninRules{Groups: []store.GroupRule{{Group: "eng", OrgRole: policy.Editor, AttributeGroups: []string{"R&D, Europe"}}}}, false},
		{"= in an attribute group", store.SigninRules{Groups: []store.GroupRule{{Group: "eng", OrgRole: policy.Editor, AttributeGroups: []string{"team=data"}}}}, false},
		{"group starting with #", store.SigninRules{Groups: []store.GroupRule{{Group: "#ops", OrgRole: policy.Viewer}}}, false},
	} {
		if _, err := e.st.SetSigninRules(ctx, "acme", tc.rules); err != nil {
			t.Fatal(err)
		}
		r := a.get("/ui/settings?org=acme")
		if r.code != 200 {
			t.Fatalf("%s: %d %s", tc.name, r.code, r.body)
		}
		form := strings.Contains(r.body, `id="save-rules"`)
		note := strings.Contains(r.body, `id="rules-not-text"`) && strings.Contains(r.body, "rillctl org signin-rules set --org acme --file")
		if form != tc.text || note == tc.text {
			t.Errorf("%s: form offered %v, note %v (want the form %v)\n%s", tc.name, form, note, tc.text, r.body)
		}
		if g := tc.rules.Groups[0].Group; !strings.Contains(r.body, "<td>"+g+"</td>") {
			t.Errorf("%s: the table lacks the group %q", tc.name, g)
		}
	}
}
