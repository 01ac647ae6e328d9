package adminapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// Marker strings of what each org set for its people: a response that shows one to someone of
// the other org leaks.
const (
	victimSecret = "VICTIM-SECRET-7"
	victimGroup  = "VICTIM-GROUP-3"
	acmeSecret   = "ACME-SECRET-9"
	acmeGroup    = "ACME-GROUP-5"
)

// orgMarks is how to recognize an org's data in a response.
type orgMarks struct {
	org     string   // its name, as a JSON string or key, or the start of an "org/project" one
	markers []string // substrings only its data holds
}

var (
	victimMarks = orgMarks{"victim", []string{"VICTIM-", "vault"}}
	acmeMarks   = orgMarks{"acme", []string{"ACME-"}}
)

// setupTenants is setup's world plus a second org, victim (project vault), with its admin
// boss@victim.com ("vadmin"), acme's project admin padmin@acme.io ("padmin"), and people victim
// made members with its own groups and attributes, through the API as victim would:
// ceo@victim.com, and m-<who>@victim.com and r-<who>@victim.com for each principal of the
// matrix.
func setupTenants(t *testing.T) *env {
	t.Helper()
	e := setup(t)
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(e.st.CreateOrg(ctx, store.Org{Name: "victim"}))
	must(e.st.CreateProject(ctx, store.Project{Org: "victim", Name: "vault"}))
	must(e.st.CreateUser(ctx, store.User{ID: "u-vadmin", Email: "boss@victim.com", OrgRoles: map[string]policy.Role{"victim": policy.Admin}}))
	e.issue(t, "vadmin", token.User, "u-vadmin", "vadmin")
	must(e.st.CreateUser(ctx, store.User{ID: "u-padmin", Email: "padmin@acme.io", OrgRoles: map[string]policy.Role{"acme": policy.Guest},
		ProjectRoles: map[string]policy.Role{"acme/web": policy.Admin}}))
	e.issue(t, "padmin", token.User, "u-padmin", "padmin")
	people := []string{"ceo@victim.com"}
	for _, who := range matrixPrincipals {
		people = append(people, "m-"+who+"@victim.com", "r-"+who+"@victim.com")
	}
	for _, email := range people {
		e.victimMember(t, email)
	}
	return e
}

// victimMember makes email a member of victim (org and vault admin) with victim's groups and
// attributes, as victim's superuser would.
func (e *env) victimMember(t *testing.T, email string) {
	t.Helper()
	body := `{"email":"` + email + `","org":"victim","org_role":"admin","project":"vault","project_role":"admin",` +
		`"groups":["` + victimGroup + `"],"attributes":{"clearance":"` + victimSecret + `"}}`
	if code, apiErr, _ := e.call(t, "su", "POST", "/v1/users", body); code != http.StatusCreated {
		t.Fatalf("victim's member %s: %d %s", email, code, apiErr.Message)
	}
}

// issue stores a new token of kind for owner, as e.tokens[name].
func (e *env) issue(t *testing.T, name string, k token.Kind, owner, display string) store.Token {
	t.Helper()
	tok, err := token.New(k)
	if err != nil {
		t.Fatal(err)
	}
	rec := store.NewToken(tok, owner, display, "", time.Now(), 0)
	if err := e.st.CreateToken(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	e.tokens[name] = tok.Encode()
	return rec
}

// leaks lists what of m's org appears in a response's headers and body: its name or an
// "org/..." key or value anywhere in the JSON (keys included), or a marker, also inside any JWT
// the body carries.
func leaks(m orgMarks, hdr http.Header, body []byte) []string {
	var found []string
	var check func(s string)
	check = func(s string) {
		if s == m.org || strings.HasPrefix(s, m.org+"/") {
			found = append(found, s)
			return
		}
		for _, mk := range m.markers {
			if strings.Contains(s, mk) {
				found = append(found, s)
				return
			}
		}
		if parts := strings.Split(s, "."); len(parts) == 3 && strings.HasPrefix(s, "eyJ") {
			for _, p := range parts[:2] {
				if b, err := base64.RawURLEncoding.DecodeString(p); err == nil {
					walkJSON(b, check)
				}
			}
		}
	}
	for _, vs := range hdr {
		for _, v := range vs {
			check(v)
		}
	}
	if !walkJSON(body, check) {
		// Not JSON: the raw bytes must not hold a marker or the quoted name.
		for _, mk := range append([]string{`"` + m.org + `"`, `"` + m.org + `/`}, m.markers...) {
			if strings.Contains(string(body), mk) {
				found = append(found, mk)
			}
		}
	}
	return found
}

// walkJSON calls f on every string and object key of the JSON document b; false if b is not
// JSON.
func walkJSON(b []byte, f func(string)) bool {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return false
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			f(v)
		case []any:
			for _, x := range v {
				walk(x)
			}
		case map[string]any:
			for k, x := range v {
				f(k)
				walk(x)
			}
		}
	}
	walk(v)
	return true
}

