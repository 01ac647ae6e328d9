package adminapi_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/adminapi"
	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/adminapi/client"
	"github.com/rill-authd/rill-authd/keys"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/resolver"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/store/badger"
	"github.com/rill-authd/rill-authd/token"
)

// diskEnv is the API over a Badger store in a temp dir, with a superuser, acme's admin and an
// acme service (an org admin), each with a token.
type diskEnv struct {
	url    string
	st     *badger.DB
	res    *resolver.Resolver
	tokens map[string]string
}

func setupDisk(t *testing.T, wrap func(store.Store) store.Store) *diskEnv {
	t.Helper()
	st, err := badger.Open(badger.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ring := keys.NewRing(st, keys.Options{})
	res := resolver.New(st, resolver.Options{TouchInterval: -1, Issuer: "rill-authd", Audience: "rill", Keys: ring})
	t.Cleanup(res.Close)
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err = ring.Ensure(ctx)
	must(err)
	_, err = st.Bootstrap(ctx, func(context.Context) error { return nil })
	must(err)
	var api store.Store = st
	if wrap != nil {
		api = wrap(st)
	}
	mux := http.NewServeMux()
	adminapi.New(api, res, adminapi.Options{Issuer: "rill-authd", Audience: "rill", Keys: ring}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	e := &diskEnv{url: srv.URL, st: st, res: res, tokens: map[string]string{}}
	must(st.CreateOrg(ctx, store.Org{Name: "acme"}))
	must(st.CreateProject(ctx, store.Project{Org: "acme", Name: "web"}))
	must(st.CreateUser(ctx, store.User{ID: "u-su", Email: "root@x.io", Superuser: true}))
	must(st.CreateUser(ctx, store.User{ID: "u-admin", Email: "admin@acme.io", OrgRoles: map[string]policy.Role{"acme": "admin"}}))
	must(st.CreateService(ctx, store.Service{ID: "s-robot", Org: "acme", Name: "robot", OrgRole: "admin"}))
	for name, owner := range map[string]string{"su": "u-su", "admin": "u-admin", "admin2": "u-admin", "robot": "s-robot"} {
		k := token.User
		if strings.HasPrefix(owner, "s-") {
			k = token.Service
		}
		tok, err := token.New(k)
		must(err)
		must(st.CreateToken(ctx, store.NewToken(tok, owner, name, "", time.Now(), 0)))
		e.tokens[name] = tok.Encode()
	}
	return e
}

type answer struct {
	code   int
	header http.Header
	body   []byte
}

func (e *diskEnv) do(t *testing.T, method, path, bearer, contentType string, body io.Reader) answer {
	t.Helper()
	req, _ := http.NewRequest(method, e.url+path, body)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

// revoke posts RFC 7009's form.
func (e *diskEnv) revoke(t *testing.T, tok string) answer {
	t.Helper()
	return e.do(t, "POST", "/v1/revoke", "", "application/x-www-form-urlencoded", strings.NewReader(url.Values{"token": {tok}}.Encode()))
}

// works reports whether tok still authenticates (whoami), and the refusal if not.
func (e *diskEnv) works(t *testing.T, tok string) (bool, string) {
	t.Helper()
	a := e.do(t, "GET", "/v1/whoami", tok, "", nil)
	var apiErr apiv1.Error
	json.Unmarshal(a.body, &apiErr)
	return a.code == 200, apiErr.Message
}

func (e *diskEnv) audit(t *testing.T, actor string) []store.AuditEvent {
	t.Helper()
	evs, err := e.st.ListAudit(context.Background(), store.AuditFilter{Actor: actor, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestRevokeByHolder(t *testing.T) {
	e := setupDisk(t, nil)
	// The same id with another secret has a valid checksum but is not the token.
	held, err := token.Parse(e.tokens["admin"])
	if err != nil {
		t.Fatal(err)
	}
	forged := token.Token{Kind: held.Kind, ID: held.ID}
	rand.Read(forged.Secret[:])
	if a := e.revoke(t, forged.Encode()); a.code != 200 || len(a.body) != 0 {
		t.Fatalf("forged secret: %d %q", a.code, a.body)
	}
	if ok, why := e.works(t, e.tokens["admin"]); !ok {
		t.Fatalf("a wrong secret revoked the real token: %s", why)
	}

	// The holder revokes: form for the user token, JSON for the service's.
	ok := e.revoke(t, e.tokens["admin"])
	if ok.code != 200 || len(ok.body) != 0 || ok.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("revoke: %d %q %v", ok.code, ok.body, ok.header)
	}
	if works, why := e.works(t, e.tokens["admin"]); works || why != "token revoked" {
		t.Fatalf("after revoke: works=%v %q", works, why)
	}
	if works, _ := e.works(t, e.tokens["admin2"]); !works {
		t.Fatal("revoking one token stopped the owner's other token")
	}
	if a := e.do(t, "POST", "/v1/revoke", "", "application/json", strings.NewReader(`{"token":"`+e.tokens["robot"]+`","token_type_hint":"access_token"}`)); a.code != 200 || len(a.body) != 0 {
		t.Fatalf("JSON revoke: %d %q", a.code, a.body)
	}
	if works, why := e.works(t, e.tokens["robot"]); works || why != "token revoked" {
		t.Fatalf("service token after revoke: works=%v %q", works, why)
	}

	// A JWT cannot be revoked alone: 200, and it keeps working.
	cr := e.do(t, "POST", "/v1/orgs/acme/projects/web/credentials", e.tokens["su"], "application/json", strings.NewReader(`{"user_email":"x@y.io"}`))
	var creds apiv1.CredentialsResponse
	if err := json.Unmarshal(cr.body, &creds); err != nil || creds.AccessToken == "" {
		t.Fatalf("credentials: %d %s", cr.code, cr.body)
	}

	// Whatever the token, the answer is the same: nothing tells a live token from the rest.
	unknown, _ := token.New(token.User)
	for name, tok := range map[string]string{
		"unknown":         unknown.Encode(),
		"already revoked": e.tokens["admin"],
		"garbage":         "hello",
		"bad checksum":    e.tokens["su"][:len(e.tokens["su"])-2] + "zz",
		"empty":           "",
		"jwt":             creds.AccessToken,
		"forged secret":   forged.Encode(),
	} {
		a := e.revoke(t, tok)
		if a.code != ok.code || !bytes.Equal(a.body, ok.body) || a.header.Get("Content-Type") != ok.header.Get("Content-Type") ||
			a.header.Get("Content-Length") != ok.header.Get("Content-Length") {
			t.Errorf("%s: %d %q %v; a real revoke answered %d %q %v", name, a.code, a.body, a.header, ok.code, ok.body, ok.header)
		}
	}
	if _, err := e.res.Resolve(context.Background(), creds.AccessToken); err != nil {
		t.Errorf("the JWT stopped working: %v", err)
	}
	if works, _ := e.works(t, e.tokens["su"]); !works {
		t.Error("the superuser's token stopped working")
	}
	// A token in the query string is not read: it would be logged on the way.
	if a := e.do(t, "POST", "/v1/revoke?token="+url.QueryEscape(e.tokens["su"]), "", "application/x-www-form-urlencoded", nil); a.code != 200 {
		t.Errorf("empty form: %d", a.code)
	}
	if works, _ := e.works(t, e.tokens["su"]); !works {
		t.Error("a token in the query string was revoked")
	}

	// Refusals that depend on the request only, never on the token.
	big := "token=" + strings.Repeat("a", adminapi.MaxBody)
	if a := e.do(t, "POST", "/v1/revoke", "", "application/x-www-form-urlencoded", strings.NewReader(big)); a.code != http.StatusRequestEntityTooLarge {
		t.Errorf("over 1 MiB: %d %s", a.code, a.body)
	}
	if a := e.do(t, "POST", "/v1/revoke", "", "text/plain", strings.NewReader(e.tokens["su"])); a.code != http.StatusUnsupportedMediaType || !strings.Contains(string(a.body), "application/x-www-form-urlencoded") {
		t.Errorf("text/plain: %d %s", a.code, a.body)
	}
	if a := e.do(t, "POST", "/v1/revoke", "", "application/json", strings.NewReader(`{"token":`)); a.code != http.StatusBadRequest {
		t.Errorf("bad JSON: %d %s", a.code, a.body)
	}
	if works, _ := e.works(t, e.tokens["su"]); !works {
		t.Error("a refused request revoked a token")
	}

	// Exactly the two real revocations are audited, by the token holder.
	evs := e.audit(t, "token-holder")
	if len(evs) != 2 {
		t.Fatalf("audit: %+v", evs)
	}
	adminID, robotID := held.ID.String(), mustParse(t, e.tokens["robot"]).ID.String()
	if evs[0].Action != "token.revoke" || evs[0].Target != "user:admin@acme.io token:"+adminID || evs[0].Outcome != "ok" ||
		evs[1].Action != "service.token.revoke" || evs[1].Target != "service:acme/robot token:"+robotID {
		t.Errorf("audit events: %+v", evs)
	}
}

func mustParse(t *testing.T, s string) token.Token {
	t.Helper()
	tok, err := token.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestBackupEndpoint(t *testing.T) {
	e := setupDisk(t, nil)
	ctx := context.Background()

	// Only a superuser; refusals are audited as the route's action.
	for who, want := range map[string]int{"admin": 403, "robot": 403, "": 401} {
		a := e.do(t, "GET", "/v1/admin/backup", e.tokens[who], "", nil)
		if a.code != want || !strings.Contains(a.header.Get("Content-Type"), "json") {
			t.Errorf("%q: %d %s", who, a.code, a.body)
		}
	}
	denied := e.audit(t, "user:admin@acme.io")
	if len(denied) != 1 || denied[0].Action != "admin.backup" || !strings.HasPrefix(denied[0].Outcome, "denied: only a superuser") {
		t.Errorf("denied backup audited as %+v", denied)
	}

	// The client writes what the API streams; the file restores into a working store.
	var buf bytes.Buffer
	n, err := client.New(e.url, e.tokens["su"]).Backup(ctx, &buf)
	if err != nil || n != int64(buf.Len()) || n == 0 {
		t.Fatalf("client backup: %d bytes (%d buffered): %v", n, buf.Len(), err)
	}
	a := e.do(t, "GET", "/v1/admin/backup", e.tokens["su"], "", nil)
	if a.code != 200 || a.header.Get("Content-Type") != "application/octet-stream" || !strings.Contains(a.header.Get("Content-Disposition"), ".backup") {
		t.Fatalf("backup: %d %v", a.code, a.header)
	}
	if _, err := client.New(e.url, e.tokens["admin"]).Backup(ctx, io.Discard); err == nil || !strings.Contains(err.Error(), "only a superuser") {
		t.Errorf("client backup as admin: %v", err)
	}
	if evs := e.audit(t, "user:root@x.io"); len(evs) != 2 || evs[0].Action != "admin.backup" || evs[0].Outcome != "ok" {
		t.Errorf("backups audited as %+v", evs)
	}

	file := filepath.Join(t.TempDir(), "b")
	if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := badger.Restore(badger.Options{Dir: dir}, file, false); err != nil {
		t.Fatal(err)
	}
	restored, err := badger.Open(badger.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	res := resolver.New(restored, resolver.Options{TouchInterval: -1})
	defer res.Close()
	for name, tok := range e.tokens {
		if _, err := res.Resolve(ctx, tok); err != nil {
			t.Errorf("%s's token in the restored store: %v", name, err)
		}
	}
	// The backup holds its own audit event: it was written before the snapshot.
	if evs, _ := restored.ListAudit(ctx, store.AuditFilter{Actor: "user:root@x.io"}); len(evs) != 1 || evs[0].Action != "admin.backup" {
		t.Errorf("restored audit: %+v", evs)
	}
}

// pgLike is a store with no online backup, as PostgreSQL is.
type pgLike struct{ store.Store }

func TestBackupOfAStoreWithoutOne(t *testing.T) {
	e := setupDisk(t, func(s store.Store) store.Store { return pgLike{s} })
	a := e.do(t, "GET", "/v1/admin/backup", e.tokens["su"], "", nil)
	var apiErr apiv1.Error
	json.Unmarshal(a.body, &apiErr)
	if a.code != http.StatusNotImplemented || apiErr.Message != "this store has no online backup; for PostgreSQL use pg_dump" || apiErr.Code != 12 {
		t.Errorf("backup of a store without one: %d %s", a.code, a.body)
	}
	if a := e.do(t, "GET", "/v1/admin/backup", e.tokens["admin"], "", nil); a.code != 403 {
		t.Errorf("non-superuser: %d", a.code)
	}
	var cerr *client.Error
	if _, err := client.New(e.url, e.tokens["su"]).Backup(context.Background(), io.Discard); !errors.As(err, &cerr) || cerr.Status != 501 {
		t.Errorf("client: %v", err)
	}
}
