package rillruntime_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v4"

	"github.com/rill-authd/rill-authd/internal/testenv"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/store/badger"
	"github.com/rill-authd/rill-authd/token"
)

// seeded is what seed put in the store before the daemon started.
type seeded struct {
	viewerID, adminID, serviceID string
	serviceToken, rillToken      string // ours for the service; Rill's format for the admin user
}

// seed writes, as an import from Rill would, an org with a plain project and one whose prod
// deployment runs on a runtime of its own, a viewer, an org admin holding a token in Rill's own
// format (stored under its UUID with Rill's secret hash), and an admin service with a token.
func seed(t *testing.T, dir string) seeded {
	t.Helper()
	st, err := badger.Open(badger.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, now := context.Background(), time.Now().UTC()
	s := seeded{viewerID: token.NewID(), adminID: token.NewID(), serviceID: token.NewID()}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.CreateOrg(ctx, store.Org{Name: "acme", CreatedAt: now}))
	must(st.CreateProject(ctx, store.Project{Org: "acme", Name: "web", CreatedAt: now}))
	must(st.CreateProject(ctx, store.Project{Org: "acme", Name: "imported", CreatedAt: now, RuntimeHost: "https://rt-imported.test",
		InstanceID: "inst-imp", RuntimeAudience: "https://rt-imported.test/aud", ProdBranch: "main"}))
	must(st.CreateUser(ctx, store.User{ID: s.viewerID, Email: "viewer@acme.io", DisplayName: "Vi", OrgRoles: map[string]policy.Role{"acme": policy.Viewer},
		ProjectRoles: map[string]policy.Role{"acme/web": policy.Viewer}, Orgs: map[string]store.UserOrg{"acme": {Groups: []string{"analysts"}}}, CreatedAt: now, UpdatedAt: now}))
	must(st.CreateUser(ctx, store.User{ID: s.adminID, Email: "admin@acme.io", OrgRoles: map[string]policy.Role{"acme": policy.Admin}, CreatedAt: now, UpdatedAt: now}))
	must(st.CreateService(ctx, store.Service{ID: s.serviceID, Org: "acme", Name: "embedder", OrgRole: policy.Admin,
		Attributes: map[string]any{"tenant": "t1"}, CreatedAt: now, UpdatedAt: now}))
	tok, err := token.New(token.Service)
	must(err)
	must(st.CreateToken(ctx, store.NewToken(tok, s.serviceID, "", "seed", now, 0)))
	s.serviceToken = tok.Encode()
	// A user token as Rill mints it: big.Int(id ‖ secret).Text(62), secret_hash = SHA-256(secret).
	var raw [40]byte
	_, err = rand.Read(raw[:])
	must(err)
	var id token.ID
	copy(id[:], raw[:16])
	sum := sha256.Sum256(raw[16:])
	h, err := token.HashFromBytes(sum[:])
	must(err)
	must(st.ImportTokens(ctx, []store.Token{{ID: id, Kind: token.User, OwnerID: s.adminID, Prefix: token.RillDisplay(token.User, id), Hash: h, CreatedAt: now}}))
	s.rillToken = "rill_usr_" + new(big.Int).SetBytes(raw[:]).Text(62)
	return s
}

