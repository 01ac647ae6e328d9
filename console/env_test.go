package console_test

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/adminapi"
	"github.com/rill-authd/rill-authd/console"
	"github.com/rill-authd/rill-authd/keys"
	"github.com/rill-authd/rill-authd/metrics"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/resolver"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/store/badger"
	"github.com/rill-authd/rill-authd/token"
)

// clock is a settable time for session timeouts.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is the real admin API over a real (in-memory) Badger store, with the console on the same
// mux, served on 127.0.0.1: what the daemon wires, without the process around it.
type env struct {
	srv    *httptest.Server
	st     *badger.DB
	con    *console.Console
	clock  *clock
	tokens map[string]string
}

func setup(t testing.TB, useTLS bool) *env {
	t.Helper()
	st, err := badger.Open(badger.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ring := keys.NewRing(st, keys.Options{})
	res := resolver.New(st, resolver.Options{TouchInterval: -1, Issuer: "https://authd.test", Audience: "rill-runtime", Keys: ring})
	t.Cleanup(res.Close)
	ctx := context.Background()
	if _, err := ring.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	mux := http.NewServeMux()
	adminapi.New(st, res, adminapi.Options{Issuer: "https://authd.test", Audience: "rill-runtime", Keys: ring, Metrics: m}).Register(mux)
	clk := &clock{t: time.Now()}
	con, err := console.New(console.Options{API: mux, Store: st, Metrics: m, Now: clk.now, ExpiryWarning: 7 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(con.Close)
	con.Register(mux)
	e := &env{st: st, con: con, clock: clk, tokens: map[string]string{}}
	if useTLS {
		e.srv = httptest.NewTLSServer(mux)
	} else {
		e.srv = httptest.NewServer(mux)
	}
	t.Cleanup(e.srv.Close)

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.CreateOrg(ctx, store.Org{Name: "acme"}))
	must(st.CreateProject(ctx, store.Project{Org: "acme", Name: "web"}))
	for name, u := range map[string]store.User{
		"su":     {Email: "root@x.io", Superuser: true},
		"admin":  {Email: "admin@acme.io", OrgRoles: map[string]policy.Role{"acme": "admin"}},
		"viewer": {Email: "viewer@acme.io", OrgRoles: map[string]policy.Role{"acme": "viewer"}},
	} {
		u.ID = "u-" + name
		must(st.CreateUser(ctx, u))
		e.tokens[name] = e.issue(t, token.User, u.ID, name)
	}
	must(st.CreateService(ctx, store.Service{ID: "s-etl", Org: "acme", Name: "etl", OrgRole: "viewer", Attributes: map[string]any{}}))
	e.tokens["svc"] = e.issue(t, token.Service, "s-etl", "")
	return e
}

func (e *env) issue(t testing.TB, k token.Kind, owner, name string) string {
	t.Helper()
	tok, err := token.New(k)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.CreateToken(context.Background(), store.NewToken(tok, owner, name, "test", time.Now(), 0)); err != nil {
		t.Fatal(err)
	}
	return tok.Encode()
}

// browser is an HTTP client with a cookie jar that does not follow redirects, so tests see them.
type browser struct {
	t    testing.TB
	base string
	c    *http.Client
	csrf string
}

func (e *env) browser(t testing.TB) *browser {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the test server's own certificate
	return &browser{t: t, base: e.srv.URL, c: c}
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

type resp struct {
	code int
	h    http.Header
	body string
	ck   []*http.Cookie
}

func (b *browser) do(method, path string, form url.Values, hdr ...string) resp {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	r, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer r.Body.Close()
	raw, _ := io.ReadAll(r.Body)
	out := resp{code: r.StatusCode, h: r.Header, body: string(raw), ck: r.Cookies()}
	if m := csrfRe.FindStringSubmatch(out.body); m != nil {
		b.csrf = m[1]
	}
	return out
}

func (b *browser) get(path string) resp { return b.do("GET", path, nil) }

// post sends a form with the page's CSRF token (the last one seen).
func (b *browser) post(path string, form url.Values) resp {
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", b.csrf)
	return b.do("POST", path, form)
}

func (b *browser) signIn(tok string) resp {
	b.t.Helper()
	if r := b.get("/ui/signin"); r.code != 200 {
		b.t.Fatalf("sign-in page: %d %s", r.code, r.body)
	}
	r := b.post("/ui/signin", url.Values{"token": {tok}})
	if r.code == http.StatusSeeOther {
		b.get("/ui/tokens") // a page, for its CSRF token
	}
	return r
}
