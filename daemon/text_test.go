package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	bdg "github.com/dgraph-io/badger/v4"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/adminapi/client"
	"github.com/rill-authd/rill-authd/internal/testenv"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/store/badger"
	"github.com/rill-authd/rill-authd/token"
)

// call makes one admin request with a raw body and returns its status and body.
func call(t *testing.T, d *testenv.Daemon, tok, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, d.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestTextNoEngineCanStoreIs400 sends a NUL (and bytes that are not UTF-8) in every text field
// a request can set, and in the paths and queries that look records up, to a daemon on each
// engine: every one is a 400 that names the field (PostgreSQL answered 500, Badger stored it),
// nothing of it is stored, and the store still copies to the other engine.
func TestTextNoEngineCanStoreIs400(t *testing.T) {
	db, _ := testenv.PostgresDB(t, "")
	for _, engine := range []string{"badger", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			ctx := context.Background()
			dir := filepath.Join(t.TempDir(), "data")
			var d *testenv.Daemon
			if engine == "badger" {
				d = testenv.Start(t, dir)
			} else {
				d = testenv.Start(t, "", "--store", db)
			}
			c := client.New(d.URL(), d.Token)
			acmeService(t, c, "ci")
			if _, err := c.CreateUser(ctx, apiv1.UserRequest{Email: "ada@acme.test", Org: "acme", OrgRole: "viewer"}); err != nil {
				t.Fatal(err)
			}
			nul := func(v any) string { // a JSON body whose strings hold what the test put in
				b, err := json.Marshal(v)
				if err != nil {
					t.Fatal(err)
				}
				return string(b)
			}
			cases := []struct {
				name, method, path, body, field string
			}{
				{"email", "POST", "/v1/users", nul(map[string]any{"email": "bob\x00@acme.test", "org": "acme"}), "email"},
				{"display name", "POST", "/v1/users", nul(map[string]any{"email": "bob@acme.test", "display_name": "Bob\x00"}), "display_name"},
				{"group", "POST", "/v1/users", nul(map[string]any{"email": "bob@acme.test", "org": "acme", "groups": []string{"ops", "a\x00"}}), "groups[1]"},
				{"user attribute key", "POST", "/v1/users", nul(map[string]any{"email": "bob@acme.test", "org": "acme", "attributes": map[string]any{"te\x00am": "x"}}), "a key of field attributes"},
				{"user attribute value", "POST", "/v1/users", nul(map[string]any{"email": "bob@acme.test", "org": "acme", "attributes": map[string]any{"team": map[string]any{"deep": []any{1, "x\x00"}}}}), "field attributes.team.deep[1] holds a NUL"},
				{"service attribute key", "POST", "/v1/orgs/acme/services", nul(map[string]any{"name": "etl", "attributes": map[string]any{"\x00": 1}}), "a key of field attributes"},
				{"service attribute value", "PATCH", "/v1/orgs/acme/services/ci", nul(map[string]any{"attributes": map[string]any{"k": "v\x00"}}), "field attributes.k holds a NUL"},
				{"token name", "POST", "/v1/tokens", nul(map[string]any{"display_name": "laptop\x00", "user_email": "ada@acme.test"}), "display_name"},
				{"service name", "POST", "/v1/orgs/acme/services", nul(map[string]any{"name": "et\x00l"}), "name"},
				{"email in the path", "PUT", "/v1/users/ada%00@acme.test/roles", `{"org":"acme","org_role":"editor"}`, "path"},
				{"bytes not UTF-8 in the path", "DELETE", "/v1/users/ada%ff@acme.test", "", "not valid UTF-8"},
				{"email in the query", "GET", "/v1/tokens?user_email=ada%00@acme.test", "", "query"},
				{"token name in the query", "DELETE", "/v1/tokens?display_name=lap%00top", "", "query"},
				{"credentials user_email", "POST", "/v1/orgs/acme/projects/web/credentials", `{"user_email":"ada\u0000@acme.test"}`, "user_email"},
			}
			for _, tc := range cases {
				code, body := call(t, d, d.Token, tc.method, tc.path, tc.body)
				if code != http.StatusBadRequest || !strings.Contains(body, tc.field) {
					t.Errorf("%s: %d %s, want 400 naming %s", tc.name, code, body, tc.field)
				}
			}
			// Nothing of it went in, and a good request still works.
			users, err := c.ListUsers(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range users {
				if strings.Contains(u.Email, "bob") || bytes.ContainsRune([]byte(u.DisplayName), 0) {
					t.Errorf("stored: %+v", u)
				}
			}
			if _, err := c.IssueToken(ctx, apiv1.TokenRequest{UserEmail: "ada@acme.test", DisplayName: "laptop ✓"}); err != nil {
				t.Errorf("a good token name after the refusals: %v", err)
			}
			if strings.Contains(d.Stderr(), "admin request failed") {
				t.Errorf("a refusal was logged as a failure:\n%s", d.Stderr())
			}
			d.Stop(t)
			if engine == "badger" { // and the store copies to PostgreSQL whole
				to, _ := testenv.PostgresDB(t, "")
				if out, err := copyStore(t, "--from", dir, "--to", to); err != nil {
					t.Errorf("copy-store of the store after the refusals: %v\n%s", err, out)
				}
			}
		})
	}
}

// TestCopyStoreNamesARecordPostgreSQLCannotStore: a Badger store that took a NUL before the
// admin API refused it is not copied to PostgreSQL in part or with a bare COPY error: the
// record is named, on stderr, and nothing is written. Once fixed, the copy's result is on
// stdout and its progress on stderr.
func TestCopyStoreNamesARecordPostgreSQLCannotStore(t *testing.T) {
	db, _ := testenv.PostgresDB(t, "")
	dir := filepath.Join(t.TempDir(), "data")
	ctx := context.Background()
	st, err := badger.Open(badger.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	u := store.User{ID: token.NewID(), Email: "ada@acme.test", DisplayName: "Ada Lovelace"}
	if err := st.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	st.Close()
	// As a store written before the engines refused it holds it: the record's bytes, by hand.
	raw, err := bdg.Open(bdg.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	err = raw.Update(func(txn *bdg.Txn) error {
		u.DisplayName = "Ada\x00Lovelace"
		b, _ := json.Marshal(u)
		return txn.Set([]byte("user/"+u.ID), b)
	})
	raw.Close()
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := runSplit(t, "copy-store", "--from", dir, "--to", db)
	want := `user ` + u.ID + ` ("ada@acme.test"): field display_name holds a NUL character`
	if err == nil || !strings.Contains(stderr, want) || !strings.Contains(stderr, "nothing was written") || stdout != "" {
		t.Fatalf("copy-store of a store with a NUL: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	if n := query[int64](t, db, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"); n != 0 {
		t.Errorf("a refused copy touched the destination: %d tables", n)
	}

	st, err = badger.Open(badger.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.UpdateUser(ctx, u.ID, func(u *store.User) error { u.DisplayName = "Ada Lovelace"; return nil }); err != nil {
		t.Fatal(err)
	}
	st.Close()
	stdout, stderr, err = runSplit(t, "copy-store", "--from", dir, "--to", db)
	if err != nil || !strings.Contains(stdout, "copied "+dir+" to ") || !strings.Contains(stdout, ": 0 orgs, 0 projects, 1 user, 0 services") ||
		!strings.Contains(stderr, "reading "+dir) || strings.Contains(stderr, "copied") {
		t.Errorf("copy-store: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
}
