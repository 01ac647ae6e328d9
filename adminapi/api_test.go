package adminapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/adminapi"
	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/adminapi/client"
	"github.com/rill-authd/rill-authd/extauthz"
	"github.com/rill-authd/rill-authd/keys"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/resolver"
	"github.com/rill-authd/rill-authd/signin"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/store/badger"
	"github.com/rill-authd/rill-authd/token"
)

type env struct {
	url    string
	tokens map[string]string
	st     *badger.DB
	check  *extauthz.Server
	// rill: call sends no Accept of ours, as a client of Rill's API (Rill's shapes).
	rill bool
}

// setup serves the API over a real in-memory store on 127.0.0.1 with principals of every
// standing: a superuser, acme's admin, editor and viewer, an outsider, and two acme services.
func setup(t testing.TB) *env { return setupWith(t, nil) }

// setupWith is setup with the API's options changed by opt.
func setupWith(t testing.TB, opt func(*adminapi.Options)) *env {
	t.Helper()
	st, err := badger.Open(badger.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ring := keys.NewRing(st, keys.Options{})
	res := resolver.New(st, resolver.Options{TouchInterval: -1, Issuer: "https://authd.test", Audience: "rill-runtime", Keys: ring})
	t.Cleanup(res.Close)
	if _, err := ring.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	o := adminapi.Options{Issuer: "https://authd.test", Audience: "rill-runtime", RuntimeHost: "https://rt.test", InstanceID: "default", Keys: ring,
		Device: signin.NewDevice(st, signin.DeviceOptions{})}
	if opt != nil {
		opt(&o)
	}
	adminapi.New(st, res, o).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range []string{"acme", "other"} {
		must(st.CreateOrg(ctx, store.Org{Name: o}))
		must(st.CreateProject(ctx, store.Project{Org: o, Name: "web"}))
	}
	users := map[string]store.User{
		"su":       {Email: "root@x.io", Superuser: true},
		"admin":    {Email: "admin@acme.io", OrgRoles: map[string]policy.Role{"acme": "admin"}},
		"editor":   {Email: "editor@acme.io", OrgRoles: map[string]policy.Role{"acme": "editor"}},
		"viewer":   {Email: "viewer@acme.io", OrgRoles: map[string]policy.Role{"acme": "viewer"}, ProjectRoles: map[string]policy.Role{"acme/web": "viewer"}},
		"outsider": {Email: "out@else.io"},
	}
	e := &env{url: srv.URL, tokens: map[string]string{}, st: st, check: extauthz.New(res, extauthz.Config{})}
	issue := func(name string, k token.Kind, owner string) {
		tok, err := token.New(k)
		must(err)
		must(st.CreateToken(ctx, store.NewToken(tok, owner, name, "", time.Now(), 0)))
		e.tokens[name] = tok.Encode()
	}
	for name, u := range users {
		u.ID = "u-" + name
		must(st.CreateUser(ctx, u))
		issue(name, token.User, u.ID)
	}
	must(st.CreateService(ctx, store.Service{ID: "s-admin", Org: "acme", Name: "robot", OrgRole: "admin"}))
	issue("svc-admin", token.Service, "s-admin")
	must(st.CreateService(ctx, store.Service{ID: "s-viewer", Org: "acme", Name: "dash", ProjectRoles: map[string]policy.Role{"web": "viewer"}}))
	issue("svc-viewer", token.Service, "s-viewer")
	return e
}

func (e *env) call(t testing.TB, who, method, path, body string) (int, apiv1.Error, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, e.url+path, rd)
	if who != "" {
		req.Header.Set("Authorization", "Bearer "+e.tokens[who])
	}
	if !e.rill {
		req.Header.Set("Accept", apiv1.MediaType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var apiErr apiv1.Error
	if resp.StatusCode >= 300 {
		if err := json.Unmarshal(b, &apiErr); err != nil || apiErr.Message == "" || apiErr.Code == 0 {
			t.Errorf("%s %s: error body %q is not {code, message}", method, path, b)
		}
	}
	return resp.StatusCode, apiErr, b
}

// TestWhoMayDoWhat checks every rule from the allowed and the denied side.
func TestWhoMayDoWhat(t *testing.T) {
	e := setup(t)
	tests := []struct {
		name, who, method, path, body string
		want                          int
	}{
		{"superuser creates an org", "su", "POST", "/v1/orgs", `{"name":"neworg"}`, 201},
		{"org admin cannot create orgs", "admin", "POST", "/v1/orgs", `{"name":"neworg2"}`, 403},
		{"service cannot create orgs", "svc-admin", "POST", "/v1/orgs", `{"name":"neworg3"}`, 403},

		{"org admin creates a project", "admin", "POST", "/v1/orgs/acme/projects", `{"name":"p1"}`, 201},
		{"org editor creates a project (create_projects)", "editor", "POST", "/v1/orgs/acme/projects", `{"name":"p2"}`, 201},
		{"viewer cannot create projects", "viewer", "POST", "/v1/orgs/acme/projects", `{"name":"p3"}`, 403},
		{"outsider cannot create projects", "outsider", "POST", "/v1/orgs/acme/projects", `{"name":"p4"}`, 403},
		{"admin of acme has nothing in other", "admin", "POST", "/v1/orgs/other/projects", `{"name":"p5"}`, 403},

		{"org admin creates a service", "admin", "POST", "/v1/orgs/acme/services", `{"name":"s1","org_role":"viewer"}`, 201},
		{"org admin service creates a service in its org", "svc-admin", "POST", "/v1/orgs/acme/services", `{"name":"s2","org_role":"admin"}`, 201},
		{"a service sees only its own org", "svc-admin", "POST", "/v1/orgs/other/services", `{"name":"s3","org_role":"viewer"}`, 403},
		{"a service lists only its own org's services", "svc-admin", "GET", "/v1/orgs/other/services", "", 403},
		{"editor cannot manage services", "editor", "POST", "/v1/orgs/acme/services", `{"name":"s4","org_role":"viewer"}`, 403},
		{"project viewer service cannot manage services", "svc-viewer", "GET", "/v1/orgs/acme/services", "", 403},
		{"viewer cannot list services", "viewer", "GET", "/v1/orgs/acme/services", "", 403},

		{"editor adds a member at most editor", "editor", "POST", "/v1/users", `{"email":"a@acme.io","org":"acme","org_role":"editor"}`, 201},
		{"editor cannot make an org admin", "editor", "POST", "/v1/users", `{"email":"b@acme.io","org":"acme","org_role":"admin"}`, 403},
		{"editor cannot grant a project role above their own (none)", "editor", "POST", "/v1/users", `{"email":"c@acme.io","org":"acme","project":"web","project_role":"viewer"}`, 403},
		{"org admin grants a project admin", "admin", "POST", "/v1/users", `{"email":"d@acme.io","org":"acme","project":"web","project_role":"admin"}`, 201},
		{"viewer cannot add members", "viewer", "POST", "/v1/users", `{"email":"e@acme.io","org":"acme","org_role":"viewer"}`, 403},
		{"only superusers create users outside an org", "admin", "POST", "/v1/users", `{"email":"f@acme.io"}`, 403},
		{"editor cannot demote the org admin", "editor", "PUT", "/v1/users/admin@acme.io/roles", `{"org":"acme","org_role":"viewer"}`, 403},
		{"admin sets a member's role", "admin", "PUT", "/v1/users/viewer@acme.io/roles", `{"org":"acme","org_role":"editor"}`, 200},
		{"only superusers delete users", "admin", "DELETE", "/v1/users/a@acme.io", "", 403},
		{"superuser deletes a user", "su", "DELETE", "/v1/users/a@acme.io", "", 200},

		{"a user issues their own token", "viewer", "POST", "/v1/tokens", `{"display_name":"mine","ttl_minutes":60}`, 201},
		{"a user cannot issue for another", "viewer", "POST", "/v1/tokens", `{"display_name":"x","user_email":"admin@acme.io"}`, 403},
		{"a user cannot list another's tokens", "admin", "GET", "/v1/tokens?user_email=viewer@acme.io", "", 403},
		{"superuser lists another's tokens", "su", "GET", "/v1/tokens?user_email=viewer@acme.io", "", 200},
		{"a service cannot issue user tokens", "svc-admin", "POST", "/v1/tokens", `{"display_name":"x"}`, 403},
		{"audit is for superusers", "admin", "GET", "/v1/audit", "", 403},
		{"superuser reads the audit log", "su", "GET", "/v1/audit", "", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, apiErr, _ := e.call(t, tc.who, tc.method, tc.path, tc.body)
			if code != tc.want {
				t.Fatalf("status %d, want %d (%s)", code, tc.want, apiErr.Message)
			}
		})
	}
	// A user can revoke only their own tokens: another's id is simply not found.
	code, _, body := e.call(t, "su", "GET", "/v1/tokens?user_email=admin@acme.io", "")
	var adminToks []apiv1.TokenInfo
	if code != 200 || json.Unmarshal(body, &adminToks) != nil || len(adminToks) != 1 {
		t.Fatalf("admin's tokens: %d %s", code, body)
	}
	if code, _, _ := e.call(t, "viewer", "DELETE", "/v1/tokens/"+adminToks[0].ID, ""); code != 404 {
		t.Errorf("viewer revoking admin's token: %d, want 404", code)
	}
	if code, _, _ := e.call(t, "admin", "GET", "/v1/whoami", ""); code != 200 {
		t.Errorf("admin's token was revoked by someone else: %d", code)
	}
	// A service lists only its own org.
	_, _, body = e.call(t, "svc-admin", "GET", "/v1/orgs", "")
	var orgs []apiv1.Org
	if json.Unmarshal(body, &orgs) != nil || len(orgs) != 1 || orgs[0].Name != "acme" {
		t.Errorf("service sees orgs %s", body)
	}
}

// TestBadInput sends malformed, mistyped, oversized and unauthenticated requests: each gets a 4xx
// naming the problem, never a 500.
func TestBadInput(t *testing.T) {
	e := setup(t)
	tests := []struct {
		name, who, method, path, body string
		want                          int
		msg                           string
	}{
		{"no token", "", "GET", "/v1/whoami", "", 401, "missing bearer token"},
		{"bad JSON", "su", "POST", "/v1/orgs", `{"name":`, 400, "not valid JSON"},
		{"empty body", "su", "POST", "/v1/orgs", "", 400, "request body is empty"},
		{"wrong type", "su", "POST", "/v1/orgs", `{"name":5}`, 400, `field "name" must be a string`},
		{"unknown field", "su", "POST", "/v1/orgs", `{"nme":"x"}`, 400, `unknown field "nme"`},
		{"trailing data", "su", "POST", "/v1/orgs", `{"name":"x"} {}`, 400, "data after the JSON object"},
		{"bad org name", "su", "POST", "/v1/orgs", `{"name":"Not A Slug"}`, 400, `name "Not A Slug" is invalid`},
		{"missing name", "su", "POST", "/v1/orgs", `{}`, 400, "name is required"},
		{"duplicate org", "su", "POST", "/v1/orgs", `{"name":"acme"}`, 409, `org "acme" already exists`},
		{"bad org role", "su", "POST", "/v1/orgs/acme/services", `{"name":"x","org_role":"boss"}`, 400, `org_role "boss" is invalid`},
		{"project role without project", "su", "POST", "/v1/orgs/acme/services", `{"name":"x","project_role":"viewer"}`, 400, "project and project_role go together"},
		{"no role", "su", "POST", "/v1/orgs/acme/services", `{"name":"x"}`, 400, "a service needs a role"},
		{"unknown project", "su", "POST", "/v1/orgs/acme/services", `{"name":"x","project":"nope","project_role":"viewer"}`, 404, `project "nope" not found`},
		{"attributes not an object", "su", "POST", "/v1/orgs/acme/services", `{"name":"x","org_role":"viewer","attributes":[1]}`, 400, `field "attributes" must be a JSON object`},
		{"unknown org", "su", "GET", "/v1/orgs/nope/services", "", 404, `org "nope" not found`},
		{"unknown service", "su", "GET", "/v1/orgs/acme/services/nope", "", 404, `service "nope" not found`},
		{"nothing to edit", "su", "PATCH", "/v1/orgs/acme/services/robot", `{}`, 400, "nothing to change"},
		{"rename onto a taken name", "su", "PATCH", "/v1/orgs/acme/services/robot", `{"new_name":"dash"}`, 409, `service "dash" already exists`},
		{"role request asks two things", "su", "PUT", "/v1/orgs/acme/services/robot/roles", `{"org_role":"viewer","project":"web","project_role":"viewer"}`, 400, "not both"},
		{"negative ttl", "su", "POST", "/v1/tokens", `{"display_name":"x","ttl_minutes":-1}`, 400, "ttl_minutes must be 0"},
		{"no display name", "su", "POST", "/v1/tokens", `{"ttl_minutes":5}`, 400, "display_name is required"},
		{"short prefix", "su", "DELETE", "/v1/tokens/rill_usr_abc", "", 400, "too short"},
		{"bad email", "su", "POST", "/v1/users", `{"email":"nobody"}`, 400, "not an email address"},
		{"oversized body", "su", "POST", "/v1/orgs", `{"name":"` + strings.Repeat("a", adminapi.MaxBody) + `"}`, 413, "over 1048576 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, apiErr, _ := e.call(t, tc.who, tc.method, tc.path, tc.body)
			if code != tc.want || !strings.Contains(apiErr.Message, tc.msg) {
				t.Fatalf("got %d %q, want %d containing %q", code, apiErr.Message, tc.want, tc.msg)
			}
		})
	}
	// A forged token is a 401 with www-authenticate.
	req, _ := http.NewRequest("GET", e.url+"/v1/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+e.tokens["su"][:60]+"AAAAAAAAA")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("Www-Authenticate"), "invalid_token") {
		t.Errorf("forged token: %d %v", resp.StatusCode, resp.Header)
	}
}

