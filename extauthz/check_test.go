package extauthz_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/rill-authd/rill-authd/extauthz"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/resolver"
	"github.com/rill-authd/rill-authd/store"
)

const viewerPerms = "read_org,read_projects,read_project,read_prod,read_dev,create_reports,create_alerts,create_bookmarks"

type checkCase struct {
	name    string
	auth    string // Authorization header; "-" for none
	path    string
	ext     map[string]string
	headers map[string]string // extra client headers

	status     int
	code       codes.Code
	reason     string            // denied: exact message
	set        map[string]string // allowed: exact x-rill-* headers set
	attributes map[string]any    // allowed: decoded x-rill-attributes
	remove     []string          // allowed: exact headers_to_remove
}

func checkCases(f *fixture) []checkCase {
	bearer := func(name string) string { return "Bearer " + f.tokens[name] }
	alice := f.tokens["alice"]
	flipped := alice[:len(alice)-1] + "A"
	if alice[len(alice)-1] == 'A' {
		flipped = alice[:len(alice)-1] + "B"
	}
	runtimePath := "/v1/orgs/acme/projects/web/runtime/query"
	invalid := func(name, auth, reason string) checkCase {
		return checkCase{name: name, auth: auth, path: runtimePath, status: 401, code: codes.Unauthenticated, reason: reason}
	}
	return []checkCase{
		{name: "project viewer user", auth: bearer("alice"), path: runtimePath, status: 200,
			set: map[string]string{"x-rill-auth-kind": "user", "x-rill-subject": "alice@example.com", "x-rill-org": "acme",
				"x-rill-project": "web", "x-rill-org-role": "viewer", "x-rill-project-role": "viewer",
				"x-rill-permissions": viewerPerms, "x-rill-token-id": f.ids["alice"].String()},
			attributes: map[string]any{"name": "Alice", "email": "alice@example.com", "domain": "example.com",
				"groups": []any{"eng"}, "admin": false, "region": "eu"}},
		{name: "imported Rill-format token", auth: bearer("alice-rill"), path: runtimePath, status: 200,
			set: map[string]string{"x-rill-auth-kind": "user", "x-rill-subject": "alice@example.com", "x-rill-org": "acme",
				"x-rill-project": "web", "x-rill-org-role": "viewer", "x-rill-project-role": "viewer",
				"x-rill-permissions": viewerPerms, "x-rill-token-id": f.ids["alice-rill"].String()},
			attributes: map[string]any{"name": "Alice", "email": "alice@example.com", "domain": "example.com",
				"groups": []any{"eng"}, "admin": false, "region": "eu"}},
		{name: "scheme is case-insensitive", auth: "bEaReR   " + alice, path: runtimePath, status: 200,
			set: map[string]string{"x-rill-auth-kind": "user", "x-rill-subject": "alice@example.com", "x-rill-org": "acme",
				"x-rill-project": "web", "x-rill-org-role": "viewer", "x-rill-project-role": "viewer",
				"x-rill-permissions": viewerPerms, "x-rill-token-id": f.ids["alice"].String()},
			attributes: map[string]any{"name": "Alice", "email": "alice@example.com", "domain": "example.com",
				"groups": []any{"eng"}, "admin": false, "region": "eu"}},
		{name: "org admin holds every project permission", auth: bearer("bob"), path: "/v1/instances/default/query",
			ext: map[string]string{"org": "acme", "project": "data", "permission": "manage_project"}, status: 200,
			set: map[string]string{"x-rill-auth-kind": "user", "x-rill-subject": "bob@acme.io", "x-rill-org": "acme",
				"x-rill-project": "data", "x-rill-org-role": "admin", "x-rill-project-role": "admin",
				"x-rill-permissions": "read_org,manage_org,read_projects,create_projects,manage_projects,read_org_members,manage_org_members,manage_org_admins,read_project,manage_project,read_prod,read_prod_status,manage_prod,read_dev,read_dev_status,manage_dev,read_provisioner_resources,manage_provisioner_resources,read_project_members,manage_project_members,manage_project_admins,create_magic_auth_tokens,manage_magic_auth_tokens,create_reports,manage_reports,create_alerts,manage_alerts,create_bookmarks,manage_bookmarks",
				"x-rill-token-id":    f.ids["bob"].String()},
			attributes: map[string]any{"name": "Bob", "email": "bob@acme.io", "domain": "acme.io", "groups": []any{}, "admin": true}},
		{name: "service on the custom API route", auth: bearer("svc"), path: "/v1/organizations/acme/projects/web/runtime/api/sales?limit=5",
			status: 200,
			set: map[string]string{"x-rill-auth-kind": "service", "x-rill-subject": "ci", "x-rill-org": "acme",
				"x-rill-project": "web", "x-rill-project-role": "editor",
				"x-rill-permissions": "read_project,read_prod,read_prod_status,read_dev,read_dev_status,manage_dev,read_provisioner_resources,read_project_members,manage_project_members,create_magic_auth_tokens,manage_magic_auth_tokens,create_reports,create_alerts,create_bookmarks",
				"x-rill-token-id":    f.ids["svc"].String()},
			attributes: map[string]any{"name": "ci", "admin": false, "partner": "p1"}},
		{name: "spoofed identity headers", auth: bearer("dave"), path: runtimePath,
			ext:     map[string]string{"org": "acme", "project": "web", "permission": "read_org"},
			headers: map[string]string{"x-rill-org-role": "admin", "x-rill-project-role": "admin", "x-rill-attributes": "e30", "x-rill-is-admin": "true", "x-rill-": "bare"},
			status:  200,
			set: map[string]string{"x-rill-auth-kind": "user", "x-rill-subject": "dave@acme.io", "x-rill-org": "acme",
				"x-rill-project": "web", "x-rill-org-role": "viewer", "x-rill-permissions": "read_org,read_projects",
				"x-rill-token-id": f.ids["dave"].String()},
			attributes: map[string]any{"name": "dave@acme.io", "email": "dave@acme.io", "domain": "acme.io", "groups": []any{}, "admin": false},
			remove:     []string{"x-rill-", "x-rill-is-admin", "x-rill-project-role"}},
		{name: "service outside its projects", auth: bearer("svc"), path: "/v1/orgs/acme/projects/data/runtime/query",
			status: 403, code: codes.PermissionDenied, reason: "no access to project acme/data"},
		{name: "viewer lacks the route's permission", auth: bearer("alice"), path: runtimePath,
			ext: map[string]string{"permission": "manage_project"}, status: 403, code: codes.PermissionDenied,
			reason: "missing permission manage_project on project acme/web"},
		{name: "user without access", auth: bearer("carol"), path: runtimePath, status: 403, code: codes.PermissionDenied,
			reason: "no access to project acme/web"},
		{name: "org-level path", auth: bearer("carol"), path: "/v1/orgs/acme/services", status: 403, code: codes.PermissionDenied,
			reason: "no access to org acme"},
		invalid("expired", bearer("expired"), "token expired"),
		invalid("revoked", bearer("revoked"), "token revoked"),
		invalid("bad checksum", "Bearer "+flipped, "bad checksum"),
		invalid("truncated", "Bearer "+alice[:len(alice)-3], "bad token length"),
		// Cut to the length of Rill's format, it reads as a Rill token no store holds (leading
		// zeros trimmed: Rill's writer never puts one, so one reads as out of range instead).
		invalid("truncated to Rill's length", "Bearer rill_usr_"+strings.TrimLeft(alice[9:40], "0"), "unknown token"),
		invalid("Rill-format token not in the store", "Bearer rill_usr_2Dws32dc2FxTThgCQjHerGM1rx9pJLCPQh5QbWjUiwpkZNkCCRrlrK", "unknown token"),
		invalid("Rill-format token past 2^320", "Bearer rill_svc_"+strings.Repeat("Z", 54), "token payload out of range"),
		invalid("Rill-format token with a sign", "Bearer rill_svc_-1", "bad character in token"),
		invalid("unknown type", "Bearer rill_xyz_"+alice[9:], "unknown token type"),
		invalid("bad character", "Bearer "+alice[:20]+"!"+alice[21:], "bad character in token"),
		invalid("foreign token", "Bearer ghp_0123456789abcdefghijklmnopqrstuvwxyzAB", "not a rill token or JWT"),
		invalid("JWT with alg none", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "JWT algorithm not accepted (only RS256)"),
		invalid("missing", "-", "missing bearer token"),
		invalid("empty bearer", "Bearer ", "missing bearer token"),
		invalid("basic scheme", "Basic YWxpY2U6cHc=", "authorization scheme is not Bearer"),
		invalid("oversized", "Bearer "+strings.Repeat("A", 1<<16), "not a rill token or JWT"),
		{name: "no org anywhere", auth: bearer("alice"), path: "/healthz", status: 500, code: codes.Internal,
			reason: "the request names no org: set context_extensions org/project on the route, use a /v1/orgs/{org}/projects/{project}/ path, or start rill-authd with --default-org"},
		{name: "unknown permission on the route", auth: bearer("alice"), path: runtimePath, ext: map[string]string{"permission": "read_everything"},
			status: 500, code: codes.Internal, reason: `the route requires unknown permission "read_everything"`},
	}
}

