// Package daemon wires rill-authd together: it opens the store, builds the resolver, serves
// the gRPC and HTTP listeners, bootstraps a first superuser, and shuts everything down in
// order on a signal.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"gopkg.in/yaml.v3"

	"github.com/rill-authd/rill-authd/adminapi"
	"github.com/rill-authd/rill-authd/console"
	"github.com/rill-authd/rill-authd/extauthz"
	"github.com/rill-authd/rill-authd/keys"
	"github.com/rill-authd/rill-authd/metrics"
	"github.com/rill-authd/rill-authd/notify"
	"github.com/rill-authd/rill-authd/plugins"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/resolver"
	"github.com/rill-authd/rill-authd/signin"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/store/postgres"
	"github.com/rill-authd/rill-authd/token"
	"github.com/rill-authd/rill-authd/tracing"
)

// Daemon is a running rill-authd.
type Daemon struct {
	cfg      Config
	log      *slog.Logger
	logs     *liveLog // d.log's level and format
	stderr   io.Writer
	st       store.Store
	pg       *postgres.DB // st, when it is PostgreSQL
	ballast  []byte       // see gcBallast
	stale    *staleness   // when it is PostgreSQL
	res      *resolver.Resolver
	keys     *keys.Ring
	plugins  *plugins.Host
	metrics  *metrics.Metrics
	tracing  *tracing.Provider // nil: traces off
	console  *console.Console
	signin   *signin.Service // nil without oidc_providers
	oidcCfgs []signin.ProviderConfig
	grpc     *grpc.Server
	health   *health.Server
	http     *http.Server
	grpcLis  net.Listener
	httpLis  net.Listener
	ready    atomic.Bool
	serveErr chan error

	httpConns *connLimiter  // wraps httpLis: the bound on open HTTP connections
	tls       *certReloader // nil without TLS
	hup       chan os.Signal
	stopHUP   chan struct{}
	hupDone   chan struct{}

	// What a reload (reload.go) changes, and what it compares with.
	check      *extauthz.Server
	api        *adminapi.API
	applied    map[string]any // every flag's value in force
	pluginCfgs []plugins.Config

	healthStop, healthDone chan struct{} // followStaleness

	notifier   *notify.Notifier
	notifyStop context.CancelFunc // ends the notifier's loops
	notifyDone sync.WaitGroup
}

