package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/alecthomas/kong"

	"github.com/rill-authd/rill-authd/resolver"
	"gopkg.in/yaml.v3"
)

// CLI is rill-authd's command tree: serve, the default, so `rill-authd --data-dir x` runs the
// daemon, and the commands that work on a store. Every flag also reads RILL_AUTHD_<FLAG> from
// the environment and <flag> (or <flag_with_underscores>) from the YAML file given by
// --config; the command line wins over the environment, which wins over the file.
type CLI struct {
	Config  kong.ConfigFlag  `help:"YAML config file; its keys are the flag names (data_dir: ..., grpc_addr: ...)." placeholder:"FILE"`
	Version kong.VersionFlag `help:"Print the version and exit." env:"-"`

	Serve      Config        `cmd:"" default:"withargs" help:"Run the daemon (the default command)."`
	Restore    RestoreCmd    `cmd:"" help:"Load a backup (rillctl admin backup) into an empty Badger store; run it with the daemon stopped."`
	CopyStore  CopyStoreCmd  `cmd:"" name:"copy-store" help:"Copy every record of one store into another, each a data directory or a postgres:// URL (to move from Badger to PostgreSQL, or back)."`
	ImportRill ImportRillCmd `cmd:"" name:"import-rill" help:"Import orgs, projects, users, groups, roles, services and live tokens from Rill's admin database (PostgreSQL); re-run to update; with Badger, run it with the daemon stopped."`
}

// StoreFlags choose and open a store; every command that works on one takes them.
type StoreFlags struct {
	Store             string `help:"The store: empty for the embedded one in --data-dir, or the postgres:// (postgresql://) URL of a PostgreSQL database that several replicas share." placeholder:"URL"`
	DataDir           string `help:"Directory of the Badger store (created if missing)." default:"./data" type:"path"`
	EncryptionKeyFile string `help:"Encrypt the store at rest with this AES key (16, 24 or 32 bytes, raw or hex); with PostgreSQL, the signing keys' private keys." type:"path" placeholder:"FILE"`
}

