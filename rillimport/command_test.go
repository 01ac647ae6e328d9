package rillimport_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/internal/rillruntime"
	"github.com/rill-authd/rill-authd/internal/testenv"
	"github.com/rill-authd/rill-authd/rillimport"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/store/badger"
	"github.com/rill-authd/rill-authd/token"
)

// importRill runs the real `rill-authd import-rill` on dataDir, the Rill database URL in the
// environment, and returns what it printed and its exit code.
func importRill(t *testing.T, dataDir, dbURL string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(testenv.Bin(t, "rill-authd"), append([]string{"import-rill", "--data-dir", dataDir}, args...)...)
	cmd.Env = append(os.Environ(), "RILL_AUTHD_RILL_DATABASE_URL="+dbURL)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return string(out), cmd.ProcessState.ExitCode()
}

var countsRe = regexp.MustCompile(`(?m)^rill-authd: (?:would import|imported) (\w+)s: (\d+) created, (\d+) updated, (\d+) unchanged, (\d+) pruned$`)

// printed reads the counts per kind an import printed.
func printed(t *testing.T, out string) map[string]rillimport.Counts {
	t.Helper()
	got := map[string]rillimport.Counts{}
	for _, m := range countsRe.FindAllStringSubmatch(out, -1) {
		n := func(i int) int { v, _ := strconv.Atoi(m[i]); return v }
		got[m[1]] = rillimport.Counts{Created: n(2), Updated: n(3), Unchanged: n(4), Pruned: n(5)}
	}
	if len(got) != len(rillimport.Kinds) {
		t.Fatalf("no counts per kind in:\n%s", out)
	}
	return got
}

func wantCounts(t *testing.T, out string, want map[string]rillimport.Counts) {
	t.Helper()
	got := printed(t, out)
	for _, k := range rillimport.Kinds {
		if got[k] != want[k] {
			t.Errorf("%ss: %+v, want %+v", k, got[k], want[k])
		}
	}
	if t.Failed() {
		t.Fatalf("import printed:\n%s", out)
	}
}

