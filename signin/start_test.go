package signin_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/adminapi/client"
	"github.com/rill-authd/rill-authd/internal/testenv"
)

// TestProviderDownAtStart: a provider that does not answer at start delays nothing: the
// daemon starts and serves, the button says the provider is unavailable (and the start link a
// 503), and once the provider answers, the next discovery attempt makes it usable.
func TestProviderDownAtStart(t *testing.T) {
	port := testenv.FreeLoopbackPort(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte("oidc_providers:\n  - name: test\n    issuer: http://localhost:"+strconv.Itoa(port)+"\n    client_id: "+clientID+"\n"), 0o600)
	t.Setenv("RILL_AUTHD_OIDC_TEST_CLIENT_SECRET", clientSecret)
	testenv.Bin(t, "rill-authd") // built before the clock starts
	began := time.Now()
	d := testenv.Start(t, "", "--config", cfg)
	if took := time.Since(began); took > 10*time.Second {
		t.Errorf("start took %s with the provider down", took)
	}
	if !strings.Contains(d.Stderr(), "oidc provider unavailable") {
		t.Errorf("no warning of the provider at start:\n%s", d.Stderr())
	}
	if _, err := client.New(d.URL(), d.Token).Whoami(context.Background()); err != nil {
		t.Fatalf("the admin API with the provider down: %v", err)
	}
	e := &env{d: d}
	a := e.agent(t)
	if p := a.get(d.URL() + "/ui/signin"); p.status != http.StatusOK || !strings.Contains(p.body, "Sign in with test: unavailable") {
		t.Fatalf("sign-in page with the provider down: %d\n%s", p.status, p.body)
	}
	if p := a.get(d.URL() + "/ui/oidc/test/start"); p.status != http.StatusServiceUnavailable || !strings.Contains(p.body, "unavailable") {
		t.Fatalf("start with the provider down: %d\n%s", p.status, p.body)
	}

	op := testenv.StartOIDCProviderAt(t, "127.0.0.1:"+strconv.Itoa(port),
		testenv.OPUser{Username: "ana", Password: password, Email: "ana@acme.io", EmailVerified: true})
	if !d.WaitFor("oidc provider ready", 15*time.Second) {
		t.Fatalf("the provider did not become ready:\n%s", d.Stderr())
	}
	if p := a.get(d.URL() + "/ui/signin"); !strings.Contains(p.body, `id="oidc-test" href="/ui/oidc/test/start`) {
		t.Fatalf("sign-in page once the provider answers:\n%s", p.body)
	}
	e.op = op
	a.authorizeURL("test")
}

// TestDiscoveryErrorChangeLogged: a provider down at start that then answers with another
// issuer than the one configured (the usual trailing /) is logged again with that error and
// what to fix; before, only the first failure (connection refused) was ever logged, and the
// button stayed unavailable with nothing in the log saying why.
func TestDiscoveryErrorChangeLogged(t *testing.T) {
	port := testenv.FreeLoopbackPort(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte("oidc_providers:\n  - name: test\n    issuer: http://localhost:"+strconv.Itoa(port)+"/\n    client_id: "+clientID+"\n"), 0o600)
	t.Setenv("RILL_AUTHD_OIDC_TEST_CLIENT_SECRET", clientSecret)
	d := testenv.Start(t, "", "--config", cfg)
	if !strings.Contains(d.Stderr(), "connection refused") {
		t.Fatalf("no warning of the provider down at start:\n%s", d.Stderr())
	}
	// The start's last line names the providers beside the token.
	if !strings.Contains(d.Stderr(), `msg="web console: sign in with a user token or an identity provider"`) || !strings.Contains(d.Stderr(), "oidc_providers=test") {
		t.Errorf("the start does not name the identity providers:\n%s", d.Stderr())
	}
	testenv.StartOIDCProviderAt(t, "127.0.0.1:"+strconv.Itoa(port))
	if !d.WaitFor("did not match the issuer URL returned by provider", 20*time.Second) {
		t.Fatalf("the issuer mismatch was not logged:\n%s", d.Stderr())
	}
	if !strings.Contains(d.Stderr(), "set issuer to exactly the issuer in the provider's discovery document") {
		t.Errorf("the mismatch is logged without what to fix:\n%s", d.Stderr())
	}
	if n := strings.Count(d.Stderr(), "did not match the issuer URL"); n != 1 {
		t.Errorf("the same error logged %d times, want once", n)
	}
}

// TestConfigRefusedAtStart: a provider the daemon could not use stops it before it opens a
// store: a mistake in the file is a usage error (exit 2, one line), a missing secret a
// run-time failure (exit 1) that names where the secret is read from.
func TestConfigRefusedAtStart(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		code       int
		want       string
	}{
		{"no issuer", "oidc_providers:\n  - {name: g, client_id: x}\n", 2, "config file: oidc_providers[0] (g): issuer is required"},
		{"misspelt key", "oidc_providers:\n  - {name: g, issuer: https://a.example, client_id: x, groups_clam: groups}\n", 2, `did you mean "groups_claim"?`},
		{"no secret", "oidc_providers:\n  - {name: my-idp, issuer: https://a.example, client_id: x}\n", 1, "no client secret: set client_secret_file or RILL_AUTHD_OIDC_MY_IDP_CLIENT_SECRET"},
		{"secret file missing", "oidc_providers:\n  - {name: g, issuer: https://a.example, client_id: x, client_secret_file: /nonexistent/secret}\n", 1, "client_secret_file: open /nonexistent/secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := filepath.Join(dir, "config.yaml")
			os.WriteFile(cfg, []byte(tc.yaml), 0o600)
			cmd := exec.Command(testenv.Bin(t, "rill-authd"), "--config", cfg, "--data-dir", filepath.Join(dir, "data"), "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0")
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != tc.code || !strings.Contains(string(out), tc.want) {
				t.Fatalf("exit %v, want %d with %q:\n%s", err, tc.code, tc.want, out)
			}
			if tc.code == 2 && strings.Count(strings.TrimSpace(string(out)), "\n") > 0 {
				t.Errorf("not one line:\n%s", out)
			}
			if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
				t.Error("a store was created before the configuration was refused")
			}
		})
	}
}