// jwtIn finds the JWT in a credentials response (whatever its field is called) and returns its
// claims.
func jwtIn(t *testing.T, body []byte) (string, map[string]any) {
	t.Helper()
	var raw string
	walkJSON(body, func(s string) {
		if strings.HasPrefix(s, "eyJ") && strings.Count(s, ".") == 2 {
			raw = s
		}
	})
	if raw == "" {
		t.Fatalf("no JWT in %s", body)
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[1])
	var claims map[string]any
	if err != nil || json.Unmarshal(b, &claims) != nil {
		t.Fatalf("JWT payload %q: %v", b, err)
	}
	return raw, claims
}

// TestAttackEditorSetsRoleOfForeignUser: acme's editor sets a role for victim's CEO (adding an
// existing user by email is allowed, as in Rill) and must learn nothing of what victim set for
// them, neither in the answer nor in acme's member list.
func TestAttackEditorSetsRoleOfForeignUser(t *testing.T) {
	e := setupTenants(t)
	code, apiErr, body := e.call(t, "editor", "PUT", "/v1/users/ceo@victim.com/roles", `{"org":"acme","org_role":"viewer"}`)
	if code != http.StatusOK {
		t.Fatalf("set-role: %d %s", code, apiErr.Message)
	}
	if l := leaks(victimMarks, nil, body); len(l) > 0 {
		t.Errorf("acme's editor setting a role saw victim's %q in %s", l, body)
	}
	code, _, body = e.call(t, "editor", "GET", "/v1/users?org=acme", "")
	if code != http.StatusOK || !strings.Contains(string(body), `"ceo@victim.com"`) {
		t.Fatalf("acme's members: %d %s", code, body)
	}
	if l := leaks(victimMarks, nil, body); len(l) > 0 {
		t.Errorf("acme's editor listing acme saw victim's %q in %s", l, body)
	}
	// What the scan looks for is there to see for a superuser: it would have found it.
	if _, _, body := e.call(t, "su", "GET", "/v1/users?org=acme", ""); !slices.Contains(leaks(victimMarks, nil, body), victimSecret) {
		t.Errorf("the superuser does not see victim's attributes: %s", body)
	}
}