// withStore opens the Badger store in dir (the daemon stopped) for fn.
func withStore(t *testing.T, dir string, fn func(st *badger.DB)) {
	t.Helper()
	st, err := badger.Open(badger.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fn(st)
}

func lastSeq(t *testing.T, dir string) uint64 {
	t.Helper()
	var seq uint64
	withStore(t, dir, func(st *badger.DB) {
		var err error
		if seq, err = st.LastSeq(ctx); err != nil {
			t.Fatal(err)
		}
	})
	return seq
}

type verdict struct {
	status int
	h      http.Header
	attrs  map[string]any
}

// check asks the daemon's HTTP ext_authz about a request to path with bearer tok.
func check(t *testing.T, d *testenv.Daemon, tok, path string) verdict {
	t.Helper()
	req, _ := http.NewRequest("GET", d.URL()+"/ext_authz"+path, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	v := verdict{status: resp.StatusCode, h: resp.Header}
	if a := resp.Header.Get("x-rill-attributes"); a != "" {
		b, err := base64.RawURLEncoding.DecodeString(a)
		if err != nil {
			t.Fatal(err)
		}
		json.Unmarshal(b, &v.attrs)
	}
	return v
}

// TestImportRillCommand runs the real binary against a Rill database seeded the way Rill
// writes one, then the real daemon on what it imported: Rill's own tokens work, with the roles,
// groups and attributes Rill gives them; re-runs are idempotent, show Rill's changes as
// updates, prune only with --prune, and write nothing with --dry-run.
func TestImportRillCommand(t *testing.T) {
	f := seed(t)
	dir := filepath.Join(t.TempDir(), "data")

	out, code := importRill(t, dir, f.db.URL)
	if code != 0 {
		t.Fatalf("import-rill exited %d:\n%s", code, out)
	}
	wantCounts(t, out, map[string]rillimport.Counts{"org": {Created: 2}, "project": {Created: 3}, "user": {Created: 5},
		"service": {Created: 2}, "token": {Created: 8}})
	for _, s := range []string{"left out 2 expired tokens", "3 project role bindings limited to some resources, as in Rill",
		"the store was empty: everything went in one bulk load"} {
		if !strings.Contains(out, s) {
			t.Errorf("import-rill did not say %q:\n%s", s, out)
		}
	}
	for _, tk := range []rillToken{f.alice, f.bob, f.carol, f.rep, f.erin, f.dave, f.bot, f.loader} {
		if strings.Contains(out, tk.Text) || strings.Contains(out, string(tk.Secret[:])) {
			t.Fatal("import-rill printed a secret")
		}
	}

	// Rill's hashes, under Rill's ids.
	withStore(t, dir, func(st *badger.DB) {
		for _, tk := range []rillToken{f.alice, f.bob, f.carol, f.rep, f.erin, f.dave, f.bot, f.loader} {
			got, err := st.GetToken(ctx, tk.ID)
			if err != nil || got.Hash != token.Hash(tk.hash()) {
				t.Errorf("token %s: %v (hash is sha256(secret): %v)", tk.ID, err, got.Hash == token.Hash(tk.hash()))
			}
		}
		if _, err := st.GetToken(ctx, f.carolOld.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("an expired token was imported: %v", err)
		}
	})

	// The daemon on the imported store takes Rill's tokens as Rill minted them. The store came
	// whole from Rill, so it has no bootstrap superuser: Rill's superuser administers it.
	d := testenv.Start(t, dir, "--token-exchange")
	if d.Token != "" {
		t.Error("the daemon bootstrapped a superuser of its own on a store loaded from Rill")
	}
	web := "/v1/orgs/acme/projects/web/x"
	cases := []struct {
		name, tok, path, kind, subject, orgRole, projectRole string
	}{
		{"org admin, a token whose id starts with zero bytes", f.alice.Text, web, "user", "alice@acme.io", "admin", "admin"},
		{"editor through a group", f.bob.Text, web, "user", "bob@acme.io", "viewer", "editor"},
		{"a superuser's token representing bob acts as bob", f.rep.Text, web, "user", "bob@acme.io", "viewer", "editor"},
		{"guest with a direct project role", f.carol.Text, web, "user", "carol@example.com", "guest", "viewer"},
		{"service with a project role", f.bot.Text, web, "service", "ci-bot", "", "admin"},
		{"service, org admin", f.loader.Text, "/v1/orgs/beta/projects/api/x", "service", "loader", "admin", "admin"},
		{"superuser", f.dave.Text, "/v1/orgs/beta/projects/api/x", "user", "dave@rilldata.com", "admin", "admin"},
	}
	for _, c := range cases {
		v := check(t, d, c.tok, c.path)
		if v.status != 200 || v.h.Get("x-rill-auth-kind") != c.kind || v.h.Get("x-rill-subject") != c.subject ||
			v.h.Get("x-rill-org-role") != c.orgRole || v.h.Get("x-rill-project-role") != c.projectRole {
			t.Errorf("%s: %d kind %q subject %q org role %q project role %q", c.name, v.status, v.h.Get("x-rill-auth-kind"),
				v.h.Get("x-rill-subject"), v.h.Get("x-rill-org-role"), v.h.Get("x-rill-project-role"))
		}
	}
	if v := check(t, d, f.bob.Text, web); !slices.Equal(anyStrings(v.attrs["groups"]), []string{"analysts", "autogroup:members", "autogroup:users", "partners"}) {
		t.Errorf("bob's groups attribute: %v", v.attrs["groups"])
	}
	if v := check(t, d, f.carol.Text, web); v.attrs["tier"] != "gold" || v.attrs["seats"] != float64(3) {
		t.Errorf("carol's attributes (set by acme in users_orgs_roles): %v", v.attrs)
	}
	// erin is in two orgs: on acme's project she has acme's attributes, and no group of beta's.
	// Her token is a refresh token in Rill (refresh = true), which Rill accepts as a bearer.
	if v := check(t, d, f.erin.Text, web); v.status != 200 || v.attrs["region"] != "us" || len(anyStrings(v.attrs["groups"])) != 0 {
		t.Errorf("erin on acme/web: %d, attributes %v (want acme's region and none of beta's groups)", v.status, v.attrs)
	}
	if v := check(t, d, f.bot.Text, web); v.attrs["team"] != "platform" || v.attrs["name"] != "ci-bot" {
		t.Errorf("ci-bot's attributes: %v", v.attrs)
	}
	// Roles Rill limits to some resources are roles here too; the runtime JWTs exchanged for
	// them carry Rill's rules (token/testdata/sec), decoded as the runtime decodes them.
	hib := "/v1/orgs/acme/projects/hibernated/x"
	for _, c := range []struct {
		name, tok, path string
		sec             []string
	}{
		{"carol, limited to an explore and a canvas", f.carol.Text, hib, []string{
			`{"transitiveAccess":{"resource":{"kind":"rill.runtime.v1.Explore","name":"carol_dash"}}}`,
			`{"transitiveAccess":{"resource":{"kind":"rill.runtime.v1.Canvas","name":"exec"}}}`}},
		{"erin, limited to nothing", f.erin.Text, hib, []string{`{"access":{}}`}},
		{"bob, the union of his binding and his group's", f.bob.Text, hib, []string{
			`{"transitiveAccess":{"resource":{"kind":"rill.runtime.v1.Explore","name":"partner_view"}}}`}},
		{"bob on web, where a group's binding is not limited", f.bob.Text, web, nil},
		{"carol on web", f.carol.Text, web, nil},
		{"alice, an org admin without project rows", f.alice.Text, hib, nil},
	} {
		v := check(t, d, c.tok, c.path)
		if v.status != 200 {
			t.Errorf("%s: %d, want 200", c.name, v.status)
			continue
		}
		sec := exchangedSec(t, v.h.Get("Authorization"))
		if len(sec) != len(c.sec) {
			t.Errorf("%s: sec %s, want %s", c.name, sec, c.sec)
			continue
		}
		if _, err := rillruntime.DecodeSec(sec); err != nil {
			t.Errorf("%s: the runtime cannot decode sec: %v", c.name, err)
		}
		for i := range sec {
			if string(sec[i]) != c.sec[i] {
				t.Errorf("%s: sec[%d] = %s, want %s", c.name, i, sec[i], c.sec[i])
			}
		}
	}
	if fixture, _ := os.ReadFile("../token/testdata/sec/deny_all.json"); strings.TrimSpace(string(fixture)) != `{"access":{}}` {
		t.Errorf("deny-all fixture: %s", fixture)
	}
	mangled := f.bob.Text[:len(f.bob.Text)-1] + string("0123456789"[(strings.IndexByte("0123456789", f.bob.Text[len(f.bob.Text)-1])+1)%10])
	for name, tok := range map[string]string{"expired": f.carolOld.Text, "mangled": mangled} {
		if v := check(t, d, tok, web); v.status != 401 {
			t.Errorf("%s token: %d, want 401", name, v.status)
		}
	}
	d.Stop(t)

	// Again: nothing changed.
	out, code = importRill(t, dir, f.db.URL)
	if code != 0 {
		t.Fatalf("re-run exited %d:\n%s", code, out)
	}
	wantCounts(t, out, map[string]rillimport.Counts{"org": {Unchanged: 2}, "project": {Unchanged: 3}, "user": {Unchanged: 5},
		"service": {Unchanged: 2}, "token": {Unchanged: 8}})

	// Rill changes: a redeploy, a group's role, a service's attributes. A dry run says so and
	// writes nothing; the import then applies them.
	f.db.deploy("Acme", "web", "https://rt9.example.com", "inst-web-2", "main")
	f.db.exec("UPDATE usergroups_projects_roles SET project_role_id = (SELECT id FROM project_roles WHERE name = 'viewer')")
	f.db.exec(`UPDATE service SET attributes = '{"team": "data"}' WHERE name = 'ci-bot'`)
	changed := map[string]rillimport.Counts{"org": {Unchanged: 2}, "project": {Updated: 1, Unchanged: 2},
		"user": {Updated: 1, Unchanged: 4}, "service": {Updated: 1, Unchanged: 1}, "token": {Unchanged: 8}}
	seq := lastSeq(t, dir)
	out, code = importRill(t, dir, f.db.URL, "--dry-run")
	if code != 0 {
		t.Fatalf("dry run exited %d:\n%s", code, out)
	}
	wantCounts(t, out, changed)
	for _, s := range []string{"would update project acme/web (runtime https://rt9.example.com, instance inst-web-2)",
		"would update user bob@acme.io", "would update service acme/ci-bot", "dry run: nothing was written"} {
		if !strings.Contains(out, s) {
			t.Errorf("dry run did not say %q:\n%s", s, out)
		}
	}
	if got := lastSeq(t, dir); got != seq {
		t.Fatalf("the dry run wrote: change feed %d -> %d", seq, got)
	}
	out, code = importRill(t, dir, f.db.URL)
	if code != 0 {
		t.Fatalf("import of the changes exited %d:\n%s", code, out)
	}
	wantCounts(t, out, changed)
	withStore(t, dir, func(st *badger.DB) {
		if p, _ := st.GetProject(ctx, "acme", "web"); p.RuntimeHost != "https://rt9.example.com" || p.InstanceID != "inst-web-2" {
			t.Errorf("acme/web after the redeploy: %+v", p)
		}
	})

	// Rill deletes carol (her tokens go with her), the loader service and alice's token.
	f.db.exec("DELETE FROM users WHERE id = $1", f.db.id("user:Carol@Example.com"))
	f.db.exec("DELETE FROM service WHERE id = $1", f.db.id("service:beta/loader"))
	f.db.exec("DELETE FROM user_auth_tokens WHERE id = $1", f.alice.ID.String())
	out, code = importRill(t, dir, f.db.URL)
	if code != 0 {
		t.Fatalf("import after deletes exited %d:\n%s", code, out)
	}
	wantCounts(t, out, map[string]rillimport.Counts{"org": {Unchanged: 2}, "project": {Unchanged: 3}, "user": {Unchanged: 4},
		"service": {Unchanged: 1}, "token": {Unchanged: 5}})
	out, code = importRill(t, dir, f.db.URL, "--prune")
	if code != 0 {
		t.Fatalf("import --prune exited %d:\n%s", code, out)
	}
	wantCounts(t, out, map[string]rillimport.Counts{"org": {Unchanged: 2}, "project": {Unchanged: 3}, "user": {Unchanged: 4, Pruned: 1},
		"service": {Unchanged: 1, Pruned: 1}, "token": {Unchanged: 5, Pruned: 3}})
	for _, s := range []string{"pruned user carol@example.com", "pruned service beta/loader", "pruned token " + f.alice.ID.String() + " of alice@acme.io"} {
		if !strings.Contains(out, s) {
			t.Errorf("import --prune did not say %q:\n%s", s, out)
		}
	}

	d = testenv.Start(t, dir)
	for name, tok := range map[string]string{"alice's (deleted in Rill)": f.alice.Text, "carol's (user deleted in Rill)": f.carol.Text,
		"loader's (service deleted in Rill)": f.loader.Text} {
		if v := check(t, d, tok, web); v.status != 401 {
			t.Errorf("%s token after --prune: %d, want 401", name, v.status)
		}
	}
	if v := check(t, d, f.bob.Text, web); v.status != 200 || v.h.Get("x-rill-project-role") != "viewer" {
		t.Errorf("bob after his group became viewer: %d %q", v.status, v.h.Get("x-rill-project-role"))
	}
	d.Stop(t)
}

func anyStrings(v any) []string {
	var out []string
	xs, _ := v.([]any)
	for _, x := range xs {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// TestImportRillCommandFailures: an unreachable database and a schema without a table each
// exit non-zero with a clear message, and leave the store as it was (a new one not even
// created), never printing the database password.
func TestImportRillCommandFailures(t *testing.T) {
	f := seed(t)
	dir := filepath.Join(t.TempDir(), "data")
	if out, code := importRill(t, dir, f.db.URL); code != 0 {
		t.Fatalf("import-rill exited %d:\n%s", code, out)
	}
	seq := lastSeq(t, dir)

	broken := newRillDB(t)
	broken.exec("DROP TABLE usergroups_users")
	unreachable := "postgres://rill:s3cret-pw@127.0.0.1:1/rill?sslmode=disable&connect_timeout=5"
	for name, c := range map[string]struct{ url, says string }{
		"unreachable":   {unreachable, "connect to the Rill database at 127.0.0.1:1/rill"},
		"missing table": {broken.URL, "missing table usergroups_users"},
		"bad URL":       {"postgres://rill:s3cret-pw@[::1", "the Rill database URL does not parse"},
	} {
		t.Run(name, func(t *testing.T) {
			for _, d := range []string{dir, filepath.Join(t.TempDir(), "new")} {
				out, code := importRill(t, d, c.url)
				if code == 0 || !strings.Contains(out, c.says) || !strings.Contains(out, "import-rill") {
					t.Errorf("exit %d, want non-zero and %q:\n%s", code, c.says, out)
				}
				if strings.Contains(out, "s3cret-pw") {
					t.Errorf("the password was printed:\n%s", out)
				}
				if d != dir {
					if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
						t.Errorf("a failed import created the store directory: %v", err)
					}
				}
			}
			if got := lastSeq(t, dir); got != seq {
				t.Errorf("a failed import wrote: change feed %d -> %d", seq, got)
			}
		})
	}
}

// TestImportRillIntoPostgres imports into a PostgreSQL store (--store), where the first import
// is one transaction, and imports again while a daemon runs on it: the daemon sees Rill's
// change without a restart. The store's database cannot be Rill's own.
func TestImportRillIntoPostgres(t *testing.T) {
	f := seed(t)
	db := newDatabase(t)
	out, code := importRill(t, "", f.db.URL, "--store", f.db.URL)
	if code == 0 || !strings.Contains(out, "name the same database") {
		t.Fatalf("import into Rill's own database: exit %d:\n%s", code, out)
	}
	out, code = importRill(t, "", f.db.URL, "--store", db)
	if code != 0 {
		t.Fatalf("import-rill --store exited %d:\n%s", code, out)
	}
	wantCounts(t, out, map[string]rillimport.Counts{"org": {Created: 2}, "project": {Created: 3}, "user": {Created: 5},
		"service": {Created: 2}, "token": {Created: 8}})
	if !strings.Contains(out, "one bulk load (on PostgreSQL, one transaction)") {
		t.Errorf("the first import into an empty PostgreSQL store was not one load:\n%s", out)
	}

	d := testenv.Start(t, "", "--store", db)
	web := "/v1/orgs/acme/projects/web/x"
	if v := check(t, d, f.bob.Text, web); v.status != 200 || v.h.Get("x-rill-project-role") != "editor" {
		t.Fatalf("bob: %d %q", v.status, v.h.Get("x-rill-project-role"))
	}
	f.db.exec("UPDATE usergroups_projects_roles SET project_role_id = (SELECT id FROM project_roles WHERE name = 'viewer')")
	out, code = importRill(t, "", f.db.URL, "--store", db)
	if code != 0 {
		t.Fatalf("import-rill with the daemon running exited %d:\n%s", code, out)
	}
	wantCounts(t, out, map[string]rillimport.Counts{"org": {Unchanged: 2}, "project": {Unchanged: 3}, "user": {Updated: 1, Unchanged: 4},
		"service": {Unchanged: 2}, "token": {Unchanged: 8}})
	deadline := time.Now().Add(5 * time.Second)
	for {
		v := check(t, d, f.bob.Text, web)
		if v.status == 200 && v.h.Get("x-rill-project-role") == "viewer" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the running daemon did not see bob's new role: %d %q", v.status, v.h.Get("x-rill-project-role"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.Stop(t)
}

// exchangedSec is the sec claim of the runtime JWT the exchange put in authorization.
func exchangedSec(t *testing.T, authorization string) []json.RawMessage {
	t.Helper()
	parts := strings.Split(strings.TrimPrefix(authorization, "Bearer "), ".")
	if len(parts) != 3 {
		t.Fatalf("no exchanged JWT in %q", authorization)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Sec []json.RawMessage `json:"sec"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c.Sec
}
