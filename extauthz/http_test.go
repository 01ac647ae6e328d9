package extauthz_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rill-authd/rill-authd/extauthz"
	"github.com/rill-authd/rill-authd/internal/testenv"
	"github.com/rill-authd/rill-authd/resolver"
)

// authdHTTP serves the HTTP mode the way the daemon should mount it: in front of its mux, which
// would redirect a path with dot-segments instead of letting the check refuse it.
func authdHTTP(t *testing.T, f *fixture) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	s := httptest.NewServer(f.srv.Handler(mux))
	t.Cleanup(s.Close)
	return s
}

// TestHTTPMode drives the forward-auth mode as Envoy's http_service (path appended), nginx
// (X-Original-URI) and Traefik/Caddy (X-Forwarded-Uri, X-Forwarded-Method) call it.
func TestHTTPMode(t *testing.T) {
	f := newFixture(t, resolver.Options{})
	s := authdHTTP(t, f)
	tests := []struct {
		name       string
		url        string
		headers    map[string]string
		status     int
		wantHeader map[string]string
		remove     string
	}{
		{"envoy appends the path", "/ext_authz/v1/orgs/acme/projects/web/runtime/query",
			map[string]string{"Authorization": "Bearer " + f.tokens["alice"], "X-Rill-Org-Role": "admin", "X-Rill-Debug": "1"}, 200,
			map[string]string{"X-Rill-Org-Role": "viewer", "X-Rill-Subject": "alice@example.com", "X-Rill-Project": "web"}, "x-rill-debug"},
		{"nginx X-Original-URI", "/ext_authz",
			map[string]string{"Authorization": "Bearer " + f.tokens["svc"], "X-Original-URI": "/v1/organizations/acme/projects/web/runtime/api/sales"}, 200,
			map[string]string{"X-Rill-Auth-Kind": "service", "X-Rill-Project-Role": "editor", "X-Rill-Org-Role": ""}, ""},
		{"traefik X-Forwarded-Uri", "/ext_authz/",
			map[string]string{"Authorization": "Bearer " + f.tokens["carol"], "X-Forwarded-Uri": "/v1/orgs/acme/projects/web/x", "X-Forwarded-Method": "POST"}, 403,
			map[string]string{"Www-Authenticate": `Bearer realm="rill", error="insufficient_scope", error_description="no access to project acme/web"`}, ""},
		{"revoked", "/ext_authz/v1/orgs/acme/projects/web/x",
			map[string]string{"Authorization": "Bearer " + f.tokens["revoked"]}, 401,
			map[string]string{"Www-Authenticate": `Bearer realm="rill", error="invalid_token", error_description="token revoked"`, "Content-Type": "application/json"}, ""},
		{"missing", "/ext_authz/v1/orgs/acme/projects/web/x", nil, 401,
			map[string]string{"Www-Authenticate": `Bearer realm="rill", error="invalid_token", error_description="missing bearer token"`}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", s.URL+tc.url, nil)
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tc.status, body)
			}
			for k, v := range tc.wantHeader {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if got := resp.Header.Get("X-Envoy-Auth-Headers-To-Remove"); got != tc.remove {
				t.Errorf("x-envoy-auth-headers-to-remove = %q, want %q", got, tc.remove)
			}
			if tc.status != 200 {
				var b struct{ Message string }
				if err := json.Unmarshal(body, &b); err != nil || !strings.Contains(resp.Header.Get("Www-Authenticate"), b.Message) {
					t.Errorf("body %q does not carry the reason (%v)", body, err)
				}
			}
		})
	}
}

// identityHeaders are the headers nginx copies from the auth response to the upstream. Each is
// always set (to empty when rill-authd sets nothing, which drops it), so a client can never
// supply one.
var identityHeaders = []string{extauthz.HeaderKind, extauthz.HeaderSubject, extauthz.HeaderOrg, extauthz.HeaderProject,
	extauthz.HeaderOrgRole, extauthz.HeaderProjectRole, extauthz.HeaderPermissions, extauthz.HeaderAttributes, extauthz.HeaderTokenID}

