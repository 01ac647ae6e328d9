package adminapi_test

import (
	"context"
	"encoding/base64"
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
		if err := json.Unmarshal(b, &r); err != nil || r.AccessToken == "" {
			t.Fatalf("credentials response %s: %v", b, err)
		}
	}
	return code, r, apiErr.Message
}

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
	if code != 200 || cr.TTLSeconds != 3600 || time.Until(cr.ExpiresAt) < 59*time.Minute {
		t.Fatalf("credentials: %d %s %+v", code, msg, cr)
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
	// known one their standard attributes.
	_, cr2, _ := e.credentials(t, "svc-admin", "acme", "web", `{"user_email": "user@example.com", "ttl_seconds": 3600}`)
	if _, _, attrs, _ := e.checkJWT(t, cr2.AccessToken, "acme", "web"); !reflect.DeepEqual(attrs, map[string]any{"email": "user@example.com", "domain": "example.com", "admin": false}) {
		t.Errorf("user_email attributes: %v", attrs)
	}
	_, cr3, _ := e.credentials(t, "admin", "acme", "web", `{"user_email": "viewer@acme.io"}`)
	if _, _, attrs, _ := e.checkJWT(t, cr3.AccessToken, "acme", "web"); attrs["email"] != "viewer@acme.io" || attrs["groups"] == nil || attrs["admin"] != false {
		t.Errorf("known user's attributes: %v", attrs)
	}
	if cr3.TTLSeconds != 3600 {
		t.Errorf("default ttl %d", cr3.TTLSeconds)
	}

	for _, tc := range []struct {
		name, who, body string
		want            int
		msg             string
	}{
		{"ttl zero", "svc-admin", `{"user_email":"a@b.io","ttl_seconds":0}`, 400, "ttl_seconds must be from 1 to 86400"},
		{"ttl over the cap", "svc-admin", `{"user_email":"a@b.io","ttl_seconds":86401}`, 400, "ttl_seconds must be from 1 to 86400"},
		{"both", "svc-admin", `{"user_email":"a@b.io","attributes":{}}`, 400, "not both"},
		{"neither", "svc-admin", `{}`, 400, "give attributes"},
		{"bad email", "svc-admin", `{"user_email":"not an email"}`, 400, "not an email address"},
		{"attributes not an object", "svc-admin", `{"attributes":"x"}`, 400, `field "attributes"`},
		{"viewer lacks manage_prod", "viewer", `{"user_email":"a@b.io"}`, 403, "lacks manage_prod"},
		{"project-viewer service lacks manage_prod", "svc-viewer", `{"user_email":"a@b.io"}`, 403, "lacks manage_prod"},
	} {
		if code, _, msg := e.credentials(t, tc.who, "acme", "web", tc.body); code != tc.want || !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: %d %q, want %d containing %q", tc.name, code, msg, tc.want, tc.msg)
		}
	}
	// The /v1/organizations/ form of the path works too.
	if code, _, _ := e.call(t, "svc-admin", "POST", "/v1/organizations/acme/projects/web/credentials", `{"user_email":"a@b.io"}`); code != 200 {
		t.Errorf("/v1/organizations/ path: %d", code)
	}

	// Rotation: the old key's token still passes; new tokens carry the new kid; both in JWKS.
	c := client.New(e.url, e.tokens["su"])
	rot, err := c.RotateSigningKey(context.Background())
	if err != nil || len(rot.Retired) != 1 {
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