// TestAttackCredentialsForForeignUser: acme's project admin asks /credentials for a user who is
// only in victim and must get a JWT of an unknown email, not one with victim's groups and
// attributes.
func TestAttackCredentialsForForeignUser(t *testing.T) {
	e := setupTenants(t)
	code, apiErr, body := e.call(t, "padmin", "POST", "/v1/orgs/acme/projects/web/credentials", `{"user_email":"ceo@victim.com"}`)
	if code != http.StatusOK {
		t.Fatalf("credentials: %d %s", code, apiErr.Message)
	}
	raw, claims := jwtIn(t, body)
	if l := leaks(victimMarks, nil, body); len(l) > 0 {
		t.Errorf("acme's project admin got victim's %q in a JWT: %v", l, claims)
	}
	want := map[string]any{"email": "ceo@victim.com", "domain": "victim.com", "admin": false}
	if !reflect.DeepEqual(claims["attr"], want) {
		t.Errorf("attributes of a user of another org: %v, want those of an unknown email %v", claims["attr"], want)
	}
	if status, reason, attrs, _ := e.checkJWT(t, raw, "acme", "web"); status != 200 || !reflect.DeepEqual(attrs, want) {
		t.Errorf("check of that JWT: %d %s %v", status, reason, attrs)
	}
	// A member of acme gets what acme set, and only that.
	if code, apiErr, _ := e.call(t, "admin", "PUT", "/v1/users/ceo@victim.com/roles", `{"org":"acme","project":"web","project_role":"viewer"}`); code != http.StatusOK {
		t.Fatalf("acme adds victim's CEO: %d %s", code, apiErr.Message)
	}
	_, _, body = e.call(t, "padmin", "POST", "/v1/orgs/acme/projects/web/credentials", `{"user_email":"ceo@victim.com"}`)
	if _, claims := jwtIn(t, body); !reflect.DeepEqual(claims["attr"], map[string]any{"email": "ceo@victim.com", "domain": "victim.com",
		"admin": false, "name": "ceo@victim.com", "groups": []any{}}) {
		t.Errorf("attributes of the user once in acme, which set none: %v", claims["attr"])
	}
}

// TestCheckSeesTargetOrgSlice: a user in acme and victim, each of which set groups and
// attributes, is checked against each: the headers carry that org's only.
func TestCheckSeesTargetOrgSlice(t *testing.T) {
	e := setupTenants(t)
	if code, apiErr, _ := e.call(t, "admin", "POST", "/v1/users", `{"email":"ceo@victim.com","org":"acme","project":"web","project_role":"viewer",`+
		`"groups":["`+acmeGroup+`"],"attributes":{"acme_attr":"`+acmeSecret+`"}}`); code != http.StatusCreated {
		t.Fatalf("acme adds victim's CEO: %d %s", code, apiErr.Message)
	}
	u, err := e.st.GetUserByEmail(context.Background(), "ceo@victim.com")
	if err != nil {
		t.Fatal(err)
	}
	e.issue(t, "ceo", token.User, u.ID, "ceo")
	for _, tc := range []struct {
		org, project string
		want         map[string]any
		not          orgMarks
	}{
		{"acme", "web", map[string]any{"groups": []any{acmeGroup}, "acme_attr": acmeSecret, "admin": false}, victimMarks},
		{"victim", "vault", map[string]any{"groups": []any{victimGroup}, "clearance": victimSecret, "admin": true}, acmeMarks},
	} {
		status, reason, attrs, hdr := e.checkJWT(t, e.tokens["ceo"], tc.org, tc.project)
		if status != 200 {
			t.Fatalf("check on %s/%s: %d %s", tc.org, tc.project, status, reason)
		}
		for k, v := range tc.want {
			if !reflect.DeepEqual(attrs[k], v) {
				t.Errorf("check on %s: attribute %s = %v, want %v (all: %v)", tc.org, k, attrs[k], v, attrs)
			}
		}
		h := http.Header{}
		for k, v := range hdr {
			h.Set(k, v)
		}
		b, _ := json.Marshal(attrs)
		if l := leaks(tc.not, h, b); len(l) > 0 {
			t.Errorf("check on %s shows %q of %s", tc.org, l, tc.not.org)
		}
	}
}

// matrixPrincipals are who calls each admin endpoint, in the order of the wants of a matrix row:
// a superuser, acme's admin, editor and viewer, acme's admin service, victim's admin, and no
// token at all.
var matrixPrincipals = []string{"su", "admin", "editor", "viewer", "svc-admin", "vadmin", "none"}

