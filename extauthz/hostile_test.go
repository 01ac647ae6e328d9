package extauthz_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/rill-authd/rill-authd/extauthz"
	"github.com/rill-authd/rill-authd/resolver"
)

// Reasons of the 400s, as the client reads them.
const (
	rDot      = "the request path holds a dot-segment (. or ..)"
	rEncoded  = `the request path holds an encoded /, \ or . (%2F, %5C, %2E)`
	rBackslsh = `the request path holds a \`
	rEmpty    = "the request path holds an empty segment (//)"
	rEscape   = "the request path holds an invalid percent-encoding"
	rRelative = "the request path does not start with /"
	rOrg      = "the request path names an invalid org: orgs are 1-40 characters of a-z, 0-9 and -, starting with a letter or digit"
	rProject  = "the request path names an invalid project: projects are 1-64 characters of A-Z, a-z, 0-9, _ and -, starting with a letter or digit"
	rConflict = "the original request URI is given more than once, differently (X-Original-URI, X-Forwarded-Uri, the path after /ext_authz)"
	rMany     = "more than one authorization header or credential"
)

// hostilePath is a request path a client chose, checked with a token of the fixture. In the
// fixture alice may read acme/web (not acme/data); bob is acme's admin, so any project name of
// acme passes for him: what he is allowed on is what the check read from the path.
type hostilePath struct {
	name, path, who string
	status          int
	reason          string // denied: the exact message
	org, project    string // allowed: x-rill-org, x-rill-project
	grpcOnly        bool   // no HTTP client or server carries this path on a request line
}

var hostilePaths = []hostilePath{
	// The two: today allowed as acme/web, and acme/x/../../victim/projects/secret.
	{name: "dot-segments after the project climb into the target", path: "/v1/orgs/acme/projects/web/../../victim/projects/secret/x", who: "alice", status: 400, reason: rDot},
	{name: "%2F smuggles a path into the project", path: "/v1/orgs/acme/projects/x%2F..%2F..%2Fvictim%2Fprojects%2Fsecret/q", who: "bob", status: 400, reason: rEncoded},
	{name: "lower-case %2f", path: "/v1/orgs/acme/projects/x%2f..%2fvictim/q", who: "bob", status: 400, reason: rEncoded},
	{name: "%2E%2E segments", path: "/v1/orgs/acme/projects/web/%2e%2E/%2E%2e/victim/projects/secret", who: "alice", status: 400, reason: rEncoded},
	{name: "%2E inside a name", path: "/v1/orgs/acme/projects/web%2Ejson/q", who: "bob", status: 400, reason: rEncoded},
	{name: "%5C", path: "/v1/orgs/acme/projects/web%5C..%5C..%5Cvictim/q", who: "alice", status: 400, reason: rEncoded},
	{name: "double-encoded %252F", path: "/v1/orgs/acme/projects/web/x%252F..%252F..%252Fvictim", who: "alice", status: 400, reason: rEncoded},
	{name: "raw backslashes", path: `/v1/orgs/acme/projects/web\..\..\victim/q`, who: "alice", status: 400, reason: rBackslsh},
	{name: "single-dot segment", path: "/v1/orgs/acme/./projects/web/x", who: "alice", status: 400, reason: rDot},
	{name: "dot-segment with a path parameter", path: "/v1/orgs/acme/projects/web/..;/..;/victim/projects/secret", who: "alice", status: 400, reason: rDot},
	{name: "dot-segment before the prefix", path: "/v1/x/../orgs/acme/projects/data/q", who: "alice", status: 400, reason: rDot},
	{name: "trailing dot-segment", path: "/v1/orgs/acme/projects/web/..", who: "alice", status: 400, reason: rDot},
	{name: "empty segment in the target", path: "/v1/orgs/acme//projects/web/x", who: "alice", status: 400, reason: rEmpty},
	{name: "leading empty segment", path: "//v1/orgs/acme/projects/data/q", who: "alice", status: 400, reason: rEmpty},
	{name: "empty segment after the target", path: "/v1/orgs/acme/projects/web/x//y", who: "alice", status: 400, reason: rEmpty},
	{name: "invalid escape", path: "/v1/orgs/acme/projects/web/%zz", who: "alice", status: 400, reason: rEscape, grpcOnly: true},
	{name: "truncated escape", path: "/v1/orgs/acme/projects/web/%4", who: "alice", status: 400, reason: rEscape, grpcOnly: true},
	{name: "relative path", path: "v1/orgs/acme/projects/data/q", who: "alice", status: 400, reason: rRelative, grpcOnly: true},
	{name: "upper-case org", path: "/v1/orgs/ACME/projects/web/x", who: "alice", status: 400, reason: rOrg},
	{name: "org with a path parameter", path: "/v1/orgs/acme;v=1/projects/web/x", who: "alice", status: 400, reason: rOrg},
	{name: "encoded ? in the org", path: "/v1/orgs/acme%3F/projects/web/x", who: "alice", status: 400, reason: rOrg},
	{name: "41-character org", path: "/v1/orgs/" + strings.Repeat("a", 41) + "/projects/web", who: "alice", status: 400, reason: rOrg},
	{name: "org starting with -", path: "/v1/organizations/-acme/projects/web", who: "alice", status: 400, reason: rOrg},
	{name: "NUL in the org", path: "/v1/orgs/acme%00/projects/web", who: "alice", status: 400, reason: rOrg},
	{name: "unicode look-alike org", path: "/v1/orgs/%EF%BD%81cme/projects/web", who: "alice", status: 400, reason: rOrg},
	{name: "project with a dot", path: "/v1/orgs/acme/projects/web.json/q", who: "bob", status: 400, reason: rProject},
	{name: "project with a path parameter", path: "/v1/orgs/acme/projects/web;x=1/q", who: "bob", status: 400, reason: rProject},
	{name: "fragment marker in the project", path: "/v1/orgs/acme/projects/web#x", who: "bob", status: 400, reason: rProject, grpcOnly: true},
	{name: "encoded space in the project", path: "/v1/orgs/acme/projects/web%20/q", who: "bob", status: 400, reason: rProject},
	// What is refused above is nothing a well-behaved client sends; these still pass.
	{name: "encoded prefix names the target it decodes to", path: "/v1/%6Frgs/acme/projects/data/q", who: "alice", status: 403, reason: "no access to project acme/data"},
	{name: "encoded letters decode", path: "/v1/orgs/%61cme/projects/w%65b/x", who: "alice", status: 200, org: "acme", project: "web"},
	{name: "trailing slash", path: "/v1/orgs/acme/projects/web/", who: "alice", status: 200, org: "acme", project: "web"},
	{name: "the query is not the path", path: "/v1/orgs/acme/projects/web/x?next=/../../victim%2F//a", who: "alice", status: 200, org: "acme", project: "web"},
	{name: "project names are not slugs", path: "/v1/orgs/acme/projects/Web_2/x", who: "bob", status: 200, org: "acme", project: "Web_2"},
	{name: "dots inside a segment are no dot-segment", path: "/v1/orgs/acme/projects/web/file..txt/.well-known", who: "alice", status: 200, org: "acme", project: "web"},
}

// TestHostilePaths sends each path as Envoy's gRPC CheckRequest, as the path Envoy's
// http_service appends, and in nginx's X-Original-URI and Traefik's X-Forwarded-Uri, to real
// servers on loopback, and wants the same answer from all four.
func TestHostilePaths(t *testing.T) {
	f := newFixture(t, resolver.Options{})
	client := grpcClient(t, f.srv.Register, extauthz.GRPCServerOptions()...)
	hs := authdHTTP(t, f)
	tried := 0
	for _, tc := range hostilePaths {
		t.Run(tc.name, func(t *testing.T) {
			auth := "Bearer " + f.tokens[tc.who]
			resp, err := client.Check(context.Background(), envoyRequest("GET", tc.path, map[string]string{"authorization": auth}, nil))
			if err != nil {
				t.Fatal(err)
			}
			tried++
			assertGRPCAnswer(t, "grpc", resp, tc.status, tc.reason, map[string]string{"x-rill-org": tc.org, "x-rill-project": tc.project})
			if tc.grpcOnly {
				return
			}
			for _, carrier := range []string{"appended", "X-Original-URI", "X-Forwarded-Uri"} {
				target, hdr := extauthz.HTTPPrefix+tc.path, map[string][]string{"Authorization": {auth}}
				if carrier != "appended" {
					target, hdr[carrier] = extauthz.HTTPPrefix, []string{tc.path}
				}
				status, reason, set := rawHTTP(t, hs.Listener.Addr().String(), target, hdr)
				tried++
				if status != tc.status || reason != tc.reason || tc.status == 200 && (set["X-Rill-Org"] != tc.org || set["X-Rill-Project"] != tc.project) {
					t.Errorf("%s: %d %q %v, want %d %q %s/%s", carrier, status, reason, set, tc.status, tc.reason, tc.org, tc.project)
				}
			}
		})
	}
	t.Logf("%d hostile-path checks over gRPC and HTTP", tried)
}

// TestHostileRequests covers what is not the path alone: more than one Authorization header,
// more than one place naming the URI, and names from context_extensions.
func TestHostileRequests(t *testing.T) {
	f := newFixture(t, resolver.Options{})
	client := grpcClient(t, f.srv.Register, extauthz.GRPCServerOptions()...)
	hs := authdHTTP(t, f)
	alice, carol := "Bearer "+f.tokens["alice"], "Bearer "+f.tokens["carol"]
	web, data := "/v1/orgs/acme/projects/web/x", "/v1/orgs/acme/projects/data/x"
	const misconfigured = `the route's context_extensions name an invalid org or project %s: orgs are 1-40 characters of a-z, 0-9 and -, starting with a letter or digit; projects are 1-64 characters of A-Z, a-z, 0-9, _ and -, starting with a letter or digit`

	grpcCases := []struct {
		name    string
		path    string
		headers map[string]string
		ext     map[string]string
		status  int
		reason  string
	}{
		// Envoy merges repeated headers into one value joined by ",".
		{"two authorization headers, as Envoy joins them", web, map[string]string{"authorization": alice + "," + carol}, nil, 401, rMany},
		{"the same token twice", web, map[string]string{"authorization": alice + "," + alice}, nil, 401, rMany},
		{"a trailing comma", web, map[string]string{"authorization": alice + ","}, nil, 401, rMany},
		{"a comma in the credential", web, map[string]string{"authorization": "Bearer a,b"}, nil, 401, rMany},
		{"context_extensions org with a slash", web, map[string]string{"authorization": alice}, map[string]string{"org": "acme/../victim"}, 500,
			strings.Replace(misconfigured, "%s", `"acme/../victim"/""`, 1)},
		{"context_extensions project with a dot-segment", web, map[string]string{"authorization": alice}, map[string]string{"org": "acme", "project": ".."}, 500,
			strings.Replace(misconfigured, "%s", `"acme"/".."`, 1)},
		{"context_extensions upper-case org", web, map[string]string{"authorization": alice}, map[string]string{"org": "ACME", "project": "web"}, 500,
			strings.Replace(misconfigured, "%s", `"ACME"/"web"`, 1)},
		{"context_extensions misconfigured, no token", web, nil, map[string]string{"org": "acme/x"}, 401, "missing bearer token"},
		// The route names the target; the path then plays no part.
		{"context_extensions decide, the path does not", "/v1/orgs/acme/projects/data/../../../x", map[string]string{"authorization": alice},
			map[string]string{"org": "acme", "project": "web"}, 200, ""},
	}
	for _, tc := range grpcCases {
		t.Run("grpc/"+tc.name, func(t *testing.T) {
			resp, err := client.Check(context.Background(), envoyRequest("GET", tc.path, tc.headers, tc.ext))
			if err != nil {
				t.Fatal(err)
			}
			assertGRPCAnswer(t, "grpc", resp, tc.status, tc.reason, nil)
		})
	}

	httpCases := []struct {
		name    string
		target  string
		headers map[string][]string
		status  int
		reason  string
		project string // allowed: x-rill-project
	}{
		{"two authorization headers", web, map[string][]string{"Authorization": {alice, carol}}, 401, rMany, ""},
		{"two authorization headers, the refused one first", web, map[string][]string{"Authorization": {carol, alice}}, 401, rMany, ""},
		{"the same token twice", web, map[string][]string{"Authorization": {alice, alice}}, 401, rMany, ""},
		{"a client's X-Original-URI next to the gateway's X-Forwarded-Uri", "",
			map[string][]string{"Authorization": {alice}, "X-Forwarded-Uri": {data}, "X-Original-URI": {web}}, 400, rConflict, ""},
		{"a client's X-Forwarded-Uri next to nginx's X-Original-URI", "",
			map[string][]string{"Authorization": {alice}, "X-Original-URI": {data}, "X-Forwarded-Uri": {web}}, 400, rConflict, ""},
		{"an X-Original-URI next to the appended path", data, map[string][]string{"Authorization": {alice}, "X-Original-URI": {web}}, 400, rConflict, ""},
		{"two X-Forwarded-Uri", "", map[string][]string{"Authorization": {alice}, "X-Forwarded-Uri": {web, data}}, 400, rConflict, ""},
		{"two places, one URI", web + "?a=1", map[string][]string{"Authorization": {alice}, "X-Original-URI": {web + "?a=2"}, "X-Forwarded-Uri": {web}}, 200, "", "web"},
		{"the gateway's own address is no URI", "/", map[string][]string{"Authorization": {alice}, "X-Forwarded-Uri": {web}}, 200, "", "web"},
	}
	for _, tc := range httpCases {
		t.Run("http/"+tc.name, func(t *testing.T) {
			status, reason, set := rawHTTP(t, hs.Listener.Addr().String(), extauthz.HTTPPrefix+tc.target, tc.headers)
			if status != tc.status || reason != tc.reason || set["X-Rill-Project"] != tc.project {
				t.Errorf("%d %q %v, want %d %q project %q", status, reason, set, tc.status, tc.reason, tc.project)
			}
		})
	}
}

