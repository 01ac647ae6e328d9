package ctl_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/rill-authd/rill-authd/internal/testenv"
)

// post sends a JSON request to the daemon with bearer tok and returns the status and body.
func post(t *testing.T, method, url, tok, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// secOf returns the sec claim of a compact JWT, as raw JSON ("" for none).
func secOf(t *testing.T, raw string) string {
	t.Helper()
	parts := strings.Split(strings.TrimPrefix(raw, "Bearer "), ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", raw)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Sec json.RawMessage `json:"sec"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return string(c.Sec)
}

var userTokenRe = regexp.MustCompile(`(?m)^Token: (rill_usr_[0-9A-Za-z]{60})$`)

// TestUserResources limits a member's project role to resources with rillctl as Rill's CLI
// does (set-resources, --explore, --canvas, --restrict-resources), and finds Rill's rules in
// every runtime JWT minted for the member: credentials by id, by email, for themselves, and the
// token exchange at the check; clearing them, or losing the role, removes them.
func TestUserResources(t *testing.T) {
	d := testenv.Start(t, "", "--token-exchange")
	root := cli{t: t, bin: testenv.Bin(t, "rillctl"), env: []string{"RILLCTL_API_URL=" + d.URL(), "RILLCTL_ORG=acme", "TZ=UTC"}}
	su := root.as(d.Token)
	su.ok("org", "create", "acme")
	su.ok("project", "create", "web")
	su.ok("user", "create", "carol@acme.io", "--project", "web", "--project-role", "viewer")
	su.ok("user", "create", "vic@acme.io", "--org-role", "viewer")
	m := svcTokenRe.FindStringSubmatch(lines(su.ok("service", "create", "embedder", "--project", "web", "--project-role", "admin"))[1])
	embedder := m[1]
	carolTok := userTokenRe.FindStringSubmatch(su.ok("token", "issue", "--user", "carol@acme.io", "--display-name", "c"))[1]
	vicTok := userTokenRe.FindStringSubmatch(su.ok("token", "issue", "--user", "vic@acme.io", "--display-name", "v"))[1]
	var users []struct{ ID, Email string }
	if err := json.Unmarshal([]byte(su.ok("user", "list", "--json")), &users); err != nil {
		t.Fatal(err)
	}
	carolID := ""
	for _, u := range users {
		if u.Email == "carol@acme.io" {
			carolID = u.ID
		}
	}
	credentials := func(body string) string {
		t.Helper()
		code, b := post(t, "POST", d.URL()+"/v1/orgs/acme/projects/web/credentials", embedder, body)
		var out struct{ AccessToken string }
		if code != 200 || json.Unmarshal(b, &out) != nil {
			t.Fatalf("credentials %s: %d %s", body, code, b)
		}
		return secOf(t, out.AccessToken)
	}
	exchanged := func() string {
		t.Helper()
		req, _ := http.NewRequest("GET", d.URL()+"/ext_authz/v1/orgs/acme/projects/web/runtime/x", nil)
		req.Header.Set("Authorization", "Bearer "+carolTok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("carol's check: %d (a restricted role is still a project role)", resp.StatusCode)
		}
		return secOf(t, resp.Header.Get("Authorization"))
	}
	everyJWT := func(what, want string) {
		t.Helper()
		for name, got := range map[string]string{
			"credentials by user_id":    credentials(`{"user_id":"` + carolID + `"}`),
			"credentials by user_email": credentials(`{"user_email":"carol@acme.io"}`),
			"token exchange":            exchanged(),
		} {
			if got != want {
				t.Errorf("%s: %s: sec %s, want %s", what, name, got, want)
			}
		}
	}
	everyJWT("before any restriction", "")

	out := su.ok("user", "set-resources", "--project", "web", "--email", "carol@acme.io", "--explore", "sales", "--canvas", "exec <board>", "--explore", "sales")
	if out != `Updated resources for "carol@acme.io" in project "acme/web" (resources set to rill.runtime.v1.Explore/sales, rill.runtime.v1.Explore/sales, rill.runtime.v1.Canvas/exec <board>)`+"\n" {
		t.Errorf("set-resources printed %q", out)
	}
	if out := su.ok("user", "show-resources", "--project", "web", "--email", "carol@acme.io"); !strings.Contains(out,
		"Resources: rill.runtime.v1.Explore/sales, rill.runtime.v1.Canvas/exec <board>\n") {
		t.Errorf("show-resources printed %q (the explore given twice is kept once)", out)
	}
	two := `[{"transitiveAccess":{"resource":{"kind":"rill.runtime.v1.Explore","name":"sales"}}},` +
		`{"transitiveAccess":{"resource":{"kind":"rill.runtime.v1.Canvas","name":"exec \u003cboard\u003e"}}}]`
	everyJWT("limited to two resources", two)
	var listed []struct {
		Email      string
		Restricted map[string][]struct{ Type, Name string }
	}
	if err := json.Unmarshal([]byte(su.ok("user", "list", "--json")), &listed); err != nil {
		t.Fatal(err)
	}
	for _, u := range listed {
		if r := u.Restricted["acme/web"]; u.Email == "carol@acme.io" && (len(r) != 2 || r[1].Type != "rill.runtime.v1.Canvas" || r[1].Name != "exec <board>") {
			t.Errorf("user list shows carol's restriction as %v", u.Restricted)
		}
	}
	// The caller asking for themselves gets their own rules; attributes name no user, so none.
	if code, b := post(t, "POST", d.URL()+"/v1/orgs/acme/projects/web/credentials", carolTok, `{}`); code != 403 {
		t.Errorf("a viewer asked for credentials: %d %s", code, b)
	}
	if got := credentials(`{"attributes":{"email":"x@y.z"}}`); got != "" {
		t.Errorf("credentials for attributes carry sec %s", got)
	}

	out = su.ok("user", "set-resources", "--project", "web", "--email", "carol@acme.io", "--restrict-resources")
	if !strings.Contains(out, "(resources restricted with no resources)") {
		t.Errorf("set-resources --restrict-resources printed %q", out)
	}
	everyJWT("restricted to nothing", `[{"access":{}}]`)

	if out := su.ok("user", "set-resources", "--project", "web", "--email", "carol@acme.io"); !strings.Contains(out, "(resources cleared)") {
		t.Errorf("set-resources with nothing printed %q", out)
	}
	everyJWT("cleared", "")

	su.ok("user", "set-resources", "--project", "web", "--email", "carol@acme.io", "--canvas", "c")
	if out := su.ok("user", "clear-resources", "--project", "web", "--email", "carol@acme.io"); !strings.Contains(out, "(resources cleared)") {
		t.Errorf("clear-resources printed %q", out)
	}
	everyJWT("cleared with clear-resources", "")

	// Losing the role takes the restriction with it; a new role starts unrestricted.
	su.ok("user", "set-resources", "--project", "web", "--email", "carol@acme.io", "--explore", "sales")
	su.ok("user", "set-role", "carol@acme.io", "--project", "web", "--remove")
	su.ok("user", "set-role", "carol@acme.io", "--project", "web", "--project-role", "viewer")
	everyJWT("after the role was removed and given again", "")

	// Refusals: no role on the project, a kind Rill's CLI does not take, an unprintable name,
	// a caller without manage_project_members, a missing flag.
	su.fails("has no role on project acme/web", "user", "set-resources", "--project", "web", "--email", "vic@acme.io", "--explore", "x")
	for body, want := range map[string]string{
		`{"resources":[{"type":"model","name":"m"}]}`:                "is not one of explore, canvas",
		`{"resources":[{"type":"explore","name":"a\u0000b"}]}`:       "holds a NUL character",
		`{"resources":[{"type":"explore","name":"a\u0007b"}]}`:       "not printable",
		`{"resources":[{"type":"explore","name":""}]}`:               "needs a name",
		`{"resources":[{"type":"explore","name":"x"}],"extra":true}`: "unknown field",
	} {
		code, b := post(t, "PUT", d.URL()+"/v1/orgs/acme/projects/web/users/carol@acme.io/resources", d.Token, body)
		if code != 400 || !strings.Contains(string(b), want) {
			t.Errorf("PUT %s: %d %s, want 400 %q", body, code, b, want)
		}
	}
	root.as(vicTok).fails("lacks manage_project_members", "user", "set-resources", "--project", "web", "--email", "carol@acme.io", "--explore", "x")
	root.as(vicTok).fails("lacks read_project_members", "user", "show-resources", "--project", "web", "--email", "carol@acme.io")
	su.fails("--email is required", "user", "set-resources", "--project", "web")
	if out := su.ok("user", "show-resources", "--project", "web", "--email", "carol@acme.io"); !strings.Contains(out, "Resources: not restricted") {
		t.Errorf("show-resources after the refusals: %q", out)
	}
}