// NewLogger builds the slog logger the flags ask for.
func NewLogger(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Run starts the daemon and blocks until ctx is done, then shuts down gracefully.
func Run(ctx context.Context, cfg Config, stderr io.Writer) error {
	d, err := Start(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case err = <-d.serveErr:
		d.log.Error("listener failed", "err", err)
	}
	if serr := d.Shutdown(); serr != nil && err == nil {
		err = serr
	}
	return err
}

// Start opens the store, bootstraps, and starts serving. Call Shutdown to stop.
func Start(ctx context.Context, cfg Config, stderr io.Writer) (_ *Daemon, err error) {
	d := &Daemon{cfg: cfg, stderr: stderr, logs: newLiveLog(stderr, cfg.LogLevel, cfg.LogFormat), serveErr: make(chan error, 2)}
	d.log = d.logs.logger()
	defer func() {
		if err != nil {
			d.closeAll()
		}
	}()
	// The whole configuration is checked before anything is written: a mistake in it must not
	// leave a new store and a printed bootstrap token behind.
	if err := cfg.checkURLs(); err != nil {
		return nil, err
	}
	if err := cfg.checkSecretScanning(); err != nil {
		return nil, err
	}
	if err := cfg.checkDevice(); err != nil {
		return nil, err
	}
	webhooks, err := cfg.webhooks()
	if err != nil {
		return nil, err
	}
	if _, err := cfg.TrustedIssuers(); err != nil { // again below, against the store's issuer
		return nil, err
	}
	pcfgs, err := pluginConfigs(cfg.ConfigFile)
	if err != nil {
		return nil, err
	}
	oidcCfgs, err := oidcConfigs(cfg.ConfigFile)
	if err != nil {
		return nil, err
	}
	for _, p := range oidcCfgs { // a provider without its secret is a mistake to stop at
		if _, err := signin.LoadSecret(p); err != nil {
			return nil, err
		}
	}
	if len(oidcCfgs) > 0 && cfg.PublicURL == "" && socketPath(cfg.HTTPAddr) != "" {
		return nil, errors.New("oidc_providers need --public-url with a Unix socket --http-addr: the providers send the browser back to <public-url>/ui/oidc/<name>/callback")
	}
	// Listen first: the default issuer is the admin listener's own URL.
	gid, err := socketGroup(cfg.SocketGroup)
	if err != nil {
		return nil, err
	}
	if d.grpcLis, err = listen("--grpc-addr", cfg.GRPCAddr, gid); err != nil {
		return nil, err
	}
	if d.httpLis, err = listen("--http-addr", cfg.HTTPAddr, gid); err != nil {
		return nil, err
	}

	// TLS files first: a mistake in them must not wait for the store to open.
	if d.tls, err = newCertReloader(&cfg, d.log); err != nil {
		return nil, err
	}
	// Plugins too: one whose command cannot start stops the daemon before the store is opened
	// (or created, and its bootstrap token printed).
	d.metrics = metrics.New()
	for _, p := range pcfgs {
		d.metrics.PluginsConfigured(p.Name)
	}
	if d.plugins, err = plugins.Start(pcfgs, d.log, d.metrics); err != nil {
		return nil, err
	}
	// Traces before the store, whose queries they follow.
	if d.tracing, err = tracing.FromEnv(ctx, buildVersion(), d.log); err != nil {
		return nil, err
	}
	sopts := storeOptions{AuditRetention: cfg.AuditRetention, ExpiredTokenRetention: cfg.ExpiredTokenRetention, Logger: d.log}
	if d.tracing != nil {
		sopts.Tracer = d.tracing.QueryTracer()
		d.log.Info("traces: on", d.tracing.LogAttrs()...)
	}
	if d.st, err = cfg.StoreFlags.open(ctx, sopts); err != nil {
		return nil, err
	}
	if pg, ok := d.st.(*postgres.DB); ok {
		d.pg, d.stale = pg, newStaleness(pg, cfg.MaxStaleness)
		d.ballast = make([]byte, gcBallast)
		waitConnected(ctx, pg)
		d.log.Info("store: PostgreSQL", "url", cfg.Where(), "max_staleness", cfg.MaxStaleness.String())
	}
	issuer, err := d.resolveIssuer(ctx, cfg)
	if err != nil {
		return nil, err
	}
	cfg.Issuer, d.cfg.Issuer = issuer, issuer
	if err := d.checkActivationDelay(); err != nil {
		return nil, err
	}
	if cfg.EncryptionKeyFile == "" {
		d.log.Warn("no --encryption-key-file: the store, signing private keys included, lies unencrypted on disk or in the database; whoever can read it can mint credentials",
			"store", cfg.Where())
	}
	// One ring for the resolver (verify), the admin API (mint, rotate, JWKS) and the exchange
	// (mint): the resolver invalidates it on signing-key changes. A retired key lives as long as
	// the longest token it can have signed.
	trusted, err := cfg.TrustedIssuers()
	if err != nil {
		return nil, err
	}
	d.keys = keys.NewRing(d.st, keys.Options{MaxTTL: max(cfg.MaxCredentialTTL, cfg.ExchangeTTL), ActivationDelay: cfg.SigningKeyActivationDelay})
	maxStale := cfg.MaxStaleness
	if maxStale <= 0 {
		maxStale = -1 // 0 means not at all here, as for the feed
	}
	// The notifier first: the resolver's writer tells it of refused networks.
	d.startNotify(webhooks)
	d.res = resolver.New(d.st, resolver.Options{CacheSize: cfg.CacheSize, Logger: d.log, MaxStaleness: maxStale,
		Issuer: issuer, Audience: cfg.RuntimeAudience, Keys: d.keys,
		Trusted: trusted, JWKSRefresh: cfg.JWKSRefresh, Metrics: d.metrics, OnRefused: d.notifyRefused})
	d.registerGauges()
	if d.pg != nil {
		d.registerStoreGauges(d.pg)
	}

	if err := d.bootstrap(ctx); err != nil {
		return nil, err
	}
	d.pluginCfgs, d.applied = pcfgs, maps.Clone(cfg.flags)
	if d.applied == nil {
		d.applied = map[string]any{}
	}
	// Plugin results are per principal: only a change of a principal (or a reset) drops them.
	d.st.Subscribe(func(cs []store.Change) {
		for _, c := range cs {
			if c.IsReset() || c.Kind == store.ChangeUser || c.Kind == store.ChangeService {
				d.plugins.Invalidate()
				return
			}
		}
	})
	if made, err := d.keys.Ensure(ctx); err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	} else if made {
		d.log.Info("created a signing key for ephemeral credentials")
	}

	d.grpc = grpc.NewServer(append(extauthz.GRPCServerOptions(), d.grpcOptions()...)...)
	d.health = health.NewServer()
	healthpb.RegisterHealthServer(d.grpc, d.health)
	ecfg := extauthz.Config{DefaultOrg: cfg.DefaultOrg, DefaultProject: cfg.DefaultProject, Logger: d.log,
		Metrics: d.metrics, LogAllowedEvery: cfg.LogAllowedEvery, Tracer: d.tracing.ServerTracer(),
		TrustedProxyHops: cfg.TrustedProxyHops}
	if d.stale != nil {
		ecfg.Stale = d.stale.stale
	}
	ecfg.Plugins = d.plugins // asked only while it runs a plugin (a reload may add some)
	if cfg.TokenExchange {
		ecfg.Exchange = &extauthz.Exchange{Issuer: issuer, Audience: cfg.RuntimeAudience, InstanceID: cfg.RuntimeInstanceID,
			TTL: cfg.ExchangeTTL, Keys: d.keys.Keyset, Projects: d.st}
	}
	check := extauthz.New(d.res, ecfg)
	d.check = check
	check.Register(d.grpc)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", d.readyz)
	// The admin listener's root is where a newcomer points a browser: send them to the console
	// rather than a bare 404. Only "/" itself: any other unknown path stays a 404.
	mux.Handle("GET /{$}", http.RedirectHandler(console.Prefix+"/", http.StatusFound))
	d.api = adminapi.New(d.st, d.res, adminapi.Options{Logger: d.log, Issuer: issuer, Audience: cfg.RuntimeAudience,
		RuntimeHost: cfg.RuntimeHost, InstanceID: cfg.RuntimeInstanceID, MaxCredentialTTL: cfg.MaxCredentialTTL, FrontendURL: cfg.FrontendURL, Keys: d.keys, Plugins: d.plugins, Metrics: d.metrics,
		Stale: ecfg.Stale, MaxTokensPerOwner: cfg.MaxTokensPerOwner, TokenIssuesPerMinute: cfg.TokenIssueRate,
		OrgIssuesPerMinute: cfg.OrgTokenIssueRate, MaxPublicURLsPerProject: cfg.MaxPublicURLsPerProject, TrustedProxyHops: cfg.TrustedProxyHops,
		Device: d.startDevice(mux), DeviceTokenTTL: deviceTokenTTL(cfg.DeviceTokenTTL)})
	d.api.Register(mux)
	d.registerSecretScanning(mux)
	mux.Handle("GET /metrics", d.metrics.Handler())
	d.oidcCfgs = oidcCfgs
	if len(oidcCfgs) > 0 {
		base := cfg.PublicURL
		if base == "" {
			base = cfg.defaultIssuer(d.httpLis.Addr())
		}
		if d.signin, err = signin.New(signin.Options{Providers: oidcCfgs, CallbackBase: base, Store: d.st, Logger: d.log}); err != nil {
			return nil, err
		}
		d.signin.WaitDiscovered(5 * time.Second) // the start log says whether each is ready
	}
	// The web console calls the API's handlers in-process (mux), as the signed-in user.
	if d.console, err = console.New(console.Options{API: mux, Store: d.st, Metrics: d.metrics, Replica: d.replicaStates(), Logger: d.log, ExpiryWarning: cfg.ExpiryWarning, SignIn: d.signin}); err != nil {
		return nil, err
	}
	d.console.Register(mux)
	mux.Handle(extauthz.HTTPPrefix+"/", check)
	mux.Handle(extauthz.HTTPPrefix, check)
	// The check goes ahead of the mux, which would redirect a raw ".." before the check refuses it.
	// Admin requests and the console are traced; the HTTP mode of the check makes its own span.
	httpServe := d.newHTTPServer(check.Handler(d.tracing.Handler(mux)))
	d.warnPlaintext()
	d.handleSIGHUP()

	go func() {
		if err := d.grpc.Serve(d.grpcLis); err != nil {
			d.serveErr <- fmt.Errorf("gRPC: %w", err)
		}
	}()
	go func() {
		if err := d.http.Serve(httpServe); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.serveErr <- fmt.Errorf("HTTP: %w", err)
		}
	}()
	d.followStaleness() // SERVING unless (and until) the replica is stale
	d.ready.Store(true)
	d.log.Info("rill-authd started", "grpc_addr", listenAddr(d.grpcLis), "http_addr", listenAddr(d.httpLis), "store", cfg.Where(),
		"grpc_tls", cfg.tlsOn("grpc"), "http_tls", cfg.tlsOn("http"), "client_certs_required", cfg.TLSClientCAFile != "",
		"issuer", issuer, "jwks_url", strings.TrimSuffix(issuer, "/")+"/.well-known/jwks.json")
	if len(d.oidcCfgs) == 0 {
		d.log.Info("web console: sign in with a user token", "url", d.consoleURL())
	} else {
		names := make([]string, len(d.oidcCfgs))
		for i, p := range d.oidcCfgs {
			names[i] = p.Name
		}
		d.log.Info("web console: sign in with a user token or an identity provider", "url", d.consoleURL(), "oidc_providers", strings.Join(names, ","))
	}
	return d, nil
}