// TestCheckLikeEnvoy sends full CheckRequests over real gRPC and asserts every header, status
// and reason.
func TestCheckLikeEnvoy(t *testing.T) {
	f := newFixture(t, resolver.Options{})
	clients := map[string]authv3.AuthorizationClient{
		"codec":         grpcClient(t, f.srv.Register, extauthz.GRPCServerOptions()...),
		"default-codec": grpcClient(t, f.srv.Register),
	}
	for _, tc := range checkCases(f) {
		for cname, client := range clients {
			t.Run(cname+"/"+tc.name, func(t *testing.T) {
				h := map[string]string{}
				if tc.auth != "-" {
					h["authorization"] = tc.auth
				}
				for k, v := range tc.headers {
					h[k] = v
				}
				// Twice: the second answer comes from the caches and must be identical.
				for round := range 2 {
					resp, err := client.Check(context.Background(), envoyRequest("GET", tc.path, h, tc.ext))
					if err != nil {
						t.Fatalf("round %d: Check: %v", round, err)
					}
					assertResponse(t, tc, resp)
				}
			})
		}
	}
}

func assertResponse(t *testing.T, tc checkCase, resp *authv3.CheckResponse) {
	t.Helper()
	if got := codes.Code(resp.GetStatus().GetCode()); got != tc.code {
		t.Fatalf("gRPC code %v, want %v (message %q)", got, tc.code, resp.GetStatus().GetMessage())
	}
	if tc.status != 200 {
		d := resp.GetDeniedResponse()
		if d == nil {
			t.Fatalf("want a denied response, got %v", resp)
		}
		if int(d.GetStatus().GetCode()) != tc.status {
			t.Errorf("HTTP status %d, want %d", d.GetStatus().GetCode(), tc.status)
		}
		var body struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal([]byte(d.GetBody()), &body); err != nil {
			t.Fatalf("body %q: %v", d.GetBody(), err)
		}
		if body.Message != tc.reason || body.Code != int(tc.code) {
			t.Errorf("body %+v, want code %d message %q", body, tc.code, tc.reason)
		}
		if resp.GetStatus().GetMessage() != tc.reason {
			t.Errorf("status message %q, want %q", resp.GetStatus().GetMessage(), tc.reason)
		}
		hdr := headerMap(d.GetHeaders())
		wantWWW := map[int]string{
			401: `Bearer realm="rill", error="invalid_token", error_description="` + tc.reason + `"`,
			403: `Bearer realm="rill", error="insufficient_scope", error_description="` + tc.reason + `"`,
		}[tc.status]
		if hdr["www-authenticate"] != wantWWW {
			t.Errorf("www-authenticate %q, want %q", hdr["www-authenticate"], wantWWW)
		}
		if hdr["content-type"] != "application/json" {
			t.Errorf("content-type %q", hdr["content-type"])
		}
		if strings.Contains(d.GetBody(), "rill_usr_") || strings.Contains(d.GetBody(), "rill_svc_") {
			t.Errorf("body leaks a token: %s", d.GetBody())
		}
		return
	}
	ok := resp.GetOkResponse()
	if ok == nil {
		t.Fatalf("want OK, got %v", resp)
	}
	for _, h := range ok.GetHeaders() {
		if h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
			t.Errorf("header %s: append action %v, want overwrite", h.GetHeader().GetKey(), h.GetAppendAction())
		}
	}
	got := headerMap(ok.GetHeaders())
	attrs := got["x-rill-attributes"]
	delete(got, "x-rill-attributes")
	if !reflect.DeepEqual(got, tc.set) {
		t.Errorf("headers set:\n got %v\nwant %v", got, tc.set)
	}
	raw, err := base64.RawURLEncoding.DecodeString(attrs)
	if err != nil {
		t.Fatalf("x-rill-attributes %q: %v", attrs, err)
	}
	var gotAttrs map[string]any
	if err := json.Unmarshal(raw, &gotAttrs); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotAttrs, tc.attributes) {
		t.Errorf("attributes:\n got %v\nwant %v", gotAttrs, tc.attributes)
	}
	remove := slices.Clone(ok.GetHeadersToRemove())
	slices.Sort(remove)
	if !slices.Equal(remove, tc.remove) {
		t.Errorf("headers_to_remove %v, want %v", remove, tc.remove)
	}
	for _, r := range remove {
		if _, set := got[r]; set || r == "x-rill-attributes" {
			t.Errorf("%s is both set and removed: Envoy would drop it", r)
		}
	}
	meta := resp.GetDynamicMetadata().AsMap()
	for k, hdr := range map[string]string{"auth_kind": "x-rill-auth-kind", "subject": "x-rill-subject", "org": "x-rill-org",
		"project": "x-rill-project", "permissions": "x-rill-permissions", "token_id": "x-rill-token-id"} {
		if meta[k] != tc.set[hdr] {
			t.Errorf("dynamic metadata %s = %v, want %q", k, meta[k], tc.set[hdr])
		}
	}
	if !reflect.DeepEqual(meta["attributes"], tc.attributes) {
		t.Errorf("dynamic metadata attributes %v, want %v", meta["attributes"], tc.attributes)
	}
}

