package adminapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// TestSigninRulesAPI: an org's sign-in rules are read and replaced by its admins (users and
// services with manage_org) and superusers, by no one else; bad rules are a 400 naming the rule
// and change nothing; a domain rule is added by an org admin only for their own email's domain
// (a service: none), by a superuser for any; a PUT is audited with the rules.
func TestSigninRulesAPI(t *testing.T) {
	e := setup(t)
	const path = "/v1/orgs/acme/signin-rules"
	const good = `{"domains":[{"domain":"Acme.IO","org_role":"viewer"}],"groups":[{"group":"eng","org_role":"editor","attribute_groups":["engineering","data"]}]}`
	for _, tc := range []struct {
		who, method, body string
		want              int
		msg               string
	}{
		{"admin", "GET", "", 200, ""},
		{"su", "GET", "", 200, ""},
		{"svc-admin", "GET", "", 200, ""},
		{"editor", "GET", "", 403, "lacks manage_org"},
		{"viewer", "GET", "", 403, "lacks manage_org"},
		{"outsider", "GET", "", 403, "lacks manage_org"},
		{"", "GET", "", 401, ""},
		{"editor", "PUT", good, 403, "lacks manage_org"},
		{"viewer", "PUT", good, 403, "lacks manage_org"},
		{"svc-viewer", "PUT", good, 403, "lacks manage_org"},
		{"admin", "PUT", `{"domains":[{"domain":"admin@acme.io","org_role":"viewer"}]}`, 400, "holds an @"},
		{"admin", "PUT", `{"domains":[{"domain":"*.acme.io","org_role":"viewer"}]}`, 400, "is not a domain name"},
		{"admin", "PUT", `{"domains":[{"domain":"acme.io","org_role":"owner"}]}`, 400, `org_role "owner" is not an org role`},
		{"admin", "PUT", `{"groups":[{"group":"eng","org_role":""}]}`, 400, "is not an org role"},
		{"admin", "PUT", `{"groups":[{"group":"eng\u0000x","org_role":"viewer"}]}`, 400, "NUL"},
		{"admin", "PUT", `{"groups":[{"group":"` + strings.Repeat("g", 300) + `","org_role":"viewer"}]}`, 400, "longer than"},
		{"admin", "PUT", `{"groups":[{"group":"eng","org_role":"viewer","attribute_groups":"eng"}]}`, 400, ""},
		{"admin", "PUT", `{"domain":[]}`, 400, "unknown"},
		{"admin", "PUT", ``, 400, ""},
		{"admin", "PUT", `{"domains":[{"domain":"globex.io","org_role":"viewer"}]}`, 403, "only for the domain of their own email"},
		{"svc-admin", "PUT", good, 403, "only for the domain of their own email"},
		{"admin", "PUT", good, 200, ""},
		{"svc-admin", "PUT", `{"domains":[{"domain":"acme.io","org_role":"viewer"}]}`, 200, ""}, // kept, not added
		{"su", "PUT", `{"domains":[{"domain":"globex.io","org_role":"guest"}]}`, 200, ""},
		// A superuser's rule for another domain is kept (or lowered) by an admin, never raised.
		{"admin", "PUT", `{"domains":[{"domain":"globex.io","org_role":"admin"}]}`, 403, "(or raise its role) only for the domain of their own email"},
		{"svc-admin", "PUT", `{"domains":[{"domain":"globex.io","org_role":"viewer"}]}`, 403, "only for the domain of their own email"},
		{"admin", "PUT", `{"domains":[{"domain":"globex.io","org_role":"guest"}]}`, 200, ""},
		{"su", "PUT", `{"domains":[{"domain":"gmail.com","org_role":"guest"}]}`, 200, ""},
		{"admin", "PUT", `{"domains":[{"domain":"gmail.com","org_role":"admin"}]}`, 403, "only a superuser may add it or raise its role"},
		{"admin", "PUT", good, 200, ""},
	} {
		before, _ := e.st.GetOrg(context.Background(), "acme")
		code, apiErr, _ := e.call(t, tc.who, tc.method, path, tc.body)
		if code != tc.want || !strings.Contains(apiErr.Message, tc.msg) {
			t.Errorf("%s %s %.60s: %d %q, want %d %q", tc.who, tc.method, tc.body, code, apiErr.Message, tc.want, tc.msg)
		}
		if after, _ := e.st.GetOrg(context.Background(), "acme"); tc.want != 200 && !reflect.DeepEqual(after.SigninRules, before.SigninRules) {
			t.Errorf("a refused %s changed the rules to %+v", tc.method, after.SigninRules)
		}
	}
	code, _, b := e.call(t, "admin", "GET", path, "")
	var got apiv1.SigninRules
	want := apiv1.SigninRules{Domains: []apiv1.SigninDomainRule{{Domain: "acme.io", OrgRole: "viewer"}},
		Groups: []apiv1.SigninGroupRule{{Group: "eng", OrgRole: "editor", AttributeGroups: []string{"data", "engineering"}}}}
	if err := json.Unmarshal(b, &got); code != 200 || err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("GET after PUT: %d %s", code, b)
	}
	// Another org's are its own, the lists present and empty.
	if code, _, b := e.call(t, "su", "GET", "/v1/orgs/other/signin-rules", ""); code != 200 || strings.Join(strings.Fields(string(b)), "") != `{"domains":[],"groups":[]}` {
		t.Errorf("GET of another org: %d %s", code, b)
	}
	if code, _, _ := e.call(t, "su", "GET", "/v1/orgs/nope/signin-rules", ""); code != 404 {
		t.Errorf("GET of an unknown org: %d", code)
	}
	evs, err := e.st.ListAudit(context.Background(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var sets, denied int
	for _, ev := range evs {
		if ev.Action != "org.signin_rules" {
			continue
		}
		switch {
		case ev.Outcome == "ok" && strings.HasPrefix(ev.Target, "org:acme domains:"):
			sets++
		case strings.HasPrefix(ev.Outcome, "denied: "):
			denied++
		}
	}
	if sets != 6 || denied < 8 {
		t.Errorf("audit: %d sets and %d denials of org.signin_rules, want 6 and at least 8", sets, denied)
	}
}

// TestSigninRulesPublicDomainOfOwnEmail: an org admin whose own address is at a public email
// domain (not only gmail.com: its national variants and other large free providers) may not
// add it: everyone there would be admitted.
func TestSigninRulesPublicDomainOfOwnEmail(t *testing.T) {
	e := setup(t)
	for i, domain := range []string{"gmail.com", "hotmail.co.uk", "yahoo.fr", "outlook.de", "gmx.at", "t-online.de", "comcast.net"} {
		name := fmt.Sprintf("free%d", i)
		u := store.User{ID: "u-" + name, Email: "boss@" + domain, OrgRoles: map[string]policy.Role{"acme": policy.Admin}}
		if err := e.st.CreateUser(context.Background(), u); err != nil {
			t.Fatal(err)
		}
		tok, err := token.New(token.User)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.st.CreateToken(context.Background(), store.NewToken(tok, u.ID, "t", "", time.Now(), 0)); err != nil {
			t.Fatal(err)
		}
		e.tokens[name] = tok.Encode()
		code, apiErr, _ := e.call(t, name, "PUT", "/v1/orgs/acme/signin-rules", `{"domains":[{"domain":"`+domain+`","org_role":"guest"}]}`)
		if code != 403 || !strings.Contains(apiErr.Message, "is a public email domain") {
			t.Errorf("an admin at %s adding it: %d %q, want 403", domain, code, apiErr.Message)
		}
	}
}

// TestSigninRulesJoinExisting: a domain rule a PUT adds brings the existing users at the domain
// who are not members yet into the org with its role (Rill's CreateWhitelistedDomain), each
// join audited user.provision; a domain kept by a later PUT adds no one, so a member removed
// since stays removed; members keep their role.
func TestSigninRulesJoinExisting(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	put := func(body string) apiv1.SigninRules {
		t.Helper()
		code, apiErr, b := e.call(t, "su", "PUT", "/v1/orgs/other/signin-rules", body)
		var out apiv1.SigninRules
		if err := json.Unmarshal(b, &out); code != 200 || err != nil {
			t.Fatalf("PUT %s: %d %q", body, code, apiErr.Message)
		}
		return out
	}
	out := put(`{"domains":[{"domain":"acme.io","org_role":"guest"},{"domain":"else.io","org_role":"viewer"}]}`)
	want := []string{"admin@acme.io", "editor@acme.io", "out@else.io", "viewer@acme.io"}
	if !reflect.DeepEqual(out.JoinedUsers, want) {
		t.Fatalf("joined %v, want %v", out.JoinedUsers, want)
	}
	for email, role := range map[string]string{"admin@acme.io": "guest", "out@else.io": "viewer", "viewer@acme.io": "guest"} {
		u, err := e.st.GetUserByEmail(ctx, email)
		if err != nil || string(u.OrgRoles["other"]) != role {
			t.Errorf("%s in other: %q (%v), want %s", email, u.OrgRoles["other"], err, role)
		}
		if email == "admin@acme.io" && u.OrgRoles["acme"] != "admin" {
			t.Errorf("joining other changed %s's role in acme to %q", email, u.OrgRoles["acme"])
		}
	}
	if u, _ := e.st.GetUserByEmail(ctx, "root@x.io"); u.Member("other") {
		t.Error("a user at no rule's domain joined")
	}
	evs, _ := e.st.ListAudit(ctx, store.AuditFilter{})
	n := 0
	for _, ev := range evs {
		if ev.Action == "user.provision" && ev.Actor == "user:root@x.io" && strings.HasPrefix(ev.Detail, "domain rule ") && strings.Contains(ev.Detail, "joined org other as ") {
			n++
		}
	}
	if n != 4 {
		t.Errorf("%d user.provision events, want 4", n)
	}

	// An admin removes a member; the same domains again add no one.
	v, _ := e.st.GetUserByEmail(ctx, "viewer@acme.io")
	if _, err := e.st.UpdateUser(ctx, v.ID, func(u *store.User) error { delete(u.OrgRoles, "other"); return nil }); err != nil {
		t.Fatal(err)
	}
	if out := put(`{"domains":[{"domain":"acme.io","org_role":"editor"},{"domain":"else.io","org_role":"viewer"}]}`); len(out.JoinedUsers) != 0 {
		t.Errorf("kept domains joined %v", out.JoinedUsers)
	}
	if u, _ := e.st.GetUserByEmail(ctx, "viewer@acme.io"); u.Member("other") {
		t.Error("a member removed by an admin was added again by a kept domain")
	}
	if u, _ := e.st.GetUserByEmail(ctx, "editor@acme.io"); u.OrgRoles["other"] != "guest" {
		t.Errorf("a changed domain role changed a member's role to %q", u.OrgRoles["other"])
	}
}