// TestAuthorizationMatrix calls every admin endpoint as every principal and checks the status,
// and that no response (headers, body, JWTs in it) shows anything of an org other than the
// caller's: acme's principals never see victim's name, roles, projects, groups or attributes,
// victim's admin never sees acme's, a request without a token sees neither. Superusers see all.
// Placeholders in paths and bodies: {who} is the principal (so each acts on its own records),
// {svctok} and {usrtok} a token made for it to revoke, {both} a token of a user in both orgs.
func TestAuthorizationMatrix(t *testing.T) {
	e := setupTenants(t)
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// both@victim.com is in victim and in acme, each with its own groups and attributes; acme
	// has a marked member of its own, staff@acme.io, and a marked service.
	e.victimMember(t, "both@victim.com")
	for _, email := range []string{"both@victim.com", "staff@acme.io"} {
		body := `{"email":"` + email + `","org":"acme","org_role":"viewer","project":"web","project_role":"viewer",` +
			`"groups":["` + acmeGroup + `"],"attributes":{"acme_attr":"` + acmeSecret + `"}}`
		if code, apiErr, _ := e.call(t, "su", "POST", "/v1/users", body); code != http.StatusCreated {
			t.Fatalf("acme's member %s: %d %s", email, code, apiErr.Message)
		}
	}
	both, err := e.st.GetUserByEmail(ctx, "both@victim.com")
	must(err)
	e.issue(t, "both", token.User, both.ID, "both")
	must(e.st.CreateService(ctx, store.Service{ID: "s-marked", Org: "acme", Name: "marked", OrgRole: policy.Viewer,
		Attributes: map[string]any{"acme_svc": "ACME-SVC-1"}}))
	must(e.st.CreateService(ctx, store.Service{ID: "s-victim", Org: "victim", Name: "victim-robot", OrgRole: policy.Admin,
		Attributes: map[string]any{"victim_svc": "VICTIM-SVC-1"}}))
	svcTok, usrTok, mgcTok := map[string]string{}, map[string]string{}, map[string]string{}
	for _, who := range matrixPrincipals {
		mgc, err := token.New(token.Magic)
		must(err)
		rec := store.NewToken(mgc, store.MagicOwner("acme", "web"), "m-"+who, "test", time.Now(), 0)
		rec.Magic = &store.Magic{Org: "acme", Project: "web"}
		must(e.st.CreateToken(ctx, rec))
		mgcTok[who] = mgc.ID.String()
		for _, prefix := range []string{"e-", "x-"} {
			must(e.st.CreateService(ctx, store.Service{ID: "s-" + prefix + who, Org: "acme", Name: prefix + who, OrgRole: policy.Viewer}))
		}
		must(e.st.CreateUser(ctx, store.User{ID: "u-gone-" + who, Email: "gone-" + who + "@acme.io", OrgRoles: map[string]policy.Role{"acme": policy.Viewer}}))
		svcTok[who] = e.issue(t, "dash-"+who, token.Service, "s-viewer", "").ID.String()
		usrTok[who] = "00000000-0000-0000-0000-000000000000"
		if owner := "u-" + who; who != "none" && who != "svc-admin" {
			usrTok[who] = e.issue(t, "old-"+who, token.User, owner, "old").ID.String()
			e.issue(t, "bye-"+who, token.User, owner, "bye")
		}
	}

	// Wants, in the order of matrixPrincipals: su admin editor viewer svc-admin vadmin none.
	routes := []struct {
		pattern            string // as registered
		method, path, body string
		want               string
	}{
		{"GET /v1/whoami", "GET", "/v1/whoami", "", "200 200 200 200 200 200 401"},
		{"POST /v1/orgs", "POST", "/v1/orgs", `{"name":"o-{who}"}`, "201 403 403 403 403 403 401"},
		{"GET /v1/orgs", "GET", "/v1/orgs", "", "200 200 200 200 200 200 401"},
		{"POST /v1/orgs/{org}/projects", "POST", "/v1/orgs/acme/projects", `{"name":"p-{who}"}`, "201 201 201 403 201 403 401"},
		{"GET /v1/orgs/{org}/projects", "GET", "/v1/orgs/acme/projects", "", "200 200 200 200 200 403 401"},
		{"POST /v1/users", "POST", "/v1/users", `{"email":"m-{who}@victim.com","org":"acme","org_role":"viewer","groups":["ACME-GROUP-5"],` +
			`"attributes":{"acme_attr":"ACME-SECRET-9"}}`, "201 201 201 403 201 403 401"},
		{"GET /v1/users", "GET", "/v1/users?org=acme", "", "200 200 200 403 200 403 401"},
		{"PUT /v1/users/{email}/roles", "PUT", "/v1/users/r-{who}@victim.com/roles", `{"org":"acme","org_role":"viewer"}`, "200 200 200 403 200 403 401"},
		{"DELETE /v1/users/{email}", "DELETE", "/v1/users/gone-{who}@acme.io", "", "200 403 403 403 403 403 401"},
		{"POST /v1/orgs/{org}/services", "POST", "/v1/orgs/acme/services", `{"name":"s-{who}","org_role":"viewer"}`, "201 201 403 403 201 403 401"},
		{"GET /v1/orgs/{org}/services", "GET", "/v1/orgs/acme/services", "", "200 200 403 403 200 403 401"},
		{"GET /v1/orgs/{org}/services/{name}", "GET", "/v1/orgs/acme/services/marked", "", "200 200 403 403 200 403 401"},
		{"PATCH /v1/orgs/{org}/services/{name}", "PATCH", "/v1/orgs/acme/services/e-{who}", `{"attributes":{"k":"v"}}`, "200 200 403 403 200 403 401"},
		{"PUT /v1/orgs/{org}/services/{name}/roles", "PUT", "/v1/orgs/acme/services/e-{who}/roles", `{"org_role":"viewer"}`, "200 200 403 403 200 403 401"},
		{"GET /v1/orgs/{org}/token-policy", "GET", "/v1/orgs/acme/token-policy", "", "200 200 403 403 200 403 401"},
		{"PUT /v1/orgs/{org}/token-policy", "PUT", "/v1/orgs/acme/token-policy", `{}`, "200 200 403 403 200 403 401"},
		{"GET /v1/orgs/{org}/signin-rules", "GET", "/v1/orgs/acme/signin-rules", "", "200 200 403 403 200 403 401"},
		{"PUT /v1/orgs/{org}/signin-rules", "PUT", "/v1/orgs/acme/signin-rules", `{"groups":[{"group":"g-{who}","org_role":"viewer"}]}`, "200 200 403 403 200 403 401"},
		{"DELETE /v1/orgs/{org}/services/{name}", "DELETE", "/v1/orgs/acme/services/x-{who}", "", "200 200 403 403 200 403 401"},
		{"POST /v1/orgs/{org}/services/{name}/tokens", "POST", "/v1/orgs/acme/services/dash/tokens", "", "201 201 403 403 201 403 401"},
		{"GET /v1/orgs/{org}/services/{name}/tokens", "GET", "/v1/orgs/acme/services/dash/tokens", "", "200 200 403 403 200 403 401"},
		{"PATCH /v1/orgs/{org}/services/{name}/tokens/{ref}", "PATCH", "/v1/orgs/acme/services/dash/tokens/{svctok}", `{"allowed_networks":["127.0.0.0/8"]}`, "200 200 403 403 200 403 401"},
		{"DELETE /v1/orgs/{org}/services/{name}/tokens/{ref}", "DELETE", "/v1/orgs/acme/services/dash/tokens/{svctok}", "", "200 200 403 403 200 403 401"},
		{"POST /v1/tokens", "POST", "/v1/tokens", `{"display_name":"mine"}`, "201 201 201 201 403 201 401"},
		{"GET /v1/tokens", "GET", "/v1/tokens", "", "200 200 200 200 403 200 401"},
		{"PATCH /v1/tokens/{ref}", "PATCH", "/v1/tokens/{usrtok}", `{"allowed_networks":["127.0.0.0/8"]}`, "200 200 200 200 403 200 401"},
		{"DELETE /v1/tokens/{ref}", "DELETE", "/v1/tokens/{usrtok}", "", "200 200 200 200 403 200 401"},
		{"DELETE /v1/tokens", "DELETE", "/v1/tokens?display_name=bye", "", "200 200 200 200 403 200 401"},
		{"POST /v1/tokens/represent", "POST", "/v1/tokens/represent", `{"email":"staff@acme.io","ttl_minutes":5}`, "201 403 403 403 403 403 401"},
		{"GET /v1/audit", "GET", "/v1/audit", "", "200 403 403 403 403 403 401"},
		{"GET /v1/admin/plugins", "GET", "/v1/admin/plugins", "", "200 403 403 403 403 403 401"},
		{"POST /v1/orgs/{org}/projects/{project}/credentials", "POST", "/v1/orgs/acme/projects/web/credentials", `{"user_email":"ceo@victim.com"}`, "200 200 403 403 200 403 401"},
		{"POST /v1/organizations/{org}/projects/{project}/credentials", "POST", "/v1/organizations/acme/projects/web/credentials", `{"user_email":"both@victim.com"}`, "200 200 403 403 200 403 401"},
		{"POST /v1/admin/signing-keys/rotate", "POST", "/v1/admin/signing-keys/rotate", "", "200 403 403 403 403 403 401"},
		{"GET /v1/admin/signing-keys", "GET", "/v1/admin/signing-keys", "", "200 403 403 403 403 403 401"},
		{"POST /v1/admin/signing-keys/{kid}/retire", "POST", "/v1/admin/signing-keys/no-such-kid/retire", "", "404 403 403 403 403 403 401"},
		{"POST /v1/introspect", "POST", "/v1/introspect", `{"token":"{both}"}`, "200 200 200 200 200 200 401"},
		{"PUT /v1/orgs/{org}/projects/{project}/users/{email}/resources", "PUT", "/v1/orgs/acme/projects/web/users/staff@acme.io/resources",
			`{"resources":[{"type":"explore","name":"e-{who}"}]}`, "200 200 403 403 200 403 401"},
		{"GET /v1/orgs/{org}/projects/{project}/users/{email}/resources", "GET", "/v1/orgs/acme/projects/web/users/staff@acme.io/resources", "", "200 200 403 403 200 403 401"},
		{"DELETE /v1/orgs/{org}/projects/{project}/users/{email}/resources", "DELETE", "/v1/orgs/acme/projects/web/users/staff@acme.io/resources", "", "200 200 403 403 200 403 401"},
		{"POST /v1/orgs/{org}/projects/{project}/iframe", "POST", "/v1/orgs/acme/projects/web/iframe", `{"user_email":"ceo@victim.com","resource":"r"}`, "501 501 403 403 501 403 401"},
		{"POST /v1/organizations/{org}/projects/{project}/iframe", "POST", "/v1/organizations/acme/projects/web/iframe", `{"navigation":true}`, "501 501 403 403 501 403 401"},
		{"GET /v1/admin/backup", "GET", "/v1/admin/backup", "", "200 403 403 403 403 403 401"},
		{"POST /v1/orgs/{org}/projects/{project}/tokens/magic", "POST", "/v1/orgs/acme/projects/web/tokens/magic",
			`{"resources":[{"type":"explore","name":"e-{who}"}],"fields":["f-{who}"]}`, "201 201 403 403 201 403 401"},
		{"POST /v1/organizations/{org}/projects/{project}/tokens/magic", "POST", "/v1/organizations/acme/projects/web/tokens/magic", `{}`, "201 201 403 403 201 403 401"},
		{"GET /v1/orgs/{org}/projects/{project}/tokens/magic", "GET", "/v1/orgs/acme/projects/web/tokens/magic", "", "200 200 403 403 200 403 401"},
		{"GET /v1/organizations/{org}/projects/{project}/tokens/magic", "GET", "/v1/organizations/acme/projects/web/tokens/magic", "", "200 200 403 403 200 403 401"},
		{"GET /v1/magic-tokens/current", "GET", "/v1/magic-tokens/current", "", "403 403 403 403 403 403 401"},
		{"PATCH /v1/magic-tokens/{id}", "PATCH", "/v1/magic-tokens/{mgctok}", `{"allowed_origins":["https://shop.example.com"]}`, "200 200 403 403 200 403 401"},
		{"DELETE /v1/magic-tokens/{id}", "DELETE", "/v1/magic-tokens/{mgctok}", "", "200 200 403 403 200 403 401"},
		// The device flow's approval: any user, for a code that exists (none here: 404); never a service.
		{"GET /v1/device", "GET", "/v1/device?user_code=BCDF-GHJK", "", "404 404 404 404 403 404 401"},
		{"POST /v1/device/approve", "POST", "/v1/device/approve", `{"user_code":"BCDF-GHJK"}`, "404 404 404 404 403 404 401"},
		{"POST /v1/device/deny", "POST", "/v1/device/deny", `{"user_code":"BCDF-GHJK"}`, "404 404 404 404 403 404 401"},
	}

	// Every route the API registers is in the matrix.
	var tested []string
	for _, r := range routes {
		tested = append(tested, r.pattern)
	}
	if missing := registeredRoutes(t, tested); len(missing) > 0 {
		t.Fatalf("routes registered but not in the matrix: %q", missing)
	}

	cases := 0
	for _, r := range routes {
		want := strings.Fields(r.want)
		if len(want) != len(matrixPrincipals) {
			t.Fatalf("%s: %d wants for %d principals", r.pattern, len(want), len(matrixPrincipals))
		}
		for i, who := range matrixPrincipals {
			fill := strings.NewReplacer("{who}", who, "{svctok}", svcTok[who], "{usrtok}", usrTok[who], "{mgctok}", mgcTok[who], "{both}", e.tokens["both"])
			path, body := fill.Replace(r.path), fill.Replace(r.body)
			t.Run(r.pattern+"/"+who, func(t *testing.T) {
				cases++
				code, hdr, got := e.raw(t, who, r.method, path, body)
				if w := want[i]; strconv.Itoa(code) != w {
					t.Errorf("%s %s as %s: %d, want %s: %s", r.method, path, who, code, w, got)
				}
				var foreign []orgMarks
				switch who {
				case "su": // sees every org
				case "vadmin":
					foreign = []orgMarks{acmeMarks}
				case "none":
					foreign = []orgMarks{acmeMarks, victimMarks}
				default:
					foreign = []orgMarks{victimMarks}
				}
				for _, m := range foreign {
					if l := leaks(m, hdr, got); len(l) > 0 {
						t.Errorf("%s %s as %s shows %s's %q:\n%s", r.method, path, who, m.org, l, got)
					}
				}
			})
		}
	}
	t.Logf("matrix: %d endpoints x %d principals = %d cases", len(routes), len(matrixPrincipals), cases)
}

// raw calls the API as who ("none": no token) and returns the status, headers and body.
func (e *env) raw(t *testing.T, who, method, path, body string) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if who != "none" {
		req.Header.Set("Authorization", "Bearer "+e.tokens[who])
	}
	req.Header.Set("Accept", apiv1.MediaType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

var routeRe = regexp.MustCompile(`a\.(?:handle|mutation)\(mux, "([^"]+)"`)

// registeredRoutes reads the API's source for the routes it registers with handle and mutation
// and returns those not in tested.
func registeredRoutes(t *testing.T, tested []string) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range routeRe.FindAllStringSubmatch(string(src), -1) {
			n++
			if !slices.Contains(tested, m[1]) {
				missing = append(missing, m[1])
			}
		}
	}
	if n < 20 {
		t.Fatalf("found only %d registered routes in the source: the pattern no longer matches", n)
	}
	return missing
}