func do(t *testing.T, method, url, bearer, body string) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// TestRuntimeAcceptsOurJWTs runs the real daemon (default issuer: its admin listener's URL) and
// checks the JWTs of both paths, the credentials endpoint and the token exchange, with the
// runtime-style verifier, and the credentials tokens against our own check too.
func TestRuntimeAcceptsOurJWTs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s := seed(t, dir)
	d := testenv.Start(t, dir, "--token-exchange", "--runtime-audience", "https://runtime.test", "--runtime-host", "https://runtime.test")
	issuer := d.URL()
	if !strings.Contains(d.Stderr(), "issuer="+issuer) {
		t.Fatalf("the daemon does not say its issuer is %s:\n%s", issuer, d.Stderr())
	}
	ctx := context.Background()
	runtimeWeb, err := openAudience(ctx, issuer, "https://runtime.test")
	if err != nil {
		t.Fatal(err)
	}
	runtimeImported, err := openAudience(ctx, issuer, "https://rt-imported.test/aud")
	if err != nil {
		t.Fatal(err)
	}
	reader := []int{0x15, 0x17, 0x19, 0x1B}
	manager := []int{0x15, 0x17, 0x19, 0x1B, 0x1A, 0x20, 0x11}

	credentials := func(project, body string) map[string]any {
		t.Helper()
		code, _, b := do(t, "POST", issuer+"/v1/orgs/acme/projects/"+project+"/credentials", s.serviceToken, body)
		var out map[string]any
		if code != 200 || json.Unmarshal(b, &out) != nil {
			t.Fatalf("credentials %s: %d %s", body, code, b)
		}
		return out
	}
	// ourCheck asks our own check (HTTP mode) about a request to the runtime with bearer, and
	// returns the status and the runtime token the exchange put in its place.
	ourCheck := func(project, bearer string) (int, string) {
		t.Helper()
		code, h, _ := do(t, "GET", issuer+"/ext_authz/v1/orgs/acme/projects/"+project+"/runtime/api/sales", bearer, "")
		return code, strings.TrimPrefix(h.Get("Authorization"), "Bearer ")
	}
	expect := func(what string, a *audience, raw, instance, sub string, perms []int, attrs map[string]any) *jwtClaims {
		t.Helper()
		c, err := a.parseAndValidate(raw)
		if err != nil {
			t.Fatalf("%s: the runtime refuses it: %v", what, err)
		}
		sc := c.claims(instance)
		if sc.UserID != sub || !slices.Equal(sc.Permissions, perms) || c.Security != nil {
			t.Errorf("%s: the runtime sees user %q with permissions %#x, want %q with %#x", what, sc.UserID, sc.Permissions, sub, perms)
		}
		for k, v := range attrs {
			if got, _ := json.Marshal(sc.Attributes[k]); string(got) != mustJSON(v) {
				t.Errorf("%s: attribute %s = %s, want %s", what, k, got, mustJSON(v))
			}
		}
		if len(c.Audience) != 1 || c.Header(raw)["kid"] == nil {
			t.Errorf("%s: aud %v, header %v", what, c.Audience, c.Header(raw))
		}
		return c
	}

	// 1. Credentials for a known user, by id: the runtime sees the user's UUID and attributes;
	// our check accepts the token too.
	out := credentials("web", `{"user_id":"`+s.viewerID+`","ttl_seconds":600}`)
	if out["runtimeHost"] != "https://runtime.test" || out["instanceId"] != "default" || out["ttlSeconds"] != float64(600) {
		t.Errorf("credentials response %v", out)
	}
	tok := out["accessToken"].(string)
	expect("credentials by user_id", runtimeWeb, tok, "default", s.viewerID, reader,
		map[string]any{"email": "viewer@acme.io", "name": "Vi", "domain": "acme.io", "groups": []string{"analysts"}, "admin": false, "id": s.viewerID})
	if code, _ := ourCheck("web", tok); code != 200 {
		t.Errorf("our check refuses the credentials token: %d", code)
	}

	// 2. Credentials in camelCase for a project with a runtime of its own: its audience, host
	// and instance; a runtime with another audience refuses the token.
	out = credentials("imported", `{"attributes":{"email":"end@customer.io","tenant":"c9"},"ttlSeconds":"300","branch":"main"}`)
	if out["runtimeHost"] != "https://rt-imported.test" || out["instanceId"] != "inst-imp" {
		t.Errorf("imported project's credentials response %v", out)
	}
	tok = out["accessToken"].(string)
	expect("credentials with attributes", runtimeImported, tok, "inst-imp", "", reader, map[string]any{"email": "end@customer.io", "tenant": "c9", "id": ""})
	if _, err := runtimeWeb.parseAndValidate(tok); err == nil || !strings.Contains(err.Error(), "invalid token audience") {
		t.Errorf("a runtime of another audience took the token: %v", err)
	}
	if code, _ := ourCheck("imported", tok); code != 200 {
		t.Errorf("our check refuses the imported project's credentials token: %d", code)
	}

	// 3. The token exchange, for our service token: sub the service's UUID, its attributes, an
	// org admin's runtime permissions.
	code, exchanged := ourCheck("web", s.serviceToken)
	if code != 200 || exchanged == "" {
		t.Fatalf("exchange for the service: %d %q", code, exchanged)
	}
	expect("exchanged for a service", runtimeWeb, exchanged, "default", s.serviceID, manager, map[string]any{"name": "embedder", "admin": true, "tenant": "t1"})

	// 4. The exchange for an imported Rill-format user token, on the imported project.
	code, exchanged = ourCheck("imported", s.rillToken)
	if code != 200 || exchanged == "" {
		t.Fatalf("exchange for a Rill-format token: %d", code)
	}
	expect("exchanged for a Rill-format user token", runtimeImported, exchanged, "inst-imp", s.adminID, manager, map[string]any{"email": "admin@acme.io", "admin": true})

	// 5. A runtime whose clock is a few seconds behind ours still takes fresh tokens: iat and
	// nbf are set back (v4 checks them with no leeway).
	fresh := credentials("web", `{"user_email":"late@customer.io"}`)["accessToken"].(string)
	jwt.TimeFunc = func() time.Time { return time.Now().Add(-3 * time.Second) }
	_, err = runtimeWeb.parseAndValidate(fresh)
	jwt.TimeFunc = time.Now
	if err != nil {
		t.Errorf("a runtime 3s behind refuses a fresh token: %v", err)
	}

	// 6. The verifier is a real one: a changed payload, another issuer, an expired token fail.
	parts := strings.Split(fresh, ".")
	forged := parts[0] + "." + parts[1][:len(parts[1])-2] + "AA." + parts[2]
	if _, err := runtimeWeb.parseAndValidate(forged); err == nil {
		t.Error("a forged token passed")
	}
	other, _ := openAudience(ctx, issuer+"/", "https://runtime.test")
	if _, err := other.parseAndValidate(fresh); err == nil || !strings.Contains(err.Error(), "invalid token issuer") {
		t.Errorf("a runtime configured with another issuer URL took the token: %v", err)
	}
	jwt.TimeFunc = func() time.Time { return time.Now().Add(25 * time.Hour) }
	_, err = runtimeWeb.parseAndValidate(fresh)
	jwt.TimeFunc = time.Now
	if err == nil {
		t.Error("a token past its exp passed")
	}

	// 7. After an emergency rotation (the new key signs at once) a runtime free to refetch
	// fetches the JWKS again for the new kid (rotation_test.go has the rate-limited runtime).
	if code, _, b := do(t, "POST", issuer+"/v1/admin/signing-keys/rotate", d.Token, `{"now":true}`); code != 200 {
		t.Fatalf("rotate: %d %s", code, b)
	}
	rotated := credentials("web", `{"userEmail":"after@customer.io"}`)["accessToken"].(string)
	expect("credentials after a key rotation", runtimeWeb, rotated, "default", "", reader, map[string]any{"email": "after@customer.io", "admin": false})
	expect("a token of the retired key", runtimeWeb, fresh, "default", "", reader, nil)
}

// Header decodes the header of a compact JWT.
func (c *jwtClaims) Header(raw string) map[string]any {
	t, _, err := new(jwt.Parser).ParseUnverified(raw, &jwtClaims{})
	if err != nil {
		return nil
	}
	return t.Header
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