// inUseHint names the flag to change when the address is taken: the defaults (8080, 9191) are
// common ports, and a second daemon started next to a first needs both moved.
func inUseHint(err error, flag string) string {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Sprintf(" (another process listens there, perhaps another rill-authd: pass another %s)", flag)
	}
	return ""
}

func (d *Daemon) readyz(w http.ResponseWriter, _ *http.Request) {
	if !d.ready.Load() {
		http.Error(w, "not ready\n", http.StatusServiceUnavailable)
		return
	}
	if d.stale != nil {
		if reason, stale := d.stale.stale(); stale {
			http.Error(w, "not ready: "+reason+"\n", http.StatusServiceUnavailable)
			return
		}
	}
	if !d.plugins.Healthy() {
		http.Error(w, "not ready: a plugin is down (rillctl admin plugins)\n", http.StatusServiceUnavailable)
		return
	}
	io.WriteString(w, "ready\n")
}

// Shutdown stops taking requests, lets in-flight ones finish within ShutdownTimeout, and closes
// the store cleanly.
func (d *Daemon) Shutdown() error {
	d.ready.Store(false)
	if d.health != nil {
		d.health.Shutdown()
	}
	d.log.Info("shutting down", "timeout", d.cfg.ShutdownTimeout.String())
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.ShutdownTimeout)
	defer cancel()
	if d.http != nil {
		if err := d.http.Shutdown(ctx); err != nil {
			d.log.Warn("HTTP requests still running at the shutdown deadline were cut off", "err", err)
		}
	}
	if d.grpc != nil {
		done := make(chan struct{})
		go func() { d.grpc.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			d.grpc.Stop()
			<-done
		}
	}
	err := d.closeAll()
	d.log.Info("stopped")
	return err
}

