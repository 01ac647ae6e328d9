// Package console is rill-authd's web console, served by the daemon at /ui/ on the admin
// listener: server-rendered html/template pages with a little vanilla JS, all embedded in the
// binary. A person signs in with a user token; the server keeps it in a session (the browser
// holds only an opaque cookie) and every page and action is a request to the admin API's own
// handler, in-process, with that token: the same authentication, authorization, metrics and
// audit as rillctl gets, the audit events marked "via: ui" (adminapi.WithVia).
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rill-authd/rill-authd/metrics"
	"github.com/rill-authd/rill-authd/signin"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Store is what the Overview reads directly (the API has no endpoint for it): live token
// counts; and, for the audit log (superusers only), a token's display prefix and name, to name
// the tokens its events name by UUID. The signing keys come from the API, which states each
// key's state once for every client.
type Store interface {
	CountTokens(ctx context.Context) (map[token.Kind]uint64, error)
	GetToken(ctx context.Context, id token.ID) (store.Token, error)
}

// ReplicaState is a PostgreSQL replica's view of the change feed, as the Overview shows it.
type ReplicaState struct {
	Name        string // this replica's admin address
	Applied     uint64 // newest change applied here
	Latest      uint64 // newest change in PostgreSQL (0 with LatestErr)
	LatestErr   string
	ConfirmedAt time.Time // when it last confirmed it had every change
	Connected   bool      // following the feed
	Stale       bool      // denying checks (--max-staleness passed)
}

// Options configures the console.
type Options struct {
	// API is the admin API's handler (the mux adminapi registered on): every read and action
	// of the console is a request to it.
	API http.Handler
	// Store, Metrics and Replica feed the Overview (superusers only); any may be nil.
	Store   Store
	Metrics *metrics.Metrics
	Replica func(ctx context.Context) []ReplicaState
	Logger  *slog.Logger
	Now     func() time.Time
	// IdleTimeout and MaxAge bound a session (defaults 30 min and 12 h).
	IdleTimeout, MaxAge time.Duration
	// SampleEvery is how often the checks counter is read for the chart (default 10 s).
	SampleEvery time.Duration
	// ExpiryWarning shows a banner on every page to a user whose own tokens expire within it
	// (--expiry-warning; 0: none).
	ExpiryWarning time.Duration
	// SignIn offers sign-in with the configured OpenID providers (nil: tokens only).
	SignIn *signin.Service
}

// Console serves the pages.
type Console struct {
	o        Options
	log      *slog.Logger
	now      func() time.Time
	sessions *sessions
	ring     *ring
	pages    map[string]*template.Template
	static   http.Handler
	mux      *http.ServeMux
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

// Prefix is where the console is mounted.
const Prefix = "/ui"

// New builds the console and starts its sampler of the checks counter; Close stops it.
func New(o Options) (*Console, error) {
	if o.API == nil {
		return nil, errors.New("console: no admin API handler")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 30 * time.Minute
	}
	if o.MaxAge == 0 {
		o.MaxAge = 12 * time.Hour
	}
	if o.SampleEvery == 0 {
		o.SampleEvery = 10 * time.Second
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	static, _ := fs.Sub(assets, "static")
	c := &Console{o: o, log: o.Logger, now: o.Now, pages: pages, ring: newRing(),
		sessions: newSessions(o.Now, o.IdleTimeout, o.MaxAge),
		static:   http.StripPrefix(Prefix+"/static/", http.FileServerFS(static)),
		stop:     make(chan struct{}), done: make(chan struct{})}
	c.sessions.revoke = c.revokeEnded
	c.routes()
	c.sample()
	go c.sampler()
	return c, nil
}

// Close stops the sampler (and the revocation of ended sessions' tokens).
func (c *Console) Close() {
	c.stopOnce.Do(func() { close(c.stop) })
	<-c.done
}

func (c *Console) sampler() {
	defer close(c.done)
	t := time.NewTicker(c.o.SampleEvery)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			c.sample()
			c.sessions.revokeEnded()
		}
	}
}

func (c *Console) sample() { c.ring.record(c.now(), c.o.Metrics.CheckTotals()) }

// Register mounts the console at /ui/ on mux.
func (c *Console) Register(mux *http.ServeMux) {
	mux.Handle(Prefix+"/", c)
	mux.Handle("GET "+Prefix, http.RedirectHandler(Prefix+"/", http.StatusFound))
}

