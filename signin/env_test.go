package signin_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/adminapi/client"
	"github.com/rill-authd/rill-authd/internal/testenv"
)

const (
	clientID     = "rill-authd"
	clientSecret = "s3cret-of-the-console-client"
	password     = "correct horse"
)

// env is a real daemon with one OIDC provider "test" (a real OpenID provider on loopback),
// whose client is registered at the provider with the daemon's callback, and the users
// ana@acme.io (a user of ours) and the ones each test adds.
type env struct {
	d      *testenv.Daemon
	op     *testenv.OP
	admin  *client.Client
	secret string // the client secret, never to be seen in the log
}

func start(t *testing.T, extra string) *env {
	t.Helper()
	return startWith(t, "    allowed_domains: [acme.io]\n"+extra)
}

// startWith is start with the provider's entry ending with extra (allowed_domains and the like).
func startWith(t *testing.T, extra string) *env {
	t.Helper()
	op := testenv.StartOIDCProvider(t,
		testenv.OPUser{Username: "ana", Password: password, Email: "ana@acme.io", EmailVerified: true, Groups: []string{"analysts"}},
		testenv.OPUser{Username: "unverified", Password: password, Email: "ana2@acme.io", EmailVerified: false},
		testenv.OPUser{Username: "outsider", Password: password, Email: "eve@evil.example", EmailVerified: true},
		testenv.OPUser{Username: "stranger", Password: password, Email: "bob@acme.io", EmailVerified: true},
	)
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "client-secret")
	if err := os.WriteFile(secretFile, []byte(clientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.yaml")
	conf := "oidc_providers:\n" +
		"  - name: test\n" +
		"    issuer: " + op.Issuer + "\n" +
		"    client_id: " + clientID + "\n" +
		"    client_secret_file: " + secretFile + "\n" +
		"    groups_claim: groups\n" + extra
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	d := testenv.Start(t, "", "--config", cfg)
	if !d.WaitFor("oidc provider ready", 5*time.Second) {
		t.Fatalf("the provider is not ready at start:\n%s", d.Stderr())
	}
	op.AddClient(clientID, clientSecret, d.URL()+"/ui/oidc/test/callback")
	e := &env{d: d, op: op, admin: client.New(d.URL(), d.Token), secret: clientSecret}
	if _, err := e.admin.CreateOrg(context.Background(), "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.CreateUser(context.Background(), apiv1.UserRequest{Email: "ana@acme.io", Org: "acme", OrgRole: "viewer"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log("daemon:\n" + d.Stderr())
		}
	})
	return e
}

// agent is a browser without JavaScript: a cookie jar that follows the sign-in's redirects by
// hand, to stop where a test wants to tamper.
type agent struct {
	t   *testing.T
	e   *env
	jar *cookiejar.Jar
	c   *http.Client
}

func (e *env) agent(t *testing.T) *agent {
	jar, _ := cookiejar.New(nil)
	return &agent{t: t, e: e, jar: jar, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type page struct {
	status int
	loc    string
	body   string
	hdr    http.Header
}

func (a *agent) get(u string) page {
	a.t.Helper()
	resp, err := a.c.Get(u)
	if err != nil {
		a.t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	p := page{status: resp.StatusCode, body: string(b), hdr: resp.Header}
	if l, err := resp.Location(); err == nil {
		p.loc = l.String()
	}
	return p
}

// authorizeURL starts a sign-in with provider name at the daemon and returns where it sends
// the browser (the provider's authorization endpoint).
func (a *agent) authorizeURL(name string) string {
	a.t.Helper()
	p := a.get(a.e.d.URL() + "/ui/oidc/" + name + "/start?next=/ui/tokens")
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.loc, a.e.op.Issuer) {
		a.t.Fatalf("start: %d to %q, want 303 to the provider:\n%s", p.status, p.loc, p.body)
	}
	return p.loc
}

// login follows authorize (the provider's authorization URL) through the provider's login
// form as username, and returns the callback URL the provider sends the browser to.
func (a *agent) login(authorize, username string) string {
	a.t.Helper()
	return a.e.op.Login(a.t, a.c, authorize, username, password, a.e.d.URL())
}

// signedIn says whether the agent holds a console session cookie.
func (a *agent) signedIn() bool {
	u, _ := url.Parse(a.e.d.URL() + "/ui/")
	for _, c := range a.jar.Cookies(u) {
		if c.Name == "rill_console" && c.Value != "" {
			return true
		}
	}
	return false
}
