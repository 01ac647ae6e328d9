package extauthz_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rill-authd/rill-authd/internal/testenv"
	"github.com/rill-authd/rill-authd/resolver"
)

// TestCaddyForwardAuth puts Debian's caddy, configured by deploy/Caddyfile as shipped, in front
// of an echo upstream and proves what TestNginxAuthRequest proves of nginx: allowed requests
// carry our identity headers, no forged x-rill-* header reaches the upstream, and our 401, 403
// and 400 reach the client with their www-authenticate while the upstream sees nothing.
func TestCaddyForwardAuth(t *testing.T) {
	bin := testenv.CaddyBinary(t)
	f := newFixture(t, resolver.Options{})
	g := startCaddyGateway(t, bin, f, filepath.Join(testenv.ModuleRoot(), "deploy", "Caddyfile"))
	g.prove(t, false)
}

// TestCaddyForwardAuthDirective runs Caddy's forward_auth directive itself (with the client's
// x-rill-* headers dropped before it): allowed requests carry our identity headers and no
// forged value, denials pass back. On Debian's caddy (2.6) copy_headers sets a header we did not
// answer with to its placeholder's text, which is why deploy/Caddyfile writes the check out.
func TestCaddyForwardAuthDirective(t *testing.T) {
	bin := testenv.CaddyBinary(t)
	f := newFixture(t, resolver.Options{})
	conf := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(conf, []byte(`{
	admin off
	default_bind 127.0.0.1
}
{$RILL_SITE} {
	route {
		request_header -X-Rill-*
		forward_auth {$RILL_AUTHD} {
			uri /ext_authz
			copy_headers X-Rill-Auth-Kind X-Rill-Subject X-Rill-Org X-Rill-Project X-Rill-Org-Role X-Rill-Project-Role X-Rill-Permissions X-Rill-Attributes X-Rill-Token-Id
		}
		reverse_proxy {$RILL_UPSTREAM}
	}
}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startCaddyGateway(t, bin, f, conf)
	g.prove(t, true)
}

type caddyGateway struct {
	f    *fixture
	addr string
	hits *atomic.Int64
}

// startCaddyGateway runs caddy on the Caddyfile at conf between rill-authd's HTTP mode and an
// upstream that echoes the headers it got.
func startCaddyGateway(t *testing.T, bin string, f *fixture, conf string) *caddyGateway {
	authd := authdHTTP(t, f)
	hits := new(atomic.Int64)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(r.Header)
	}))
	t.Cleanup(upstream.Close)
	port := testenv.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	testenv.StartCaddy(t, bin, t.TempDir(), conf, addr,
		fmt.Sprintf("RILL_SITE=http://:%d", port), "CADDY_BIND=127.0.0.1", "CADDY_ADMIN=off",
		"RILL_AUTHD="+strings.TrimPrefix(authd.URL, "http://"), "RILL_UPSTREAM="+strings.TrimPrefix(upstream.URL, "http://"))
	return &caddyGateway{f: f, addr: addr, hits: hits}
}

// prove runs the gateway's requests. placeholderText allows a header we did not set to arrive
// as the text of its Caddy placeholder (forward_auth's copy_headers on Caddy 2.6), never with
// a forged value.
func (g *caddyGateway) prove(t *testing.T, placeholderText bool) {
	f, addr, hits := g.f, g.addr, g.hits
	get := func(path, tok string, forged map[string]string) (int, http.Header, map[string][]string) {
		t.Helper()
		return gatewayGet(t, addr, path, tok, forged)
	}
	forged := map[string]string{"X-Rill-Org-Role": "admin", "X-Rill-Project-Role": "admin", "X-Rill-Subject": "root@evil",
		"X-Rill-Attributes": "eyJhZG1pbiI6dHJ1ZX0", "X-Rill-Debug": "1", "X-Rill-": "bare"}

	// A user: our values replace the forged ones.
	code, _, seen := get("/v1/orgs/acme/projects/web/runtime/query", f.tokens["alice"], forged)
	if code != 200 {
		t.Fatalf("alice through caddy: status %d", code)
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
	for _, h := range []string{"X-Rill-Debug", "X-Rill-"} {
		if got, ok := seen[h]; ok {
			t.Errorf("forged %s reached the upstream: %q", h, got)
		}
	}

	// A service holds no org role: the forged one must not arrive at all.
	code, _, seen = get("/v1/organizations/acme/projects/web/runtime/api/sales", f.tokens["svc"], forged)
	if code != 200 {
		t.Fatalf("service through caddy: status %d", code)
	}
	if got, ok := seen["X-Rill-Org-Role"]; ok {
		if placeholderText && len(got) == 1 && got[0] == "{http.reverse_proxy.header.X-Rill-Org-Role}" {
			t.Logf("caddy's copy_headers set the unset x-rill-org-role to %q (not the forged value)", got[0])
		} else {
			t.Errorf("forged x-rill-org-role reached the upstream: %q", got)
		}
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
		{"no access", f.tokens["carol"], 403, `Bearer realm="rill", error="insufficient_scope", error_description="no access to project acme/web"`},
	} {
		code, hdr, _ := get("/v1/orgs/acme/projects/web/runtime/query", tc.tok, forged)
		if code != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, code, tc.status)
		}
		if hdr.Get("Www-Authenticate") != tc.www {
			t.Errorf("%s: www-authenticate %q, want %q", tc.name, hdr.Get("Www-Authenticate"), tc.www)
		}
	}
	if n := hits.Load() - before; n != 0 {
		t.Errorf("%d denied requests reached the upstream", n)
	}

	// Hostile paths: caddy sends the raw request URI to us in X-Forwarded-Uri, and passes our
	// 400 back as it is (or refuses the request itself). None reaches the upstream.
	before = hits.Load()
	for _, tc := range hostilePaths {
		if tc.status != 400 || tc.grpcOnly {
			continue
		}
		if code, _, body := rawGET(t, addr, tc.path, map[string][]string{"Authorization": {"Bearer " + f.tokens[tc.who]}}); code != 400 {
			t.Errorf("%s through caddy: status %d, want 400 (%s)", tc.name, code, body)
		}
	}
	if n := hits.Load() - before; n != 0 {
		t.Errorf("%d hostile requests reached the upstream", n)
	}
}