// assertGRPCAnswer checks a CheckResponse's HTTP status, reason (message, JSON body) and, when
// allowed, the given headers ("" for absent).
func assertGRPCAnswer(t *testing.T, where string, resp *authv3.CheckResponse, status int, reason string, want map[string]string) {
	t.Helper()
	if status == 200 {
		if resp.GetOkResponse() == nil || resp.GetStatus().GetCode() != 0 {
			t.Fatalf("%s: want 200, got %v", where, resp.GetStatus())
		}
		set := headerMap(resp.GetOkResponse().GetHeaders())
		for k, v := range want {
			if set[k] != v {
				t.Errorf("%s: %s = %q, want %q", where, k, set[k], v)
			}
		}
		return
	}
	d := resp.GetDeniedResponse()
	if d == nil {
		t.Fatalf("%s: want %d %q, got allowed with %v", where, status, reason, headerMap(resp.GetOkResponse().GetHeaders()))
	}
	var body struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal([]byte(d.GetBody()), &body); err != nil {
		t.Fatalf("%s: body %q: %v", where, d.GetBody(), err)
	}
	wantCode := map[int]int32{400: 3, 401: 16, 403: 7, 500: 13}[status]
	if int(d.GetStatus().GetCode()) != status || resp.GetStatus().GetCode() != wantCode || body.Code != int(wantCode) ||
		body.Message != reason || resp.GetStatus().GetMessage() != reason {
		t.Errorf("%s: HTTP %d, gRPC %d %q, body %s; want %d, %d %q", where, d.GetStatus().GetCode(), resp.GetStatus().GetCode(),
			resp.GetStatus().GetMessage(), d.GetBody(), status, wantCode, reason)
	}
}

// rawHTTP sends one GET with target written as is on the request line (no client cleaning) and
// returns the status, the JSON body's message and the x-rill-* headers.
func rawHTTP(t *testing.T, addr, target string, headers map[string][]string) (int, string, map[string]string) {
	t.Helper()
	status, hdr, raw := rawGET(t, addr, target, headers)
	var body struct{ Message string }
	if status != 200 {
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Errorf("GET %s: status %d, body %q is not our JSON", target, status, raw)
		}
	}
	set := map[string]string{}
	for k, v := range hdr {
		if strings.HasPrefix(k, "X-Rill-") {
			set[k] = v[0]
		}
	}
	return status, body.Message, set
}

func rawGET(t *testing.T, addr, target string, headers map[string][]string) (int, http.Header, []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var b strings.Builder
	b.WriteString("GET " + target + " HTTP/1.1\r\nHost: authd\r\nConnection: close\r\n")
	for k, vs := range headers {
		for _, v := range vs {
			b.WriteString(k + ": " + v + "\r\n")
		}
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(c, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, raw
}