// TestNginxAuthRequest puts Debian's nginx with auth_request in front of an echo upstream and
// proves that allowed requests carry our headers, forged ones never arrive, and 401/403 reach
// the client.
func TestNginxAuthRequest(t *testing.T) {
	bin := testenv.NginxBinary(t)
	f := newFixture(t, resolver.Options{})
	authd := authdHTTP(t, f)

	var hits atomic.Int64
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(r.Header)
	}))
	t.Cleanup(upstream.Close)

	dir := t.TempDir()
	port := testenv.FreePort(t)
	var copyHeaders strings.Builder
	for _, h := range identityHeaders {
		v := "$rill_" + strings.ReplaceAll(strings.TrimPrefix(h, "x-rill-"), "-", "_")
		fmt.Fprintf(&copyHeaders, "            auth_request_set %s $upstream_http_%s;\n", v, strings.ReplaceAll(h, "-", "_"))
		fmt.Fprintf(&copyHeaders, "            proxy_set_header %s %s;\n", h, v)
	}
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    server {
        listen 127.0.0.1:%[2]d;
        location / {
            auth_request /_rill_auth;
%[3]s            proxy_pass %[4]s;
        }
        location = /_rill_auth {
            internal;
            proxy_pass %[5]s/ext_authz;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Forwarded-Method $request_method;
        }
    }
}
`, dir, port, copyHeaders.String(), upstream.URL, authd.URL)
	addr := testenv.StartNginx(t, bin, dir, port, conf)

	get := func(path, tok string, forged map[string]string) (int, http.Header, map[string][]string) {
		t.Helper()
		return gatewayGet(t, addr, path, tok, forged)
	}
	forged := map[string]string{"X-Rill-Org-Role": "admin", "X-Rill-Project-Role": "admin", "X-Rill-Subject": "root@evil", "X-Rill-Attributes": "eyJhZG1pbiI6dHJ1ZX0"}

	// A user: our values replace the forged ones.
	code, _, seen := get("/v1/orgs/acme/projects/web/runtime/query", f.tokens["alice"], forged)
	if code != 200 {
		t.Fatalf("alice through nginx: status %d", code)
	}
	want := map[string]string{"X-Rill-Auth-Kind": "user", "X-Rill-Subject": "alice@example.com", "X-Rill-Org": "acme",
		"X-Rill-Project": "web", "X-Rill-Org-Role": "viewer", "X-Rill-Project-Role": "viewer", "X-Rill-Permissions": viewerPerms,
		"X-Rill-Token-Id": f.ids["alice"].String()}
	for k, v := range want {
		if got := seen[k]; len(got) != 1 || got[0] != v {
			t.Errorf("upstream saw %s = %q, want [%q]", k, got, v)
		}
	}
	if a := seen["X-Rill-Attributes"]; len(a) != 1 || a[0] == forged["X-Rill-Attributes"] {
		t.Errorf("upstream saw attributes %q", a)
	}

	// A service holds no org role: the forged one must not arrive at all.
	code, _, seen = get("/v1/organizations/acme/projects/web/runtime/api/sales", f.tokens["svc"], forged)
	if code != 200 {
		t.Fatalf("service through nginx: status %d", code)
	}
	if got, ok := seen["X-Rill-Org-Role"]; ok {
		t.Errorf("forged x-rill-org-role reached the upstream: %q", got)
	}
	if got := seen["X-Rill-Project-Role"]; len(got) != 1 || got[0] != "editor" {
		t.Errorf("upstream saw project role %q, want [editor]", got)
	}

	before := hits.Load()
	for _, tc := range []struct {
		name, tok string
		status    int
		www       string
	}{
		{"no token", "", 401, `Bearer realm="rill", error="invalid_token", error_description="missing bearer token"`},
		{"bad character", f.tokens["alice"][:68] + "!", 401, `Bearer realm="rill", error="invalid_token", error_description="bad character in token"`},
		{"revoked", f.tokens["revoked"], 401, `Bearer realm="rill", error="invalid_token", error_description="token revoked"`},
		{"no access", f.tokens["carol"], 403, ""},
	} {
		code, hdr, _ := get("/v1/orgs/acme/projects/web/runtime/query", tc.tok, forged)
		if code != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, code, tc.status)
		}
		if tc.www != "" && hdr.Get("Www-Authenticate") != tc.www {
			t.Errorf("%s: www-authenticate %q, want %q", tc.name, hdr.Get("Www-Authenticate"), tc.www)
		}
	}
	if n := hits.Load() - before; n != 0 {
		t.Errorf("%d denied requests reached the upstream", n)
	}

	// Hostile paths: nginx routes on its normalized $uri but sends $request_uri, raw, to us and to
	// the upstream. Our 400 is not a 401 or 403, so auth_request answers 500; a %00 nginx refuses
	// (400) on its own. Either way none reaches the upstream.
	before = hits.Load()
	ours := 0
	for _, tc := range hostilePaths {
		if tc.status != 400 || tc.grpcOnly {
			continue
		}
		want := 500
		if strings.Contains(tc.path, "%00") {
			want = 400
		} else {
			ours++
		}
		if code, _, body := rawGET(t, addr, tc.path, map[string][]string{"Authorization": {"Bearer " + f.tokens[tc.who]}}); code != want {
			t.Errorf("%s through nginx: status %d, want %d (%s)", tc.name, code, want, body)
		}
	}
	// Two Authorization headers: nginx refuses them itself (400, "client sent duplicate header line").
	if code, _, _ := rawGET(t, addr, "/v1/orgs/acme/projects/web/x", map[string][]string{"Authorization": {"Bearer " + f.tokens["alice"], "Bearer " + f.tokens["carol"]}}); code != 400 {
		t.Errorf("two authorization headers through nginx: %d", code)
	}
	if n := hits.Load() - before; n != 0 {
		t.Errorf("%d hostile requests reached the upstream", n)
	}
	if log, _ := os.ReadFile(filepath.Join(dir, "error.log")); strings.Count(string(log), "auth request unexpected status: 400") != ours {
		t.Errorf("nginx did not get our 400 %d times:\n%s", ours, log)
	}
}

// gatewayGet sends GET path through the gateway at addr with the bearer tok (none if "") and the
// forged headers, and returns the status, the headers and, on a 200, the headers the upstream
// saw (the test upstream answers them as JSON).
func gatewayGet(t *testing.T, addr, path, tok string, forged map[string]string) (int, http.Header, map[string][]string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for k, v := range forged {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var seen map[string][]string
	if resp.StatusCode == 200 {
		if err := json.NewDecoder(resp.Body).Decode(&seen); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, resp.Header, seen
}