// Config is the configuration of `rill-authd serve`.
type Config struct {
	StoreFlags `embed:""`
	// ConfigFile is --config, where the plugins are listed.
	ConfigFile string `kong:"-"`

	GRPCAddr                  string        `name:"grpc-addr" help:"Listen address of the Envoy ext_authz gRPC service (loopback: a sidecar's Envoy is local; any other address without TLS is warned about)." default:"127.0.0.1:9191"`
	HTTPAddr                  string        `name:"http-addr" help:"Listen address of the admin API, HTTP ext_authz, health and metrics." default:"127.0.0.1:8080"`
	BootstrapTokenFile        string        `help:"On first start, write the superuser's bootstrap token to this file (mode 0600) instead of printing it." type:"path" placeholder:"FILE"`
	BootstrapEmail            string        `help:"Email of the superuser created on first start." default:"admin@localhost"`
	DefaultOrg                string        `help:"Org checked when neither the route nor the path names one." placeholder:"ORG"`
	DefaultProject            string        `help:"Project checked when neither the route nor the path names one." placeholder:"PROJECT"`
	TrustedProxyHops          int           `name:"trusted-proxy-hops" help:"Proxies in front of the HTTP (forward-auth) check that append to X-Forwarded-For: a token's allowed networks are checked against the address this many entries from its right. 0: the header is ignored and the connection's peer is the client. (The gRPC check reads Envoy's source address.)" default:"0"`
	CacheSize                 int           `help:"Resolved tokens kept in memory." default:"100000"`
	PublicURL                 string        `name:"public-url" help:"URL at which the Rill runtime (and clients) reach --http-addr, such as https://authd.example.com; the default --issuer." placeholder:"URL"`
	Issuer                    string        `help:"iss of the runtime JWTs this daemon mints (and accepts): a URL under which /.well-known/jwks.json serves our keys, as the Rill runtime fetches them (its RILL_RUNTIME_AUTH_ISSUER_URL). Recorded in the store by the first daemon; every replica must use the same. Default: --public-url, else the store's recorded issuer, else http(s)://<the --http-addr listener> (https with TLS on it)." placeholder:"URL"`
	ReplaceIssuer             bool          `name:"replace-issuer" help:"Record --issuer (or --public-url) in the store in place of the issuer recorded there, instead of refusing to start; restart every other replica with it after, and point the Rill runtime's RILL_RUNTIME_AUTH_ISSUER_URL at it."`
	SigningKeyActivationDelay time.Duration `name:"signing-key-activation-delay" help:"How long a key from rillctl admin rotate-signing-key is published in the JWKS before it signs. Keep it above the Rill runtime's 5-minute JWKS refetch (plus --max-staleness and a minute of JWKS caching), so a runtime that cached the JWKS never meets an unknown kid; 0: at once." default:"10m"`
	MaxCredentialTTL          time.Duration `help:"Longest ttl_seconds a credentials request may ask for (0 or none: 86400, as Rill)." default:"24h"`
	TrustedIssuer             []string      `help:"Accept RS256 JWTs of an external issuer (repeatable): issuer=URL,jwks=URL,audience=AUD,org=ORG[,project=P]. They get viewer-level reads on that org's project." sep:"none" placeholder:"SPEC"`
	JWKSRefresh               time.Duration `name:"jwks-refresh" help:"Least time between refetches of a trusted issuer's JWKS on an unknown kid." default:"1m"`
	TokenExchange             bool          `help:"Replace the upstream's authorization with a short-lived RS256 JWT in the Rill runtime's claim layout (iss = --issuer, JWKS at /.well-known/jwks.json)."`
	RuntimeAudience           string        `help:"aud of runtime JWTs (credentials and token exchange) for a project without a runtime audience of its own (imported from its Rill deployment): the runtime's RILL_RUNTIME_AUTH_AUDIENCE_URL." default:"rill-runtime"`
	RuntimeInstanceID         string        `name:"runtime-instance-id" help:"Runtime instance id of runtime JWTs for a project without one of its own (and a route with no instance_id context extension)." default:"default"`
	RuntimeHost               string        `help:"runtimeHost the credentials endpoint answers for a project without one of its own." placeholder:"URL"`
	FrontendURL               string        `name:"frontend-url" help:"URL of Rill's frontend (Rill Cloud's web app, as its admin service's frontend URL): iframe URLs are <frontend-url>/-/embed?…, public URLs <frontend-url>/<org>/<project>/-/share/<token>. Without it POST …/iframe answers 501." placeholder:"URL"`
	ExchangeTTL               time.Duration `help:"Life of an exchanged runtime token (reused until a fifth of it is left)." default:"5m"`
	AuditRetention            time.Duration `help:"How long audit events are kept (0 keeps them forever)." default:"2160h"`
	MaxTokensPerOwner         int           `name:"max-tokens-per-owner" help:"Most live (unexpired, unrevoked) tokens one user or service may hold; issuing one more through the admin API is refused with 409 until some are revoked (0: no cap). Imports are not capped." default:"1000"`
	TokenIssueRate            int           `name:"token-issue-rate" help:"Tokens one principal (a user or service; superusers are not limited) may issue per minute through this replica, in a burst or spread out; past it, 429 with Retry-After (0: no limit)." default:"60"`
	MaxStaleness              time.Duration `help:"With --store postgres://: how long a replica that cannot confirm it has every change keeps answering checks from memory; past it, checks and every authenticated admin request are 503 and gRPC health is NOT_SERVING until it is current (0: at once)." default:"30s"`
	ShutdownTimeout           time.Duration `help:"How long in-flight requests may take to finish on SIGTERM." default:"10s"`
	LogLevel                  string        `help:"Log level: debug, info, warn or error." default:"info" enum:"debug,info,warn,error"`
	LogFormat                 string        `help:"Log format: text or json." default:"text" enum:"text,json"`
	LogAllowedEvery           int           `help:"Log one allowed check in this many at info level (0: allowed checks only at debug level). Denied checks are always logged." default:"0"`

	// Listeners: TLS (tls.go) and what a connection may hold (listeners.go).
	TLSCertFile       string        `name:"tls-cert-file" group:"TLS" type:"path" placeholder:"FILE" help:"PEM certificate (chain) to serve TLS with. One certificate for both listeners, the gRPC check port and the HTTP port (see --tls-listeners)."`
	TLSKeyFile        string        `name:"tls-key-file" group:"TLS" type:"path" placeholder:"FILE" help:"PEM private key of --tls-cert-file."`
	TLSClientCAFile   string        `name:"tls-client-ca-file" group:"TLS" type:"path" placeholder:"FILE" help:"PEM CA bundle: require a client certificate signed by it on every TLS listener (mTLS); a client without one is refused at the handshake, health probes included."`
	TLSListeners      []string      `name:"tls-listeners" group:"TLS" enum:"grpc,http" default:"grpc,http" help:"Listeners that serve TLS when --tls-cert-file is set: grpc, http or both (http alone when Envoy is on loopback and only the admin API is exposed)."`
	TLSReloadInterval time.Duration `name:"tls-reload-interval" group:"TLS" help:"How often the TLS files are re-read; a change is served to new connections, live ones keep theirs. SIGHUP reloads at once. 0: on SIGHUP only." default:"10s"`

	HTTPReadHeaderTimeout    time.Duration `name:"http-read-header-timeout" group:"Connections" help:"Time a client has to send a request's headers (and finish its TLS handshake)." default:"10s"`
	HTTPReadTimeout          time.Duration `name:"http-read-timeout" group:"Connections" help:"Time a client has to send a whole request, body included." default:"30s"`
	HTTPWriteTimeout         time.Duration `name:"http-write-timeout" group:"Connections" help:"Time to answer a request, from the end of its headers to the end of the response." default:"30s"`
	HTTPIdleTimeout          time.Duration `name:"http-idle-timeout" group:"Connections" help:"Time a keep-alive HTTP connection may sit idle before it is closed." default:"15s"`
	HTTPMaxConns             int           `name:"http-max-conns" group:"Connections" help:"Most HTTP connections held open; at the limit a new one replaces the oldest idle or slow one. 0: min((RLIMIT_NOFILE - 128) / 2, 16384), at least 16, which leaves the rest of the file descriptors to the gRPC check port and the store." default:"0"`
	GRPCMaxConnectionIdle    time.Duration `name:"grpc-max-connection-idle" group:"Connections" help:"Close a gRPC connection with no call for this long (its client reconnects when it needs to)." default:"5m"`
	GRPCMaxConcurrentStreams uint32        `name:"grpc-max-concurrent-streams" group:"Connections" help:"Most checks in flight on one gRPC connection (Envoy opens another connection beyond it)." default:"1024"`
	GRPCKeepaliveMinTime     time.Duration `name:"grpc-keepalive-min-time" group:"Connections" help:"Least time between a gRPC client's keepalive pings; a client that pings more often is disconnected." default:"10s"`
}

