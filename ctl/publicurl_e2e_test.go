package ctl_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/rill-authd/rill-authd/internal/testenv"
)

var publicURLRe = regexp.MustCompile(`^https://ui\.example\.com/my-org/analytics-dashboard/-/share/(rill_mgc_[0-9A-Za-z]{60})\n$`)

// TestPublicURLReadme runs the README's "Public URLs" examples, as written but for the host,
// through the real rillctl (and curl) against the real daemon, and who may do what: a viewer
// may not issue, an editor lists and revokes only their own, a service with manage rights all.
func TestPublicURLReadme(t *testing.T) {
	d := testenv.Start(t, "", "--frontend-url", "https://ui.example.com/", "--token-exchange")
	root := cli{t: t, bin: testenv.Bin(t, "rillctl"), env: []string{"RILLCTL_API_URL=" + d.URL(), "RILLCTL_ORG=my-org", "TZ=UTC"}}
	su := root.as(d.Token)
	su.ok("org", "create", "my-org")
	su.ok("project", "create", "analytics-dashboard")

	out := su.ok("public-url", "create", "analytics-dashboard", "sales", "--metrics-view", "sales_mv",
		"--filter", `{"cond":{"op":"OPERATION_EQ","exprs":[{"ident":"country"},{"val":"DK"}]}}`,
		"--fields", "country,revenue", "--ttl-minutes", "1440")
	m := publicURLRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("public-url create printed %q", out)
	}
	mgc := m[1]
	list := su.ok("public-url", "list", "analytics-dashboard")
	rs := rows(t, strings.Split(list, "\n\n")[0], "ID|RESOURCE|FILTER|CREATED BY|CREATED ON|LAST USED ON|EXPIRES ON|LAST USED FROM")
	if len(rs) != 1 || !strings.HasSuffix(list, "\nNOTE: For security reasons, the actual URLs can't be displayed after creation.\n") {
		t.Fatalf("public-url list:\n%s", list)
	}
	var id string
	for k, r := range rs {
		id = k
		if r[1] != "sales" || r[2] != `sales_mv={"cond":{"op":"OPERATION_EQ","exprs":[{"ident":"country"},{"val":"DK"}]}}` || r[3] != "admin@localhost" || r[5] != "-" {
			t.Errorf("public-url list row %q", r)
		}
	}
	if code, _ := post(t, "GET", d.URL()+"/ext_authz/v1/orgs/my-org/projects/analytics-dashboard/runtime/api/x", mgc, ""); code != 200 {
		t.Errorf("check with the URL's token: %d", code)
	}

	// An iframe without --runtime-host: refused in one line that says what to configure, not a
	// URL with runtime_host= that fails in the browser.
	if code, b := post(t, "POST", d.URL()+"/v1/orgs/my-org/projects/analytics-dashboard/iframe", d.Token, `{"resource":"sales"}`); code != 501 ||
		!strings.Contains(string(b), "--runtime-host") || strings.Contains(string(b), "runtime_host=") {
		t.Errorf("iframe without --runtime-host: %d %s", code, b)
	}

	// The curl examples.
	curl, err := exec.LookPath("curl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("curl is not installed: the README's curl examples need it")
		}
		t.Log("curl is not installed: the README's curl examples are not run")
	} else {
		b, err := exec.Command(curl, "-sS", "--fail-with-body", "-X", "POST", d.URL()+"/v1/orgs/my-org/projects/analytics-dashboard/tokens/magic",
			"-H", "Authorization: Bearer "+d.Token, "-H", "Content-Type: application/json",
			"-d", `{"resources": [{"type": "explore", "name": "sales"}],
       "metrics_view_filters": {"sales_mv": {"cond": {"op": "OPERATION_IN", "exprs": [{"ident": "tier"}, {"val": ["gold", "platinum"]}]}}},
       "fields": ["country"], "display_name": "partners", "ttl_minutes": 60}`).CombinedOutput()
		// Rill's answers (these paths are Rill's gateway's): the token and its URL, then the
		// token's record from current.
		var issued struct{ Token, URL string }
		if err != nil || json.Unmarshal(b, &issued) != nil || !strings.HasPrefix(issued.Token, "rill_mgc_") ||
			issued.URL != "https://ui.example.com/my-org/analytics-dashboard/-/share/"+issued.Token {
			t.Fatalf("curl issue: %v\n%s", err, b)
		}
		b, err = exec.Command(curl, "-sS", "-D", "-", "-o", "/dev/null", d.URL()+"/ext_authz/v1/orgs/my-org/projects/analytics-dashboard/runtime/api/x",
			"-H", "Authorization: Bearer "+issued.Token).CombinedOutput()
		if err != nil || !strings.HasPrefix(string(b), "HTTP/1.1 200") || !strings.Contains(strings.ToLower(string(b)), "x-rill-auth-kind: magic") {
			t.Errorf("curl check: %v\n%s", err, b)
		}
		b, err = exec.Command(curl, "-sS", "--fail-with-body", d.URL()+"/v1/magic-tokens/current", "-H", "Authorization: Bearer "+issued.Token).CombinedOutput()
		var current struct {
			Token struct {
				ID, CreatedByUserEmail string
				Fields                 []string
				Attributes             map[string]any
				MetricsViewFilters     map[string]json.RawMessage
			}
		}
		if err != nil || json.Unmarshal(b, &current) != nil || current.Token.ID == "" || current.Token.CreatedByUserEmail != "admin@localhost" ||
			current.Token.Attributes["email"] != "admin@localhost" || len(current.Token.Fields) != 1 || current.Token.MetricsViewFilters["sales_mv"] == nil {
			t.Fatalf("curl current: %v\n%s", err, b)
		}
		b, err = exec.Command(curl, "-sS", "--fail-with-body", "-X", "DELETE", d.URL()+"/v1/magic-tokens/"+current.Token.ID, "-H", "Authorization: Bearer "+d.Token).CombinedOutput()
		if err != nil {
			t.Errorf("curl delete: %v\n%s", err, b)
		}
		if code, _ := post(t, "GET", d.URL()+"/ext_authz/v1/orgs/my-org/projects/analytics-dashboard/runtime/api/x", issued.Token, ""); code != 401 {
			t.Errorf("check after the curl delete: %d", code)
		}
	}

	// Who may: a viewer may not issue; an editor issues, and lists and revokes only their own.
	su.ok("user", "create", "vic@example.com", "--project", "analytics-dashboard", "--project-role", "viewer")
	su.ok("user", "create", "eve@example.com", "--project", "analytics-dashboard", "--project-role", "editor")
	vic := root.as(userTokenRe.FindStringSubmatch(su.ok("token", "issue", "--user", "vic@example.com", "--display-name", "v"))[1])
	eve := root.as(userTokenRe.FindStringSubmatch(su.ok("token", "issue", "--user", "eve@example.com", "--display-name", "e"))[1])
	vic.fails("not allowed to create a magic auth token", "public-url", "create", "analytics-dashboard", "sales")
	vic.fails("not allowed to manage magic auth tokens", "public-url", "list", "analytics-dashboard")
	if out := eve.ok("public-url", "create", "--project", "analytics-dashboard", "sales", "--canvas"); !publicURLRe.MatchString(out) {
		t.Errorf("the editor's public-url create printed %q", out)
	}
	// An editor holds manage_magic_auth_tokens too (policy: all but manage_project and the like),
	// so they see and may revoke every one; a viewer of the project none.
	if l := eve.ok("public-url", "list", "analytics-dashboard"); !strings.Contains(l, "eve@example.com") || !strings.Contains(l, id) {
		t.Errorf("the editor's list:\n%s", l)
	}
	vic.fails("not allowed to revoke this magic auth token", "public-url", "delete", id)
	if out := su.ok("public-url", "delete", id); out != "" {
		t.Errorf("public-url delete printed %q", out)
	}
	if code, _ := post(t, "GET", d.URL()+"/ext_authz/v1/orgs/my-org/projects/analytics-dashboard/runtime/api/x", mgc, ""); code != 401 {
		t.Errorf("check after public-url delete: %d, want 401", code)
	}
	su.fails("not found", "public-url", "delete", id)
	// A public URL is handed to everyone it is shared with: one of them cannot kill it for the
	// others with RFC 7009 (200 as always, nothing revoked; Rill has no such route either).
	shared := publicURLRe.FindStringSubmatch(eve.ok("public-url", "create", "analytics-dashboard", "sales"))[1]
	if code, b := post(t, "POST", d.URL()+"/v1/revoke", "", `{"token":"`+shared+`"}`); code != 200 {
		t.Errorf("POST /v1/revoke of a public URL's token: %d %s", code, b)
	}
	if code, _ := post(t, "GET", d.URL()+"/ext_authz/v1/orgs/my-org/projects/analytics-dashboard/runtime/api/x", shared, ""); code != 200 {
		t.Errorf("check after a holder asked to revoke it: %d, want 200 (only public-url delete revokes it)", code)
	}
	su.fails("filter size exceeds limit", "public-url", "create", "analytics-dashboard", "sales",
		"--filter", `{"cond":{"op":"OPERATION_IN","exprs":[{"ident":"c"},{"val":["`+strings.Repeat("x", 1100)+`"]}]}}`)
	su.fails("filter", "public-url", "create", "analytics-dashboard", "sales", "--filter", `{"cond":{"op":"OPERATION_NOPE"}}`)
}
