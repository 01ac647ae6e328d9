package daemon_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rill-authd/rill-authd/internal/testenv"
)

// TestNginxMTLSToHTTPMode puts Debian's nginx with auth_request in front of an upstream and
// sends its auth subrequests to the daemon's HTTP mode over mTLS (proxy_ssl_certificate): a
// good token reaches the upstream with our headers, a bad one gets 401, and a location that
// presents no client certificate is refused by the daemon at the handshake.
func TestNginxMTLSToHTTPMode(t *testing.T) {
	bin := testenv.NginxBinary(t)
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca")
	srvCert, srvKey, _ := ca.issue(t, "server", true)
	cliCert, cliKey, _ := ca.issue(t, "nginx", false)
	d := testenv.Start(t, "", "--tls-cert-file", srvCert, "--tls-key-file", srvKey, "--tls-client-ca-file", ca.File)

	var hits atomic.Int64
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprintf(w, "subject=%s org=%s", r.Header.Get("X-Rill-Subject"), r.Header.Get("X-Rill-Org"))
	}))
	t.Cleanup(upstream.Close)

	port := testenv.FreePort(t)
	auth := func(name string, withCert bool) string {
		cert := ""
		if withCert {
			cert = fmt.Sprintf("            proxy_ssl_certificate %s;\n            proxy_ssl_certificate_key %s;\n", cliCert, cliKey)
		}
		return fmt.Sprintf(`        location = /%[1]s {
            internal;
            proxy_pass https://%[2]s/ext_authz;
%[3]s            proxy_ssl_trusted_certificate %[4]s;
            proxy_ssl_verify on;
            proxy_ssl_name localhost;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Forwarded-Method $request_method;
        }
`, name, d.HTTPAddr, cert, ca.File)
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
        location /v1/ {
            auth_request /_auth;
            auth_request_set $rill_subject $upstream_http_x_rill_subject;
            auth_request_set $rill_org $upstream_http_x_rill_org;
            proxy_set_header X-Rill-Subject $rill_subject;
            proxy_set_header X-Rill-Org $rill_org;
            proxy_pass %[3]s;
        }
        location /nocert/ {
            auth_request /_auth_nocert;
            proxy_pass %[3]s;
        }
%[4]s%[5]s    }
}
`, dir, port, upstream.URL, auth("_auth", true), auth("_auth_nocert", false))
	addr := testenv.StartNginx(t, bin, dir, port, conf)

	get := func(path, tok string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get("/v1/orgs/acme/projects/web/x", d.Token); code != 200 || body != "subject=admin@localhost org=acme" {
		log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		t.Fatalf("through nginx over mTLS: %d %q\n%s", code, body, log)
	}
	if code, _ := get("/v1/orgs/acme/projects/web/x", d.Token[:len(d.Token)-6]+"AAAAAA"); code != 401 {
		t.Errorf("forged token through nginx over mTLS: %d, want 401", code)
	}
	before := hits.Load()
	if code, _ := get("/nocert/orgs/acme/projects/web/x", d.Token); code != 500 {
		t.Errorf("auth subrequest without a client certificate: %d, want 500 (the daemon refuses the handshake)", code)
	}
	if hits.Load() != before {
		t.Errorf("a request whose auth subrequest had no client certificate reached the upstream")
	}
	log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
	if !strings.Contains(string(log), "certificate required") && !strings.Contains(string(log), "SSL_do_handshake() failed") {
		t.Errorf("nginx's log does not show the refused handshake:\n%s", log)
	}
}
