package rillruntime_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/internal/testenv"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/store/badger"
	"github.com/rill-authd/rill-authd/token"
)

// seedMagic writes an org with two projects and an editor of one of them (editors hold
// create_magic_auth_tokens), with a token; it returns the editor's id and token.
func seedMagic(t *testing.T, dir string) (string, string) {
	t.Helper()
	st, err := badger.Open(badger.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, now := context.Background(), time.Now().UTC()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	edID := token.NewID()
	must(st.CreateOrg(ctx, store.Org{Name: "acme", CreatedAt: now}))
	must(st.CreateProject(ctx, store.Project{ID: webID, Org: "acme", Name: "web", CreatedAt: now}))
	must(st.CreateProject(ctx, store.Project{Org: "acme", Name: "other", CreatedAt: now}))
	must(st.CreateUser(ctx, store.User{ID: edID, Email: "ed@acme.io", DisplayName: "Ed", OrgRoles: map[string]policy.Role{"acme": policy.Viewer},
		ProjectRoles: map[string]policy.Role{"acme/web": policy.Editor, "acme/other": policy.Editor},
		Orgs:         map[string]store.UserOrg{"acme": {Groups: []string{"sales"}, Attributes: map[string]any{"region": "eu"}}}, CreatedAt: now, UpdatedAt: now}))
	tok, err := token.New(token.User)
	must(err)
	must(st.CreateToken(ctx, store.NewToken(tok, edID, "laptop", "seed", now, 0)))
	return edID, tok.Encode()
}

// rillctl runs the real rillctl binary with env, and returns its stdout; it fails t unless it
// exits 0.
func rillctl(t *testing.T, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(testenv.Bin(t, "rillctl"), args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("rillctl %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// TestPublicURLAtTheRuntime: a public URL with a row filter and fields, made with rillctl
// against the real daemon, opens its project only (403 elsewhere); the runtime JWT the check
// exchanges it for carries the rules Rill's securityRulesFromMagicAuthToken builds, byte for
// byte (testdata/magic_sec.json), and a verifier built as Rill's runtime accepts it; deleting
// the URL makes its next check a 401.
func TestPublicURLAtTheRuntime(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	edID, edToken := seedMagic(t, dir)
	d := testenv.Start(t, dir, "--token-exchange", "--runtime-audience", "https://runtime.test", "--runtime-host", "https://runtime.test",
		"--frontend-url", "https://ui.example.com/app/")
	issuer := d.URL()
	rt, err := openAudience(context.Background(), issuer, "https://runtime.test")
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"RILLCTL_API_URL=" + issuer, "RILLCTL_TOKEN=" + edToken, "RILLCTL_ORG=acme", "TZ=UTC"}
	// The filter as a person writes it (spaces, the operation by name); the rule carries what
	// protojson makes of it.
	filter := `{"cond": {"op": "OPERATION_AND", "exprs": [
		{"cond": {"op": "OPERATION_EQ", "exprs": [{"ident": "country"}, {"val": "DK"}]}},
		{"cond": {"op": "OPERATION_GT", "exprs": [{"ident": "revenue"}, {"val": 1000}]}},
		{"cond": {"op": "OPERATION_IN", "exprs": [{"ident": "tier"}, {"val": ["gold", "platinum"]}]}}]}}`
	out := strings.TrimSpace(rillctl(t, env, "public-url", "create", "web", "sales_explore", "--filter", filter, "--metrics-view", "sales",
		"--fields", "country,revenue", "--ttl-minutes", "60"))
	const prefix = "https://ui.example.com/app/acme/web/-/share/"
	if !strings.HasPrefix(out, prefix) || strings.Contains(out, "\n") {
		t.Fatalf("public-url create printed %q, want one URL under %s", out, prefix)
	}
	mgc := strings.TrimPrefix(out, prefix)
	parsed, err := token.Parse(mgc)
	if err != nil || parsed.Kind != token.Magic || len(mgc) != token.Len {
		t.Fatalf("the URL's token %q: %v", mgc, err)
	}

	// The check: read on its project, exchanged for a runtime JWT with Rill's rules.
	code, h, b := do(t, "GET", issuer+"/ext_authz/v1/orgs/acme/projects/web/runtime/api/x", mgc, "")
	if code != 200 {
		t.Fatalf("check of the public URL on its project: %d %s", code, b)
	}
	if h.Get("X-Rill-Auth-Kind") != "magic" || h.Get("X-Rill-Permissions") != "read_org,read_project,read_prod" || h.Get("X-Rill-Token-Id") != parsed.ID.String() {
		t.Errorf("check headers: kind %q permissions %q token id %q", h.Get("X-Rill-Auth-Kind"), h.Get("X-Rill-Permissions"), h.Get("X-Rill-Token-Id"))
	}
	c, err := rt.parseAndValidate(strings.TrimPrefix(h.Get("Authorization"), "Bearer "))
	if err != nil {
		t.Fatalf("the runtime refuses the exchanged token: %v", err)
	}
	want, err := os.ReadFile("testdata/magic_sec.json")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(c.Security)
	if string(got) != strings.TrimSpace(string(want)) {
		t.Errorf("sec of the exchanged token:\n got %s\nwant %s", got, want)
	}
	if r := rulesOf(t, c); !slices.Equal(r, []string{"transitive_access:rill.runtime.v1.Explore/sales_explore", "row_filter", "field_access"}) {
		t.Errorf("the runtime reads the rules as %v", r)
	}
	sc := c.claims("default")
	if c.Subject != parsed.ID.String() || !slices.Equal(sc.Permissions, []int{0x15, 0x17, 0x19, 0x1B}) {
		t.Errorf("sub %q (want the token id %s), permissions %#x", c.Subject, parsed.ID, sc.Permissions)
	}
	// Its creator's attributes, as they were when it was made.
	if sc.Attributes["email"] != "ed@acme.io" || sc.Attributes["region"] != "eu" || sc.Attributes["admin"] != false {
		t.Errorf("attributes %v", sc.Attributes)
	}

	// Nowhere else: another project of the same org, a permission it lacks.
	if code, _, b := do(t, "GET", issuer+"/ext_authz/v1/orgs/acme/projects/other/runtime/api/x", mgc, ""); code != 403 {
		t.Errorf("check on another project: %d %s, want 403", code, b)
	}
	if code, _, b := do(t, "GET", issuer+"/v1/orgs/acme/projects/web/credentials", mgc, ""); code != 405 && code != 403 {
		t.Errorf("the admin API's credentials with a public URL's token: %d %s, want 403", code, b)
	}
	if code, _, b := do(t, "POST", issuer+"/v1/orgs/acme/projects/web/credentials", mgc, "{}"); code != 403 {
		t.Errorf("credentials for a public URL's token: %d %s, want 403 (it lacks manage_prod, as in Rill)", code, b)
	}
	if code, _, b := do(t, "POST", issuer+"/v1/orgs/acme/projects/web/tokens/magic", mgc, "{}"); code != 403 {
		t.Errorf("a public URL issuing a public URL: %d %s, want 403", code, b)
	}
	// It shows itself, in Rill's GetCurrentMagicAuthTokenResponse (this path is Rill's gateway's).
	code, _, b = do(t, "GET", issuer+"/v1/magic-tokens/current", mgc, "")
	var cur struct{ Token map[string]any }
	if code != 200 || json.Unmarshal(b, &cur) != nil || cur.Token["id"] != parsed.ID.String() || cur.Token["createdByUserId"] != edID ||
		cur.Token["projectId"] != webID {
		t.Errorf("current: %d %s", code, b)
	}

	// rillctl public-url list shows it, with its creator; delete revokes it at once.
	list := rillctl(t, env, "public-url", "list", "web")
	if !strings.Contains(list, parsed.ID.String()) || !strings.Contains(list, "ed@acme.io") || !strings.Contains(list, "sales_explore") ||
		!strings.Contains(list, "NOTE: For security reasons, the actual URLs can't be displayed after creation.") {
		t.Errorf("public-url list:\n%s", list)
	}
	if out := rillctl(t, env, "public-url", "delete", parsed.ID.String()); out != "" {
		t.Errorf("public-url delete printed %q", out)
	}
	if code, h, b := do(t, "GET", issuer+"/ext_authz/v1/orgs/acme/projects/web/runtime/api/x", mgc, ""); code != 401 || !strings.Contains(h.Get("Www-Authenticate"), "invalid_token") {
		t.Errorf("check after delete: %d %s %q, want 401", code, b, h.Get("Www-Authenticate"))
	}
	if list := rillctl(t, env, "public-url", "list", "web"); !strings.Contains(list, "No URLs found") {
		t.Errorf("public-url list after delete:\n%s", list)
	}
}