// Run runs the daemon until ctx ends (kong calls it for `serve`).
func (c *Config) Run(ctx context.Context, stderr io.Writer, cli *CLI) error {
	c.ConfigFile = string(cli.Config)
	return Run(ctx, *c, stderr)
}

// YAML is a kong configuration loader for YAML files: it hands the file to kong's JSON
// resolver, which matches keys to flag names, behind fileResolver.
func YAML(r io.Reader) (kong.Resolver, error) {
	var v map[string]any
	if err := yaml.NewDecoder(r).Decode(&v); err != nil && err != io.EOF {
		return nil, fmt.Errorf("parse config file: %w", err)
	}
	// Accept data-dir and data_dir alike: kong's resolver looks up the underscore form.
	norm := make(map[string]any, len(v))
	for k, val := range v {
		norm[strings.ReplaceAll(k, "-", "_")] = val
	}
	b, err := json.Marshal(norm)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	inner, err := kong.JSON(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	return fileResolver{keys: slices.Sorted(maps.Keys(norm)), inner: inner}, nil
}

// fileResolver is the config file's resolver. kong applies environment variables as defaults,
// which any resolver overrides; this one steps back for a flag set in the environment, so the
// precedence is the documented one: command line, then environment, then file.
type fileResolver struct {
	keys  []string // the file's keys, with underscores
	inner kong.Resolver
}

func (f fileResolver) Resolve(ctx *kong.Context, parent *kong.Path, flag *kong.Flag) (any, error) {
	for _, e := range flag.Envs {
		if _, ok := os.LookupEnv(e); ok {
			return nil, nil
		}
	}
	return f.inner.Resolve(ctx, parent, flag)
}

// Validate refuses a key that names no flag (a misspelt data_dir would otherwise start a new,
// empty store in ./data), with the closest flag as a hint, as kong does on the command line.
func (f fileResolver) Validate(app *kong.Application) error {
	known := map[string]bool{"plugins": true} // read by pluginConfigs
	var names []string                        // the spelling to suggest
	var walk func(n *kong.Node)
	walk = func(n *kong.Node) {
		for _, fl := range n.Flags {
			names = append(names, strings.ReplaceAll(fl.Name, "-", "_"))
			known[names[len(names)-1]] = true
			parts := strings.Split(fl.Name, "-") // kong also takes the camelCase form
			for i := 1; i < len(parts); i++ {
				parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
			}
			known[strings.Join(parts, "")] = true
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(app.Node)
	for _, k := range f.keys {
		if known[k] {
			continue
		}
		best, dist := "", 3 // suggest only a near miss
		slices.Sort(names)
		for _, name := range append(names, "plugins") {
			if d := editDistance(k, name); d < dist {
				best, dist = name, d
			}
		}
		if best != "" {
			return fmt.Errorf("config file: unknown key %q, did you mean %q?", k, best)
		}
		return fmt.Errorf("config file: unknown key %q (keys are the flag names, such as data_dir)", k)
	}
	return nil
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// KongOptions are the options the daemon's main parses Config with.
func KongOptions(version string) []kong.Option {
	return []kong.Option{
		kong.Name("rill-authd"),
		kong.Description("Auth sidecar for Rill: answers Envoy ext_authz checks for rill_usr_/rill_svc_ tokens and JWTs, and serves the admin API that rillctl talks to."),
		kong.DefaultEnvars("RILL_AUTHD"),
		kong.Configuration(YAML),
		kong.Vars{"version": version},
		kong.BindTo(context.Background(), (*context.Context)(nil)),
	}
}

// TrustedIssuers parses the --trusted-issuer specs.
func (c *Config) TrustedIssuers() ([]resolver.TrustedIssuer, error) {
	var out []resolver.TrustedIssuer
	for _, spec := range c.TrustedIssuer {
		var ti resolver.TrustedIssuer
		for _, kv := range strings.Split(spec, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok || v == "" {
				return nil, fmt.Errorf("--trusted-issuer %q: %q is not key=value", spec, kv)
			}
			switch k {
			case "issuer":
				ti.Issuer = v
			case "jwks":
				ti.JWKSURL = v
			case "audience":
				ti.Audience = v
			case "org":
				ti.Org = v
			case "project":
				ti.Project = v
			default:
				return nil, fmt.Errorf("--trusted-issuer %q: unknown key %q (issuer, jwks, audience, org, project)", spec, k)
			}
		}
		switch {
		case ti.Issuer == "" || ti.JWKSURL == "" || ti.Audience == "" || ti.Org == "":
			return nil, fmt.Errorf("--trusted-issuer %q: issuer, jwks, audience and org are required", spec)
		case !strings.HasPrefix(ti.JWKSURL, "https://") && !strings.HasPrefix(ti.JWKSURL, "http://"):
			return nil, fmt.Errorf("--trusted-issuer %q: jwks must be an http(s) URL", spec)
		case ti.Issuer == c.Issuer:
			return nil, fmt.Errorf("--trusted-issuer %q: that is this daemon's own --issuer", spec)
		}
		out = append(out, ti)
	}
	return out, nil
}

// tlsOn says whether the listener ("grpc" or "http") serves TLS.
func (c *Config) tlsOn(listener string) bool {
	return c.TLSCertFile != "" && slices.Contains(c.TLSListeners, listener)
}

// checkURLs refuses a --public-url or --issuer that is not an http(s) URL, before anything
// starts: the Rill runtime fetches its keys from <issuer>/.well-known/jwks.json and compares
// iss to its configured issuer, so anything else would fail later and far away.
func (c *Config) checkURLs() error {
	for _, f := range []struct{ flag, v string }{{"--public-url", c.PublicURL}, {"--issuer", c.Issuer}, {"--frontend-url", c.FrontendURL}} {
		if f.v == "" {
			continue
		}
		u, err := url.Parse(f.v)
		bad := err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != ""
		if bad && f.flag == "--frontend-url" {
			return fmt.Errorf("--frontend-url %q is not a URL: iframe URLs are <frontend-url>/-/embed?..., so give http(s)://host[:port][/path] of Rill's web app", f.v)
		}
		if bad {
			return fmt.Errorf("%s %q is not a URL: the Rill runtime fetches the keys of the JWTs we mint from <issuer>/.well-known/jwks.json, "+
				"so give http(s)://host[:port][/path] (leave --issuer unset to use --public-url, or the admin listener's http://address)", f.flag, f.v)
		}
	}
	return nil
}

// explicitIssuer is the iss the flags ask for, and the flag that gave it ("" for neither).
func (c *Config) explicitIssuer() (url, flag string) {
	if c.Issuer != "" {
		return c.Issuer, "--issuer"
	}
	if c.PublicURL != "" {
		return c.PublicURL, "--public-url"
	}
	return "", ""
}

// defaultIssuer is the URL of the admin listener at admin: https when it serves TLS, an
// unspecified host as 127.0.0.1, which a runtime on this machine reaches (set --public-url for
// one elsewhere).
func (c *Config) defaultIssuer(admin net.Addr) string {
	host, port, err := net.SplitHostPort(admin.String())
	if ip := net.ParseIP(host); err == nil && (ip == nil || ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	scheme := "http://"
	if c.tlsOn("http") {
		scheme = "https://"
	}
	return scheme + net.JoinHostPort(host, port)
}