func (d *Daemon) closeAll() error {
	d.stopFollowingStaleness()
	d.stopNotify()
	d.stopSIGHUP()
	for _, l := range []net.Listener{d.grpcLis, d.httpLis} {
		if l != nil {
			l.Close() // already closed by its server after a normal shutdown; harmless
		}
	}
	if d.signin != nil {
		d.signin.Close()
		d.signin = nil
	}
	if d.console != nil {
		d.console.Close()
		d.console = nil
	}
	if d.plugins != nil {
		d.plugins.Close()
		d.plugins = nil
	}
	if d.res != nil {
		d.res.Close()
		d.res = nil
	}
	var err error
	if d.st != nil {
		err = d.st.Close()
		d.st = nil
	}
	// Last: the spans of everything above are in the exporter's buffer by now.
	if d.tracing != nil {
		if terr := d.tracing.Shutdown(context.Background()); terr != nil {
			d.log.Warn("traces: the last spans were not sent", "err", terr)
		}
		d.tracing = nil
	}
	return err
}

// buildVersion is the module version the binary was built at, for the service.version of
// traces ("" for a development build).
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return ""
}

// bootstrap creates the first superuser and a token for it, once in the store's life. If an
// earlier start died half-way, the user is reused and its unseen tokens are replaced.
func (d *Daemon) bootstrap(ctx context.Context) error {
	var secret string
	ran, err := d.st.Bootstrap(ctx, func(ctx context.Context) error {
		u, err := d.st.GetUserByEmail(ctx, d.cfg.BootstrapEmail)
		if errors.Is(err, store.ErrNotFound) {
			u = store.User{ID: token.NewID(), Email: d.cfg.BootstrapEmail, DisplayName: "Bootstrap superuser", Superuser: true,
				CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC()}
			err = d.st.CreateUser(ctx, u)
		}
		if err != nil {
			return fmt.Errorf("create superuser: %w", err)
		}
		old, err := d.st.ListTokens(ctx, u.ID)
		if err != nil {
			return err
		}
		for _, t := range old {
			if err := d.st.DeleteToken(ctx, t.ID); err != nil {
				return err
			}
		}
		tok, err := token.New(token.User)
		if err != nil {
			return err
		}
		rec := store.NewToken(tok, u.ID, "bootstrap", "rill-authd", time.Now(), 0)
		if err := d.st.CreateToken(ctx, rec); err != nil {
			return fmt.Errorf("create bootstrap token: %w", err)
		}
		secret = tok.Encode()
		if f := d.cfg.BootstrapTokenFile; f != "" {
			if err := writeSecretFile(f, secret+"\n"); err != nil {
				return err
			}
		}
		return d.st.AppendAudit(ctx, store.AuditEvent{Actor: "rill-authd", Action: "bootstrap", Target: "user:" + u.Email, Outcome: "ok"})
	})
	if err != nil {
		return err
	}
	if ran {
		// Deliberately not through the logger: this is the one time a secret is shown. With a
		// token file it is not shown at all: stderr ends up in container logs.
		fmt.Fprintf(d.stderr, "rill-authd: first start: created superuser %s\n", d.cfg.BootstrapEmail)
		if d.cfg.BootstrapTokenFile != "" {
			fmt.Fprintf(d.stderr, "rill-authd: bootstrap token written to %s (mode 0600); it is not printed\n", d.cfg.BootstrapTokenFile)
		} else {
			fmt.Fprintf(d.stderr, "rill-authd: bootstrap token (shown once, store it now): %s\n", secret)
		}
	}
	return nil
}

