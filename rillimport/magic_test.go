package rillimport_test

import (
	"errors"
	"os"
	"path/filepath"
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

// magicToken issues a public URL on org/project as Rill's IssueMagicAuthToken does
// (admin/auth_token.go, admin/server/magic_tokens.go): a rill_mgc_ token, its secret's SHA-256
// stored under its UUID with the resources, the filters (metrics view -> protojson, stored as a
// JSON string), the fields and its creator's attributes.
func (db *rillDB) magicToken(org, project, creator string, expires *time.Time, resources, filters string, fields []string) rillToken {
	tk := mintRill("mgc", newUUID())
	h := tk.hash()
	db.exec(`INSERT INTO magic_auth_tokens (id, secret_hash, project_id, expires_on, created_by_user_id, attributes, resources,
		metrics_view_filter_jsons, fields, state, display_name)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'c3RhdGU=', 'partner link')`, tk.ID.String(), h[:], db.id("project:"+org+"/"+project), expires,
		db.id("user:"+creator), `{"email":"`+creator+`","admin":false,"groups":["analysts"]}`, resources, filters, fields)
	return tk
}

// TestImportMagicTokens: import-rill brings Rill's live public URLs with what each opens, under
// Rill's ids and hashes, so a link Rill handed out works at our check (read on its project
// only, exchanged with Rill's rules); an expired one is left out.
func TestImportMagicTokens(t *testing.T) {
	f := seed(t)
	past := time.Now().Add(-time.Hour)
	filter := `{"cond":{"op":"OPERATION_EQ","exprs":[{"ident":"country"},{"val":"DK"}]}}`
	live := f.db.magicToken("Acme", "web", "bob@acme.io", nil, `[{"type":"rill.runtime.v1.Explore","name":"sales_explore"}]`,
		`{"sales": `+jsonString(filter)+`}`, []string{"country", "revenue"})
	old := f.db.magicToken("Acme", "web", "bob@acme.io", &past, `[]`, `{}`, []string{})
	dir := filepath.Join(t.TempDir(), "data")
	out, code := importRill(t, dir, f.db.URL)
	if code != 0 {
		t.Fatalf("import-rill exited %d:\n%s", code, out)
	}
	wantCounts(t, out, map[string]rillimport.Counts{"org": {Created: 2}, "project": {Created: 3}, "user": {Created: 5},
		"service": {Created: 2}, "token": {Created: 9}})
	if !strings.Contains(out, "left out 3 expired tokens") || strings.Contains(out, live.Text) {
		t.Errorf("import-rill's report:\n%s", out)
	}
	withStore(t, dir, func(st *badger.DB) {
		got, err := st.GetToken(ctx, live.ID)
		if err != nil || got.Kind != token.Magic || got.Hash != token.Hash(live.hash()) || got.OwnerID != "acme/web" || got.Magic == nil ||
			got.Magic.Filters["sales"] != filter || len(got.Magic.Fields) != 2 || len(got.Magic.Resources) != 1 ||
			got.Magic.Attributes["email"] != "bob@acme.io" || got.DisplayName != "partner link" || got.Magic.State != "c3RhdGU=" {
			t.Fatalf("the imported public URL: %+v %+v, %v", got, got.Magic, err)
		}
		if _, err := st.GetToken(ctx, old.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("an expired public URL was imported: %v", err)
		}
	})

	d := testenv.Start(t, dir, "--token-exchange")
	v := check(t, d, live.Text, "/v1/orgs/acme/projects/web/x")
	if v.status != 200 || v.h.Get("x-rill-auth-kind") != "magic" || v.attrs["email"] != "bob@acme.io" {
		t.Fatalf("Rill's public URL at our check: %d kind %q attributes %v", v.status, v.h.Get("x-rill-auth-kind"), v.attrs)
	}
	sec := exchangedSec(t, v.h.Get("Authorization"))
	if _, err := rillruntime.DecodeSec(sec); err != nil {
		t.Errorf("the runtime cannot decode sec: %v", err)
	}
	want := []string{`{"transitiveAccess":{"resource":{"kind":"rill.runtime.v1.Explore","name":"sales_explore"}}}`,
		`{"rowFilter":{"conditionResources":[{"kind":"rill.runtime.v1.MetricsView","name":"sales"}],"expression":` + filter + `}}`,
		mustRead(t, "../token/testdata/sec/field_access_magic.json")}
	if len(sec) != len(want) {
		t.Fatalf("sec %s, want %s", sec, want)
	}
	for i := range want {
		if string(sec[i]) != want[i] {
			t.Errorf("sec[%d] = %s, want %s", i, sec[i], want[i])
		}
	}
	if v := check(t, d, live.Text, "/v1/orgs/acme/projects/hibernated/x"); v.status != 403 {
		t.Errorf("Rill's public URL on another project: %d, want 403", v.status)
	}
	if v := check(t, d, old.Text, "/v1/orgs/acme/projects/web/x"); v.status != 401 {
		t.Errorf("an expired public URL: %d, want 401", v.status)
	}
}

func jsonString(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestPruneMagicTokensOfADeletedProject: --prune revokes an imported public URL whose project
// Rill has deleted since (projects stay here; their links must not).
func TestPruneMagicTokensOfADeletedProject(t *testing.T) {
	f := seed(t)
	link := f.db.magicToken("Acme", "hibernated", "bob@acme.io", nil, `[{"type":"rill.runtime.v1.Explore","name":"e"}]`, `{}`, []string{})
	dir := filepath.Join(t.TempDir(), "data")
	if out, code := importRill(t, dir, f.db.URL); code != 0 {
		t.Fatalf("import-rill exited %d:\n%s", code, out)
	}
	pid := f.db.id("project:Acme/hibernated")
	f.db.exec("DELETE FROM deployments WHERE project_id = $1", pid)
	f.db.exec("DELETE FROM projects WHERE id = $1", pid) // its links go with it (ON DELETE CASCADE)
	if out, code := importRill(t, dir, f.db.URL, "--prune"); code != 0 {
		t.Fatalf("import-rill --prune exited %d:\n%s", code, out)
	}
	withStore(t, dir, func(st *badger.DB) {
		if _, err := st.GetToken(ctx, link.ID); !errors.Is(err, store.ErrRevoked) {
			t.Fatalf("a public URL of a project Rill deleted, after --prune: %v, want revoked", err)
		}
	})
}

// TestImportSaysWhyNoPublicURL: a Rill database whose magic_auth_tokens lacks a column the
// import reads brings no public URL, and the report says so rather than nothing.
func TestImportSaysWhyNoPublicURL(t *testing.T) {
	f := seed(t)
	f.db.exec("ALTER TABLE magic_auth_tokens DROP COLUMN fields")
	out, code := importRill(t, filepath.Join(t.TempDir(), "data"), f.db.URL, "--dry-run")
	if code != 0 || !strings.Contains(out, "left out every public URL: Rill's magic_auth_tokens has no column fields") {
		t.Fatalf("import-rill exited %d without saying why no public URL came:\n%s", code, out)
	}
}