func headerMap(hs []*corev3.HeaderValueOption) map[string]string {
	m := map[string]string{}
	for _, h := range hs {
		m[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	return m
}

// TestRevocationIsImmediate revokes, deletes and re-roles between two checks with a warm cache.
func TestRevocationIsImmediate(t *testing.T) {
	f := newFixture(t, resolver.Options{})
	client := grpcClient(t, f.srv.Register, extauthz.GRPCServerOptions()...)
	ctx := context.Background()
	check := func(name string) *authv3.CheckResponse {
		t.Helper()
		resp, err := client.Check(ctx, envoyRequest("GET", "/v1/orgs/acme/projects/web/x", map[string]string{"authorization": "Bearer " + f.tokens[name]}, nil))
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for _, name := range []string{"alice", "svc", "bob"} {
		if c := check(name).GetStatus().GetCode(); c != 0 {
			t.Fatalf("%s: warm-up check code %d", name, c)
		}
	}
	if err := f.st.DeleteToken(ctx, f.ids["alice"]); err != nil {
		t.Fatal(err)
	}
	if r := check("alice"); r.GetStatus().GetMessage() != "token revoked" {
		t.Errorf("after revoke: %v", r.GetStatus())
	}
	if _, err := f.st.DeleteService(ctx, "s-ci"); err != nil {
		t.Fatal(err)
	}
	if r := check("svc"); r.GetDeniedResponse().GetStatus().GetCode() != 401 {
		t.Errorf("after service delete: %v", r.GetStatus())
	}
	// Demote bob from org admin: the very next check sees the viewer he now is.
	if _, err := f.st.UpdateUser(ctx, "u-bob", func(u *store.User) error { u.OrgRoles = map[string]policy.Role{"acme": "viewer"}; return nil }); err != nil {
		t.Fatal(err)
	}
	if r := check("bob"); r.GetStatus().GetMessage() != "no access to project acme/web" {
		t.Errorf("after demotion: %v", r.GetStatus())
	}
}