// TestDeleteRevokesAtOnce: a service's token works until the service is deleted, and not on the
// very next request after.
func TestDeleteRevokesAtOnce(t *testing.T) {
	e := setup(t)
	c := client.New(e.url, e.tokens["su"])
	ctx := context.Background()
	created, err := c.CreateService(ctx, "acme", apiv1.ServiceRequest{Name: "ci", OrgRole: "viewer"})
	if err != nil {
		t.Fatal(err)
	}
	svc := client.New(e.url, created.Token.Token)
	if _, err := svc.Whoami(ctx); err != nil {
		t.Fatalf("fresh service token: %v", err)
	}
	extra, err := c.IssueServiceToken(ctx, "acme", "ci")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RevokeServiceToken(ctx, "acme", "ci", extra.Prefix); err != nil {
		t.Fatal(err)
	}
	if _, err := client.New(e.url, extra.Token).Whoami(ctx); err == nil || !strings.Contains(err.Error(), "token revoked") {
		t.Errorf("revoked extra token: %v", err)
	}
	if _, err := c.DeleteService(ctx, "acme", "ci"); err != nil {
		t.Fatal(err)
	}
	_, err = svc.Whoami(ctx)
	var apiErr *client.Error
	if !asError(err, &apiErr) || apiErr.Status != 401 || apiErr.Message != "token revoked" {
		t.Errorf("deleted service's token: %v", err)
	}
}

