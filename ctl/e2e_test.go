package ctl_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/ctl"
	"github.com/rill-authd/rill-authd/internal/testenv"
)

// cli runs the real rillctl binary against a real daemon.
type cli struct {
	t   *testing.T
	bin string
	env []string
}

type result struct {
	out, err string
	code     int
}

func (c cli) as(tok string) cli {
	env := append([]string{}, c.env...)
	return cli{t: c.t, bin: c.bin, env: append(env, "RILLCTL_TOKEN="+tok)}
}

func (c cli) run(args ...string) result {
	c.t.Helper()
	cmd := exec.Command(c.bin, args...)
	cmd.Env = c.env
	cmd.Stdin = strings.NewReader("")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

// ok runs a command that must succeed and returns its stdout.
func (c cli) ok(args ...string) string {
	c.t.Helper()
	r := c.run(args...)
	if r.code != 0 {
		c.t.Fatalf("rillctl %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.out, r.err)
	}
	return r.out
}

// fails runs a command that must fail with a one-line error containing want.
func (c cli) fails(want string, args ...string) {
	c.t.Helper()
	r := c.run(args...)
	if r.code == 0 {
		c.t.Fatalf("rillctl %s succeeded; want failure %q\n%s", strings.Join(args, " "), want, r.out)
	}
	if !strings.Contains(r.err, want) || strings.Count(strings.TrimSpace(r.err), "\n") > 0 {
		c.t.Fatalf("rillctl %s: stderr %q, want one line containing %q", strings.Join(args, " "), r.err, want)
	}
}

func lines(s string) []string { return strings.Split(strings.TrimRight(s, "\n"), "\n") }

// fields splits a table row on runs of two or more spaces (cells may contain single spaces).
func fields(row string) []string {
	return regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(row), -1)
}

// rows returns a table's rows keyed by first cell, after checking its header.
func rows(t *testing.T, out, header string) map[string][]string {
	t.Helper()
	ls := lines(out)
	if got := strings.Join(fields(ls[0]), "|"); got != header {
		t.Fatalf("header %q, want %q", got, header)
	}
	m := map[string][]string{}
	for _, l := range ls[1:] {
		f := fields(l)
		m[f[0]] = f
	}
	return m
}

var svcTokenRe = regexp.MustCompile(`^Access token: (rill_svc_[0-9A-Za-z]{60})$`)

// TestReferenceDocs runs every example of the service-token and user-token docs, in order,
// through the real rillctl against the real daemon.
func TestReferenceDocs(t *testing.T) {
	d := testenv.Start(t, "")
	root := cli{t: t, bin: testenv.Bin(t, "rillctl"), env: []string{"RILLCTL_API_URL=" + d.URL(), "RILLCTL_ORG=my-org", "TZ=UTC"}}
	su := root.as(d.Token)

	// What the docs take for granted.
	if got := su.ok("org", "create", "my-org"); got != "Created org \"my-org\".\n" {
		t.Fatalf("org create: %q", got)
	}
	for _, p := range []string{"my-project", "analytics-dashboard", "sales-analytics"} {
		if got := su.ok("project", "create", p); got != "Created project \""+p+"\" in org \"my-org\".\n" {
			t.Fatalf("project create: %q", got)
		}
	}
	created := func(out, name string) string {
		t.Helper()
		ls := lines(out)
		if len(ls) != 2 || ls[0] != `Created service "`+name+`" in org "my-org".` || !svcTokenRe.MatchString(ls[1]) {
			t.Fatalf("service create printed %q", out)
		}
		return svcTokenRe.FindStringSubmatch(ls[1])[1]
	}
	whoami := func(tok string) string { return strings.TrimSpace(root.as(tok).ok("whoami")) }

	// Basic creation, org-level then project-level (alternatives: delete in between).
	tok := created(su.ok("service", "create", "my-service", "--org-role", "admin"), "my-service")
	if w := whoami(tok); w != "service my-service" {
		t.Fatalf("new service token is %q", w)
	}
	su.ok("service", "delete", "my-service")
	created(su.ok("service", "create", "my-service", "--project", "my-project", "--project-role", "viewer"), "my-service")
	su.ok("service", "delete", "my-service")
	// With custom attributes.
	myTok := created(su.ok("service", "create", "my-service", "--org-role", "admin",
		"--attributes", `{"department":"engineering","region":"us-west","tier":"premium"}`), "my-service")
	// The complete example, exactly as the docs print it.
	out := su.ok("service", "create", "reporting-service", "--org", "my-org", "--project", "analytics-dashboard",
		"--project-role", "viewer", "--attributes", `{"purpose":"reporting","schedule":"daily","region":"us-east"}`)
	created(out, "reporting-service")
	created(su.ok("service", "create", "global-admin", "--org-role", "admin"), "global-admin")
	created(su.ok("service", "create", "dashboard-viewer", "--project", "sales-analytics", "--project-role", "viewer"), "dashboard-viewer")

	// Listing.
	list := rows(t, su.ok("service", "list", "--org", "my-org"), "NAME|ORG ROLE|PROJECT ROLES|ATTRIBUTES")
	for name, want := range map[string]string{
		"reporting-service": `reporting-service|-|analytics-dashboard|{"purpose":"reporting","region":"us-east","schedule":"daily"}`,
		"global-admin":      `global-admin|admin|-|{}`,
		"dashboard-viewer":  `dashboard-viewer|-|sales-analytics|{}`,
		"my-service":        `my-service|admin|-|{"department":"engineering","region":"us-west","tier":"premium"}`,
	} {
		if got := strings.Join(list[name], "|"); got != want {
			t.Errorf("service list row %q, want %q", got, want)
		}
	}
	// The roles the table leaves out are in --json and in service show.
	var asJSON []struct {
		Name         string            `json:"name"`
		ProjectRoles map[string]string `json:"project_roles"`
	}
	if err := json.Unmarshal([]byte(su.ok("service", "list", "--json")), &asJSON); err != nil || len(asJSON) != 4 {
		t.Fatalf("service list --json: %v %v", asJSON, err)
	}
	for _, s := range asJSON {
		if s.Name == "reporting-service" && s.ProjectRoles["analytics-dashboard"] != "viewer" {
			t.Errorf("service list --json: reporting-service's project roles %v", s.ProjectRoles)
		}
	}
	if out := su.ok("service", "show", "reporting-service"); !strings.Contains(out, "Project roles:  analytics-dashboard=viewer\n") {
		t.Errorf("service show reporting-service:\n%s", out)
	}

	// Editing: rename (the token keeps working under the new name), then back.
	su.ok("service", "edit", "my-service", "--new-name", "renamed-service")
	list = rows(t, su.ok("service", "list"), "NAME|ORG ROLE|PROJECT ROLES|ATTRIBUTES")
	if list["renamed-service"] == nil || list["my-service"] != nil {
		t.Fatalf("after rename: %v", list)
	}
	if w := whoami(myTok); w != "service renamed-service" {
		t.Fatalf("renamed service's token is %q", w)
	}
	su.ok("service", "edit", "renamed-service", "--new-name", "my-service")
	show := func() map[string]string {
		m := map[string]string{}
		for _, l := range lines(su.ok("service", "show", "my-service", "--org", "my-org")) {
			k, v, _ := strings.Cut(l, ":")
			m[k] = strings.TrimSpace(v)
		}
		return m
	}
	su.ok("service", "edit", "my-service", "--attributes", `{"department":"finance","region":"eu-west"}`)
	if got := show()["Attributes"]; got != `{"department":"finance","region":"eu-west"}` {
		t.Errorf("attributes after edit: %q", got)
	}
	su.ok("service", "edit", "my-service", "--attributes", "{}")
	if got := show()["Attributes"]; got != "{}" {
		t.Errorf("attributes after clearing: %q", got)
	}

	// Roles.
	if got := su.ok("service", "set-role", "my-service", "--org-role", "editor"); got != "Set the org role of service \"my-service\" to editor.\n" {
		t.Errorf("set-role printed %q", got)
	}
	if got := show()["Org role"]; got != "editor" {
		t.Errorf("org role after set-role: %q", got)
	}
	su.ok("service", "set-role", "my-service", "--project", "analytics-dashboard", "--project-role", "admin")
	if got := show()["Project roles"]; got != "analytics-dashboard=admin" {
		t.Errorf("project roles after set-role: %q", got)
	}
	su.ok("service", "set-role", "my-service", "--project", "analytics-dashboard", "--remove")
	s := show()
	if s["Project roles"] != "-" || s["Name"] != "my-service" || s["Org"] != "my-org" || !strings.HasPrefix(s["Tokens"], "rill_svc_") {
		t.Errorf("service show after removing the project role: %v", s)
	}

	// Revoking access: deleting the service stops its token on the next request.
	if got := su.ok("service", "delete", "my-service", "--org", "my-org"); !strings.HasPrefix(got, `Deleted service "my-service" from org "my-org"`) {
		t.Errorf("delete printed %q", got)
	}
	root.as(myTok).fails("token revoked", "whoami")

	// User tokens: a user with a first token from the superuser.
	if got := su.ok("user", "create", "dev@example.com", "--org-role", "viewer", "--project", "analytics-dashboard", "--project-role", "viewer", "--groups", "eng,data"); got != "Created user \"dev@example.com\".\n" {
		t.Errorf("user create printed %q", got)
	}
	// The same email in another org adds the existing user to it, and says so.
	su.ok("org", "create", "o2")
	if got := su.ok("user", "create", "dev@example.com", "--org", "o2"); got != "Added user \"dev@example.com\" to org \"o2\".\n" {
		t.Errorf("user create of an existing user in another org printed %q", got)
	}
	first := regexp.MustCompile(`Token: (rill_usr_\S+)`).FindStringSubmatch(su.ok("token", "issue", "--user", "dev@example.com", "--display-name", "first"))
	if first == nil {
		t.Fatal("token issue --user printed no token")
	}
	dev := root.as(first[1])
	dev.fails("--display-name is required when stdin is not a terminal", "token", "issue")
	// On a terminal, token issue asks for the name and the expiry.
	var ttyOut, ttyErr bytes.Buffer
	code := ctl.Main(context.Background(), []string{"token", "issue", "--api-url", d.URL(), "--token", first[1]},
		strings.NewReader("Laptop\n90\n"), &ttyOut, &ttyErr, true, "test")
	if got := ttyOut.String(); code != 0 || !strings.Contains(got, "Display name: ") || !strings.Contains(got, `Issued token "Laptop" (expires `) ||
		strings.Contains(got, "expires never") {
		t.Fatalf("prompted token issue: exit %d\n%s%s", code, got, ttyErr.String())
	}
	issued := map[string]string{}
	for _, args := range [][]string{
		{"--display-name", "Local Development"},
		{"--display-name", "MCP Token", "--ttl-minutes", "1440"},
		{"--display-name", "Testing Token", "--ttl-minutes", "10080"},
	} {
		out := dev.ok(append([]string{"token", "issue"}, args...)...)
		m := regexp.MustCompile(`(?m)^Token: (rill_usr_[0-9A-Za-z]{60})$`).FindStringSubmatch(out)
		if m == nil || !strings.HasPrefix(out, `Issued token "`+args[1]+`"`) {
			t.Fatalf("token issue %v printed %q", args, out)
		}
		issued[args[1]] = m[1]
	}
	toks := rows(t, dev.ok("token", "list"), "ID|DISPLAY NAME|CREATED|EXPIRES")
	byName := map[string][]string{}
	for _, r := range toks {
		byName[r[1]] = r
	}
	if len(byName) != 5 || byName["Local Development"][3] != "Never" {
		t.Fatalf("token list: %v", byName)
	}
	for name, ttl := range map[string]time.Duration{"MCP Token": 24 * time.Hour, "Testing Token": 7 * 24 * time.Hour} {
		c, err1 := time.Parse("2006-01-02 15:04", byName[name][2])
		e, err2 := time.Parse("2006-01-02 15:04", byName[name][3])
		if err1 != nil || err2 != nil || e.Sub(c) < ttl-time.Minute || e.Sub(c) > ttl+time.Minute {
			t.Errorf("%s: created %q expires %q", name, byName[name][2], byName[name][3])
		}
	}
	if id := byName["MCP Token"][0]; !strings.HasPrefix(id, "rill_usr_") || !strings.HasSuffix(id, "...") {
		t.Errorf("token id column %q", id)
	}
	// Revoke by the id token list shows, and by display name.
	if got := dev.ok("token", "revoke", byName["MCP Token"][0]); !strings.Contains(got, `("MCP Token")`) {
		t.Errorf("revoke printed %q", got)
	}
	root.as(issued["MCP Token"]).fails("token revoked", "whoami")
	dev.ok("token", "revoke", "--display-name", "Local Development")
	root.as(issued["Local Development"]).fails("token revoked", "whoami")
	if n := len(rows(t, dev.ok("token", "list"), "ID|DISPLAY NAME|CREATED|EXPIRES")); n != 3 {
		t.Errorf("%d tokens left, want 3", n)
	}
	dev.ok("token", "issue", "--display-name", "twin")
	dev.ok("token", "issue", "--display-name", "twin")
	dev.fails(`2 tokens are named "twin"`, "token", "revoke", "--display-name", "twin")

	// With custom APIs: the user token through the check's HTTP mode.
	req, _ := http.NewRequest("GET", d.URL()+"/ext_authz/v1/organizations/my-org/projects/analytics-dashboard/runtime/api/sales", nil)
	req.Header.Set("Authorization", "Bearer "+issued["Testing Token"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Rill-Subject") != "dev@example.com" || resp.Header.Get("X-Rill-Project-Role") != "viewer" {
		t.Errorf("custom API check: %d %v", resp.StatusCode, resp.Header)
	}

	// Who may do what, from the denied side, through the CLI.
	dev.fails("lacks manage_org on org my-org", "service", "create", "sneaky", "--org-role", "viewer")
	dev.fails("only a superuser", "org", "create", "other-org")
	dev.fails("only a superuser may manage another user's tokens", "token", "list", "--user", "admin@localhost")
	su.fails("invalid --attributes JSON at character 8", "service", "create", "bad", "--org-role", "viewer", "--attributes", `{"a":1,}`)
	su.fails("invalid --attributes: want a JSON object", "service", "create", "bad", "--org-role", "viewer", "--attributes", `[1]`)
	su.fails(`service "nope" not found in org "my-org"`, "service", "show", "nope")
	su.fails(`service "global-admin" already exists`, "service", "create", "global-admin", "--org-role", "admin")

	// Issuing ephemeral tokens: both curl calls of the service-token doc, as written but for the
	// host, with a service that holds manage_prod (global-admin is an org admin).
	curl, err := exec.LookPath("curl")
	if err != nil {
		msg := "curl is not installed: the doc's curl examples need it (.ci/run installs it)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		fmt.Fprintln(os.Stderr, "!!! SKIPPING the curl examples: "+msg)
	}
	adminTok := created(su.ok("service", "create", "embed-issuer", "--org-role", "admin"), "embed-issuer")
	for _, tc := range []struct {
		body  string
		attrs map[string]any
	}{
		{`{
    "attributes": {
      "email": "user@example.com",
      "department": "sales",
      "region": "us-west",
      "customer_id": "acme-corp"
    },
    "ttl_seconds": 3600
  }`, map[string]any{"email": "user@example.com", "department": "sales", "region": "us-west", "customer_id": "acme-corp"}},
		{`{
    "user_email": "user@example.com",
    "ttl_seconds": 3600
  }`, map[string]any{"email": "user@example.com", "domain": "example.com", "admin": false}},
	} {
		if curl == "" {
			break
		}
		out, err := exec.Command(curl, "-sS", "--fail-with-body", "-X", "POST", d.URL()+"/v1/orgs/my-org/projects/analytics-dashboard/credentials",
			"-H", "Authorization: Bearer "+adminTok,
			"-H", "Content-Type: application/json",
			"-d", tc.body).CombinedOutput()
		if err != nil {
			t.Fatalf("curl: %v\n%s", err, out)
		}
		// Rill's response, as its JSON transcoder writes it: camelCase, every field present.
		var cr struct {
			RuntimeHost *string `json:"runtimeHost"`
			InstanceID  *string `json:"instanceId"`
			AccessToken string  `json:"accessToken"`
			TTLSeconds  int     `json:"ttlSeconds"`
		}
		if err := json.Unmarshal(out, &cr); err != nil || cr.TTLSeconds != 3600 || cr.AccessToken == "" || cr.RuntimeHost == nil ||
			cr.InstanceID == nil || *cr.InstanceID != "default" {
			t.Fatalf("credentials response %s: %v", out, err)
		}
		req, _ := http.NewRequest("GET", d.URL()+"/ext_authz/v1/organizations/my-org/projects/analytics-dashboard/runtime/api/sales", nil)
		req.Header.Set("Authorization", "Bearer "+cr.AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		raw, _ := base64.RawURLEncoding.DecodeString(resp.Header.Get("X-Rill-Attributes"))
		var attrs map[string]any
		json.Unmarshal(raw, &attrs)
		if resp.StatusCode != 200 || resp.Header.Get("X-Rill-Auth-Kind") != "ephemeral" || !reflect.DeepEqual(attrs, tc.attrs) {
			t.Errorf("check with the ephemeral token: %d kind %q attributes %v, want %v", resp.StatusCode, resp.Header.Get("X-Rill-Auth-Kind"), attrs, tc.attrs)
		}
	}

	// Every mutation above is in the audit log.
	audit := su.ok("audit", "list", "--limit", "1000")
	for _, want := range []string{"service.create", "service.edit", "service.set_role", "service.delete", "token.issue", "token.revoke", "user.create", "org.create", "project.create"} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit log lacks %s", want)
		}
	}
	if !strings.Contains(audit, "denied: user:dev@example.com lacks manage_org") {
		t.Errorf("audit log lacks the denied service create:\n%s", audit)
	}
	d.Stop(t)
}