// writeSecretFile writes data readable by the owner only, replacing any file atomically.
func writeSecretFile(path, data string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".token-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.WriteString(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// oidcConfigs reads the oidc_providers section of the YAML config file (checked already when
// the file was loaded).
func oidcConfigs(path string) ([]signin.ProviderConfig, error) {
	n, err := configSection(path, "oidc_providers")
	if n == nil || err != nil {
		return nil, err
	}
	return parseOIDCProviders(n)
}

// configSection is the value of key in the YAML config file at path (nil: none).
func configSection(path, key string) (*yaml.Node, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	root := docRoot(&doc)
	if root == nil || root.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if strings.ReplaceAll(root.Content[i].Value, "-", "_") == key {
			return deref(root.Content[i+1]), nil
		}
	}
	return nil, nil
}

// pluginConfigs reads the plugins section of the YAML config file, as strictly as the flags'
// loader (YAML) read it.
func pluginConfigs(path string) ([]plugins.Config, error) {
	n, err := configSection(path, "plugins")
	if n == nil || err != nil {
		return nil, err
	}
	return parsePlugins(n)
}

// registerGauges exposes values read at scrape time: the cache's counters, live tokens per kind
// (kept as counts in the store, so a scrape reads two keys), and the signing key's age.
func (d *Daemon) registerGauges() {
	m, res, st, ring := d.metrics, d.res, d.st, d.keys
	m.CounterFunc("rill_authd_cache_hits_total", "Resolves answered from the cache.", func() float64 { return float64(res.Stats().Hits) })
	m.CounterFunc("rill_authd_cache_misses_total", "Resolves that read the store.", func() float64 { return float64(res.Stats().Misses) })
	m.CounterFunc("rill_authd_cache_evictions_total", "Cached principals evicted to stay within --cache-size.", func() float64 { return float64(res.Stats().Evictions) })
	m.GaugeFunc("rill_authd_cache_entries", "Principals in the cache.", nil, func() float64 { return float64(res.Stats().Size) })
	m.CounterFunc("rill_authd_cache_drops_total", "Cached principals dropped because a change named them (a revoked token, a changed owner, project or signing key).",
		func() float64 { return float64(res.Stats().Drops) })
	m.CounterFunc("rill_authd_cache_rechecks_total", "Cached principals re-read from the store after a store reset.", func() float64 { return float64(res.Stats().Rechecks) })
	m.CounterFunc("rill_authd_cache_stale_answers_total", "Checks answered from a principal cached before a store reset because the store could not be reached to re-check it (within --max-staleness).",
		func() float64 { return float64(res.Stats().StaleServed) })
	for _, k := range token.Kinds {
		label := string(policy.KindOf(k))
		m.GaugeFunc("rill_authd_active_tokens", "Live (issued, not revoked) tokens, by kind.", map[string]string{"kind": label}, func() float64 {
			counts, err := st.CountTokens(context.Background())
			if err != nil {
				return math.NaN()
			}
			return float64(counts[k])
		})
	}
	m.GaugeFunc("rill_authd_signing_key_age_seconds", "Age of the key that signs ephemeral JWTs.", nil, func() float64 {
		ks, err := ring.Keyset(context.Background())
		if err != nil || ks.SignerCreated().IsZero() {
			return math.NaN()
		}
		return time.Since(ks.SignerCreated()).Seconds()
	})
}
