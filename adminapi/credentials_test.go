package adminapi_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/adminapi/client"
	"github.com/rill-authd/rill-authd/store"
)

// checkJWT runs an ext_authz check of raw against org/project and returns the HTTP status, the
// reason and the decoded x-rill-attributes.
func (e *env) checkJWT(t *testing.T, raw, org, project string) (int, string, map[string]any, map[string]string) {
	t.Helper()
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
		Method: "GET", Path: "/v1/orgs/" + org + "/projects/" + project + "/runtime/api/x", Headers: map[string]string{"authorization": "Bearer " + raw}}}}}
	resp := e.check.Check(context.Background(), req)
	if d := resp.GetDeniedResponse(); d != nil {
		return int(d.GetStatus().GetCode()), resp.GetStatus().GetMessage(), nil, nil
	}
	hdr := map[string]string{}
	for _, h := range resp.GetOkResponse().GetHeaders() {
		hdr[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	b, _ := base64.RawURLEncoding.DecodeString(hdr["x-rill-attributes"])
	var attrs map[string]any
	json.Unmarshal(b, &attrs)
	return 200, "", attrs, hdr
}

func (e *env) credentials(t *testing.T, who, org, project, body string) (int, apiv1.CredentialsResponse, string) {
	t.Helper()
	code, apiErr, b := e.call(t, who, "POST", "/v1/orgs/"+org+"/projects/"+project+"/credentials", body)
	var r apiv1.CredentialsResponse
	if code == 200 {
		// Exactly Rill's response: camelCase, every field present, ttlSeconds a number.
		var raw map[string]any
		if err := json.Unmarshal(b, &raw); err != nil || len(raw) != 4 || raw["runtimeHost"] == nil || raw["instanceId"] == nil {
			t.Fatalf("credentials response %s is not Rill's shape: %v", b, err)
		}
		if _, ok := raw["ttlSeconds"].(float64); !ok {
			t.Fatalf("ttlSeconds in %s is not a number", b)
		}
		if err := json.Unmarshal(b, &r); err != nil || r.AccessToken == "" {
			t.Fatalf("credentials response %s: %v", b, err)
		}
	}
	return code, r, apiErr.Message
}

// runtimeClaims decodes a runtime JWT's payload, unverified (the signature is checked by the
// check path here and by the runtime-style verifier in internal/rillruntime).
type runtimeClaims struct {
	Iss  string           `json:"iss"`
	Sub  string           `json:"sub"`
	Aud  []string         `json:"aud"`
	Iat  int64            `json:"iat"`
	Nbf  int64            `json:"nbf"`
	Exp  int64            `json:"exp"`
	Jti  string           `json:"jti"`
	Sys  []int            `json:"sys"`
	Ins  map[string][]int `json:"ins"`
	Attr map[string]any   `json:"attr"`
}

func claimsOf(t *testing.T, raw string) runtimeClaims {
	t.Helper()
	parts := strings.Split(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	var c runtimeClaims
	if err != nil || json.Unmarshal(b, &c) != nil {
		t.Fatalf("JWT payload %q: %v", parts[1], err)
	}
	return c
}

var readerPerms = []int{0x15, 0x17, 0x19, 0x1B}

func TestEphemeralCredentials(t *testing.T) {
	e := setup(t)
	// The reference doc's first call: custom attributes.
	code, cr, msg := e.credentials(t, "svc-admin", "acme", "web", `{
    "attributes": {
      "email": "user@example.com",
      "department": "sales",
      "region": "us-west",
      "customer_id": "acme-corp"
    },
    "ttl_seconds": 3600
  }`)
	if code != 200 || cr.TTLSeconds != 3600 || cr.RuntimeHost != "https://rt.test" || cr.InstanceID != "default" {
		t.Fatalf("credentials: %d %s %+v", code, msg, cr)
	}
	rc := claimsOf(t, cr.AccessToken)
	now := time.Now().Unix()
	if rc.Iss != "https://authd.test" || !reflect.DeepEqual(rc.Aud, []string{"rill-runtime"}) || rc.Sub != "" || rc.Jti == "" ||
		!reflect.DeepEqual(rc.Ins, map[string][]int{"default": readerPerms}) || rc.Sys != nil || rc.Attr["department"] != "sales" {
		t.Errorf("runtime claims of an attributes token: %+v", rc)
	}
	if rc.Iat > now || rc.Nbf != rc.Iat || rc.Exp-now < 3599 || rc.Exp-now > 3600 {
		t.Errorf("times: iat %d nbf %d exp %d, now %d", rc.Iat, rc.Nbf, rc.Exp, now)
	}
	status, _, attrs, hdr := e.checkJWT(t, cr.AccessToken, "acme", "web")
	want := map[string]any{"email": "user@example.com", "department": "sales", "region": "us-west", "customer_id": "acme-corp"}
	if status != 200 || !reflect.DeepEqual(attrs, want) {
		t.Fatalf("check of the ephemeral token: %d %v", status, attrs)
	}
	if hdr["x-rill-auth-kind"] != "ephemeral" || hdr["x-rill-subject"] != "user@example.com" || hdr["x-rill-permissions"] != "read_project,read_prod,read_dev" {
		t.Errorf("ephemeral headers: %v", hdr)
	}
	if status, reason, _, _ := e.checkJWT(t, cr.AccessToken, "acme", "other-project"); status != 403 || reason != "no access to project acme/other-project" {
		t.Errorf("ephemeral token on another project: %d %q", status, reason)
	}

	// The second call: just an email. An unknown user gets email, domain and admin=false; a
	// known one their standard attributes. Neither gets a subject (as in Rill).
	_, cr2, _ := e.credentials(t, "svc-admin", "acme", "web", `{"user_email": "user@example.com", "ttl_seconds": 3600}`)
	if _, _, attrs, _ := e.checkJWT(t, cr2.AccessToken, "acme", "web"); !reflect.DeepEqual(attrs, map[string]any{"email": "user@example.com", "domain": "example.com", "admin": false}) {
		t.Errorf("user_email attributes: %v", attrs)
	}
	_, cr3, _ := e.credentials(t, "admin", "acme", "web", `{"userEmail": "viewer@acme.io"}`)
	if _, _, attrs, _ := e.checkJWT(t, cr3.AccessToken, "acme", "web"); attrs["email"] != "viewer@acme.io" || attrs["groups"] == nil || attrs["admin"] != false {
		t.Errorf("known user's attributes: %v", attrs)
	}
	if cr3.TTLSeconds != 86400 {
		t.Errorf("default ttl %d, want Rill's 86400", cr3.TTLSeconds)
	}
	if rc := claimsOf(t, cr3.AccessToken); rc.Sub != "" || !reflect.DeepEqual(rc.Ins["default"], readerPerms) {
		t.Errorf("known user by email: %+v", rc)
	}
	// An email of another org's user is an unknown email here: nothing of theirs leaks.
	_, cr4, _ := e.credentials(t, "admin", "acme", "web", `{"user_email": "out@else.io"}`)
	if rc := claimsOf(t, cr4.AccessToken); !reflect.DeepEqual(rc.Attr, map[string]any{"email": "out@else.io", "domain": "else.io", "admin": false}) {
		t.Errorf("another org's user by email: %+v", rc.Attr)
	}
	e.checkTokenShapes(t)

	// Removing the issuer's access, then deleting it, stops its tokens on the next check, later
	// in this test; first the rest of the API around the tokens.
	// Rotation: the old key's token still passes; new tokens carry the new kid; both in JWKS.
	c := client.New(e.url, e.tokens["su"])
	rot, err := c.RotateSigningKey(context.Background(), false) // no activation delay here: it signs at once
	if err != nil || rot.Replaces == "" || len(rot.Retired) != 0 {
		t.Fatalf("rotate: %+v %v", rot, err)
	}
	if status, reason, _, _ := e.checkJWT(t, cr.AccessToken, "acme", "web"); status != 200 {
		t.Errorf("token of the retired key after rotation: %d %s", status, reason)
	}
	_, fresh, _ := e.credentials(t, "svc-admin", "acme", "web", `{"user_email":"a@b.io"}`)
	hdr2, _ := base64.RawURLEncoding.DecodeString(strings.Split(fresh.AccessToken, ".")[0])
	if !strings.Contains(string(hdr2), rot.KID) {
		t.Errorf("new token header %s lacks the new kid %s", hdr2, rot.KID)
	}
	resp, err := http.Get(e.url + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	var set struct{ Keys []struct{ Kid string } }
	json.NewDecoder(resp.Body).Decode(&set)
	resp.Body.Close()
	if len(set.Keys) != 2 || !strings.Contains(resp.Header.Get("Cache-Control"), "max-age=") {
		t.Errorf("JWKS after rotation: %+v %q", set, resp.Header.Get("Cache-Control"))
	}
	if code, _, _ := e.call(t, "admin", "POST", "/v1/admin/signing-keys/rotate", ""); code != 403 {
		t.Errorf("org admin rotated the signing key: %d", code)
	}

	// Introspection.
	in, err := c.Introspect(context.Background(), cr.AccessToken)
	if err != nil || !in.Active || in.TokenType != "jwt" || in.Org != "acme" || in.Scope != "read_project read_prod read_dev" || in.Exp == 0 {
		t.Errorf("introspect ephemeral: %+v %v", in, err)
	}
	if in, err := c.Introspect(context.Background(), e.tokens["viewer"]); err != nil || !in.Active || in.TokenType != "rill_usr" || in.Sub != "viewer@acme.io" {
		t.Errorf("introspect user token: %+v %v", in, err)
	}
	if in, err := c.Introspect(context.Background(), "rill_usr_nonsense"); err != nil || in.Active || in.Sub != "" {
		t.Errorf("introspect garbage: %+v %v", in, err)
	}
	outsiderView, err := client.New(e.url, e.tokens["admin"]).Introspect(context.Background(), e.tokens["outsider"])
	if err != nil || outsiderView.Active {
		t.Errorf("acme's admin introspecting an outsider learned %+v (%v)", outsiderView, err)
	}

	// Removing the issuer's access, then deleting it, stops its tokens on the next check.
	if _, err := e.st.UpdateService(context.Background(), "s-admin", func(s *store.Service) error { s.OrgRole = "viewer"; return nil }); err != nil {
		t.Fatal(err)
	}
	if status, reason, _, _ := e.checkJWT(t, cr.AccessToken, "acme", "web"); status != 401 || reason != "the issuer of this token no longer has manage_prod on its project" {
		t.Errorf("after the issuer lost access: %d %q", status, reason)
	}
	if _, err := e.st.DeleteService(context.Background(), "s-admin"); err != nil {
		t.Fatal(err)
	}
	if status, reason, _, _ := e.checkJWT(t, cr2.AccessToken, "acme", "web"); status != 401 || reason != "the service or user that issued this token no longer exists" {
		t.Errorf("after the issuer was deleted: %d %q", status, reason)
	}
	// A user-issued token still works: its issuer is untouched.
	if status, _, _, _ := e.checkJWT(t, cr3.AccessToken, "acme", "web"); status != 200 {
		t.Errorf("user-issued token: %d", status)
	}
}

// checkTokenShapes sends the request shapes Rill's transcoder takes, and the mistakes it
// refuses, and checks each answer and token.
func (e *env) checkTokenShapes(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if err := e.st.CreateProject(ctx, store.Project{ID: importedID, Org: "acme", Name: "imported", RuntimeHost: "https://rt.acme.example",
		InstanceID: "inst-1", RuntimeAudience: "https://rt.acme.example/aud", ProdBranch: "main"}); err != nil {
		t.Fatal(err)
	}
	adminPerms := []int{0x15, 0x17, 0x19, 0x1B, 0x1A, 0x20, 0x11}
	for _, tc := range []struct {
		name, who, project, body string
		want                     int
		msg                      string // refused: part of the message
		sub                      string
		perms                    []int
		ttl                      uint32
		attrs                    map[string]any // nil: not checked
	}{
		{name: "camelCase, ttl as a string, prod branch, unknown fields ignored", who: "svc-admin", project: "imported",
			body: `{"userId":"u-viewer","ttlSeconds":"120","branch":"main","superuserForceAccess":true,"org":"x","futureField":{"a":[1]}}`,
			want: 200, sub: "u-viewer", perms: readerPerms, ttl: 120,
			attrs: map[string]any{"name": "viewer@acme.io", "email": "viewer@acme.io", "domain": "acme.io", "groups": []any{}, "admin": false}},
		{name: "user_id of a project admin", who: "svc-admin", project: "imported", body: `{"user_id":"u-admin"}`,
			want: 200, sub: "u-admin", perms: adminPerms, ttl: 86400},
		{name: "ttl 0 is Rill's default", who: "svc-admin", project: "web", body: `{"attributes":{"a":1},"ttl_seconds":0}`,
			want: 200, perms: readerPerms, ttl: 86400, attrs: map[string]any{"a": float64(1)}},
		{name: "null is absent", who: "svc-admin", project: "web", body: `{"user_email":null,"userId":null,"attributes":{"a":1}}`,
			want: 200, perms: readerPerms, ttl: 86400, attrs: map[string]any{"a": float64(1)}},
		{name: "empty body: the calling user", who: "admin", project: "web", body: ``, want: 200, sub: "u-admin", perms: adminPerms, ttl: 86400},
		{name: "empty object: the calling service (no subject, no attributes)", who: "svc-admin", project: "web", body: `{}`,
			want: 200, perms: readerPerms, ttl: 86400, attrs: map[string]any{}},
		{name: "empty user_email is absent", who: "admin", project: "web", body: `{"user_email":""}`, want: 200, sub: "u-admin", perms: adminPerms, ttl: 86400},
		{name: "unknown user_id", who: "svc-admin", project: "web", body: `{"user_id":"u-nobody"}`, want: 404, msg: `user "u-nobody" not found in org "acme"`},
		{name: "another org's user_id", who: "svc-admin", project: "web", body: `{"user_id":"u-outsider"}`, want: 404, msg: `user "u-outsider" not found in org "acme"`},
		{name: "not the prod branch", who: "svc-admin", project: "imported", body: `{"branch":"dev"}`, want: 400, msg: `does not have a deployment for branch "dev"`},
		{name: "a branch where none is known", who: "svc-admin", project: "web", body: `{"branch":"main"}`, want: 400, msg: `does not have a deployment for branch "main"`},
		{name: "ttl over the cap", who: "svc-admin", project: "web", body: `{"ttl_seconds":86401}`, want: 400, msg: "ttl_seconds must be at most 86400"},
		{name: "negative ttl", who: "svc-admin", project: "web", body: `{"ttl_seconds":-1}`, want: 400, msg: `field "ttl_seconds" must be a whole number`},
		{name: "fractional ttl", who: "svc-admin", project: "web", body: `{"ttlSeconds":1.5}`, want: 400, msg: `field "ttlSeconds" must be a whole number`},
		{name: "ttl past uint32", who: "svc-admin", project: "web", body: `{"ttl_seconds":4294967296}`, want: 400, msg: "must be a whole number"},
		{name: "ttl not a number", who: "svc-admin", project: "web", body: `{"ttl_seconds":"soon"}`, want: 400, msg: "must be a whole number"},
		{name: "one field under both names", who: "svc-admin", project: "web", body: `{"user_email":"a@b.io","userEmail":"a@b.io"}`, want: 400, msg: "give user_email or userEmail, not both"},
		{name: "email and attributes", who: "svc-admin", project: "web", body: `{"user_email":"a@b.io","attributes":{}}`, want: 400, msg: "not several"},
		{name: "id and email", who: "svc-admin", project: "web", body: `{"userId":"u-viewer","userEmail":"a@b.io"}`, want: 400, msg: "not several"},
		// Rill's subjectForExternalUser: "ext_" + hex(sha256(external id + project id)).
		{name: "external_user_id alone: no attributes, the external subject", who: "svc-admin", project: "imported", body: `{"external_user_id":"cust-42"}`,
			want: 200, sub: extSub("cust-42"), perms: readerPerms, ttl: 86400, attrs: map[string]any{}},
		{name: "externalUserId with an email's attributes", who: "svc-admin", project: "imported", body: `{"externalUserId":"cust-42","user_email":"end@cust.io"}`,
			want: 200, sub: extSub("cust-42"), perms: readerPerms, ttl: 86400, attrs: map[string]any{"email": "end@cust.io", "domain": "cust.io", "admin": false}},
		{name: "external_user_id replaces the calling user's subject", who: "admin", project: "imported", body: `{"external_user_id":"x"}`,
			want: 200, sub: extSub("x"), perms: readerPerms, ttl: 86400, attrs: map[string]any{}},
		{name: "external_user_id with user_id", who: "svc-admin", project: "imported", body: `{"external_user_id":"cust-42","user_id":"u-viewer"}`,
			want: 400, msg: "external_user_id cannot be specified together with user_id"},
		{name: "bad email", who: "svc-admin", project: "web", body: `{"user_email":"not an email"}`, want: 400, msg: "not an email address"},
		{name: "attributes not an object", who: "svc-admin", project: "web", body: `{"attributes":"x"}`, want: 400, msg: `field "attributes" must be a JSON object`},
		{name: "attributes an array", who: "svc-admin", project: "web", body: `{"attributes":[1]}`, want: 400, msg: `field "attributes" must be a JSON object`},
		{name: "user_id not a string", who: "svc-admin", project: "web", body: `{"userId":7}`, want: 400, msg: `field "userId" must be a string`},
		{name: "not JSON", who: "svc-admin", project: "web", body: `{"user_email":`, want: 400, msg: "not valid JSON"},
		{name: "viewer lacks manage_prod", who: "viewer", project: "web", body: `{"user_email":"a@b.io"}`, want: 403, msg: "lacks manage_prod"},
		{name: "project-viewer service lacks manage_prod", who: "svc-viewer", project: "web", body: `{"user_email":"a@b.io"}`, want: 403, msg: "lacks manage_prod"},
		{name: "unknown project", who: "svc-admin", project: "nope", body: `{}`, want: 404, msg: `project "nope" not found`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, cr, msg := e.credentials(t, tc.who, "acme", tc.project, tc.body)
			if code != tc.want || !strings.Contains(msg, tc.msg) {
				t.Fatalf("%d %q, want %d containing %q", code, msg, tc.want, tc.msg)
			}
			if code != 200 {
				return
			}
			rc := claimsOf(t, cr.AccessToken)
			instance, aud := "default", "rill-runtime"
			if tc.project == "imported" {
				instance, aud = "inst-1", "https://rt.acme.example/aud"
				if cr.RuntimeHost != "https://rt.acme.example" || cr.InstanceID != "inst-1" {
					t.Errorf("imported project's runtime: %+v", cr)
				}
			}
			if rc.Sub != tc.sub || !reflect.DeepEqual(rc.Aud, []string{aud}) || !reflect.DeepEqual(rc.Ins, map[string][]int{instance: tc.perms}) || cr.TTLSeconds != tc.ttl {
				t.Errorf("claims %+v, ttl %d; want sub %q aud %q ins %s: %#x, ttl %d", rc, cr.TTLSeconds, tc.sub, aud, instance, tc.perms, tc.ttl)
			}
			if tc.attrs != nil && !reflect.DeepEqual(rc.Attr, tc.attrs) && !(len(tc.attrs) == 0 && rc.Attr == nil) {
				t.Errorf("attr %v, want %v", rc.Attr, tc.attrs)
			}
			// Our own check takes every token the endpoint issues.
			if status, reason, _, _ := e.checkJWT(t, cr.AccessToken, "acme", tc.project); status != 200 {
				t.Errorf("check of the token: %d %s", status, reason)
			}
		})
	}
	// The /v1/organizations/ form of the path answers the same.
	if code, _, b := e.call(t, "svc-admin", "POST", "/v1/organizations/acme/projects/imported/credentials", `{"user_email":"a@b.io"}`); code != 200 ||
		!strings.Contains(string(b), `"instanceId": "inst-1"`) {
		t.Errorf("/v1/organizations/ path: %d %s", code, b)
	}
	// The typed client speaks the same shapes.
	res, err := client.New(e.url, e.tokens["svc-admin"]).Credentials(ctx, "acme", "imported", apiv1.CredentialsRequest{UserID: "u-viewer", TTLSeconds: 60, Branch: "main"})
	if err != nil || res.TTLSeconds != 60 || res.InstanceID != "inst-1" || claimsOf(t, res.AccessToken).Sub != "u-viewer" {
		t.Errorf("client: %+v %v", res, err)
	}
}

// importedID is the UUID of the test's imported project.
const importedID = "6f1c1a52-93b8-4d5e-a4c9-0b7d2e1f3a44"

func extSub(id string) string {
	sum := sha256.Sum256([]byte(id + importedID))
	return "ext_" + hex.EncodeToString(sum[:])
}