func asError(err error, target **client.Error) bool {
	e, ok := err.(*client.Error)
	if ok {
		*target = e
	}
	return ok
}

// TestEveryRefusedMutationIsAudited: a 403 on any mutation route writes one audit event with the
// route's action, whichever check in the handler refused it.
func TestEveryRefusedMutationIsAudited(t *testing.T) {
	e := setup(t)
	cases := []struct{ method, path, body, action string }{
		{"POST", "/v1/orgs", `{"name":"new"}`, "org.create"},
		{"POST", "/v1/orgs/acme/projects", `{"name":"p2"}`, "project.create"},
		{"POST", "/v1/users", `{"email":"x@y.io"}`, "user.create"},
		{"PUT", "/v1/users/editor@acme.io/roles", `{"org":"acme","org_role":"admin"}`, "user.set_role"},
		{"DELETE", "/v1/users/editor@acme.io", "", "user.delete"},
		{"POST", "/v1/orgs/acme/services", `{"name":"s","org_role":"viewer"}`, "service.create"},
		{"PATCH", "/v1/orgs/acme/services/robot", `{"new_name":"r2"}`, "service.edit"},
		{"PUT", "/v1/orgs/acme/services/robot/roles", `{"org_role":"viewer"}`, "service.set_role"},
		{"DELETE", "/v1/orgs/acme/services/robot", "", "service.delete"},
		{"POST", "/v1/orgs/acme/services/robot/tokens", "", "service.token.issue"},
		{"DELETE", "/v1/orgs/acme/services/robot/tokens/rill_svc_0123456789", "", "service.token.revoke"},
		{"POST", "/v1/tokens", `{"display_name":"x","user_email":"admin@acme.io"}`, "token.issue"},
		{"POST", "/v1/admin/signing-keys/rotate", "", "signing_key.rotate"},
		{"POST", "/v1/admin/signing-keys/k1/retire", "", "signing_key.retire"},
		{"POST", "/v1/orgs/acme/projects/web/credentials", `{"user_email":"a@b.io"}`, "credentials.issue"},
	}
	for _, c := range cases {
		before, err := e.st.ListAudit(context.Background(), store.AuditFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if code, _, _ := e.call(t, "viewer", c.method, c.path, c.body); code != http.StatusForbidden {
			t.Errorf("%s %s as a viewer: %d, want 403", c.method, c.path, code)
			continue
		}
		after, err := e.st.ListAudit(context.Background(), store.AuditFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(after) != len(before)+1 {
			t.Errorf("%s %s: %d audit events written, want 1", c.method, c.path, len(after)-len(before))
			continue
		}
		if ev := after[len(after)-1]; ev.Action != c.action || !strings.HasPrefix(ev.Outcome, "denied: ") || ev.Actor != "user:viewer@acme.io" {
			t.Errorf("%s %s: audited %+v, want action %s denied", c.method, c.path, ev, c.action)
		}
	}
}

// TestAuditNamesServiceByOrg: a service is audited as service:ORG/NAME (what audit list
// --actor takes) whether its org comes from an org role or only from project roles.
func TestAuditNamesServiceByOrg(t *testing.T) {
	e := setup(t)
	for who, actor := range map[string]string{"svc-admin": "service:acme/robot", "svc-viewer": "service:acme/dash"} {
		// A refused credentials request is audited too.
		e.call(t, who, "POST", "/v1/orgs/other/projects/web/credentials", "")
		evs, err := e.st.ListAudit(context.Background(), store.AuditFilter{Actor: actor})
		if err != nil || len(evs) != 1 || evs[0].Action != "credentials.issue" {
			t.Errorf("audit events of %s (%s): %+v %v, want one credentials.issue", actor, who, evs, err)
		}
	}
}