// csp allows our own script and style files only: no inline script, no inline style, no
// framing, forms posting to us only.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// ServeHTTP sets the security headers on every answer and turns a panic into an error page.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			c.log.Error("console: panic serving a page", "path", r.URL.Path, "panic", fmt.Sprint(v))
			c.errorPage(w, r, nil, http.StatusInternalServerError, "Something went wrong", "The console hit an internal error; it is in the rill-authd log.")
		}
	}()
	if strings.HasPrefix(r.URL.Path, Prefix+"/static/") {
		h.Set("Cache-Control", "private, max-age=300")
		c.static.ServeHTTP(w, r)
		return
	}
	h.Set("Cache-Control", "no-store")
	c.mux.ServeHTTP(w, r)
}

func (c *Console) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /ui/{$}", c.home)
	m.HandleFunc("GET /ui/signin", c.signinPage)
	m.HandleFunc("POST /ui/signin", c.signin)
	m.HandleFunc("POST /ui/signout", c.form(c.signout))
	m.HandleFunc("GET /ui/oidc/{name}/start", c.oidcStart)
	m.HandleFunc("GET /ui/oidc/{name}/callback", c.oidcCallback)
	m.HandleFunc("GET /ui/overview", c.page(c.overview))
	m.HandleFunc("GET /ui/tokens", c.page(c.myTokens))
	m.HandleFunc("POST /ui/tokens", c.form(c.issueMyToken))
	m.HandleFunc("POST /ui/tokens/revoke", c.form(c.revokeMyToken))
	m.HandleFunc("POST /ui/tokens/networks", c.form(c.editMyTokenNetworks))
	m.HandleFunc("GET /ui/services", c.page(c.services))
	m.HandleFunc("POST /ui/services", c.form(c.createService))
	m.HandleFunc("GET /ui/services/{name}", c.page(c.service))
	m.HandleFunc("POST /ui/services/{name}/edit", c.form(c.editService))
	m.HandleFunc("POST /ui/services/{name}/role", c.form(c.setServiceRole))
	m.HandleFunc("POST /ui/services/{name}/tokens", c.form(c.issueServiceToken))
	m.HandleFunc("POST /ui/services/{name}/tokens/revoke", c.form(c.revokeServiceToken))
	m.HandleFunc("POST /ui/services/{name}/tokens/networks", c.form(c.editServiceTokenNetworks))
	m.HandleFunc("POST /ui/services/{name}/delete", c.form(c.deleteService))
	m.HandleFunc("GET /ui/publicurls", c.page(c.publicURLs))
	m.HandleFunc("POST /ui/publicurls/limits", c.form(c.editPublicURLLimits))
	m.HandleFunc("POST /ui/publicurls/revoke", c.form(c.revokePublicURL))
	m.HandleFunc("GET /ui/members", c.page(c.members))
	m.HandleFunc("GET /ui/hygiene", c.page(c.hygiene))
	m.HandleFunc("POST /ui/hygiene/revoke", c.form(c.hygieneRevoke))
	m.HandleFunc("GET /ui/settings", c.page(c.settings))
	m.HandleFunc("POST /ui/settings/signin-rules", c.form(c.setSigninRules))
	m.HandleFunc("GET /ui/audit", c.page(c.audit))
	m.HandleFunc("GET /ui/audit.csv", c.auditCSV)
	m.HandleFunc("GET /ui/device", c.page(c.devicePage))
	m.HandleFunc("POST /ui/device/approve", c.form(c.deviceDecide(true)))
	m.HandleFunc("POST /ui/device/deny", c.form(c.deviceDecide(false)))
	m.HandleFunc("/ui/", c.notFound)
	c.mux = m
}

func parsePages() (map[string]*template.Template, error) {
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("console: templates: %w", err)
	}
	names, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(assets, n)
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", n, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// notFound answers a path with no page: to a signed-in browser inside the console (its menu,
// no sign-in link), to anyone else with a way to sign in. Nothing is acted on, so a POST here
// needs no CSRF token to be told so.
func (c *Console) notFound(w http.ResponseWriter, r *http.Request) {
	msg := "There is no console page at " + r.URL.Path + "."
	if s, _ := c.sessions.get(r); s == nil {
		c.errorPage(w, r, nil, http.StatusNotFound, "Not found (404)", msg)
		return
	}
	if v, ok := c.enter(w, r, false); ok {
		c.errorPage(w, r, v, http.StatusNotFound, "Not found (404)", msg)
	}
}
