package daemon

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kong"

	"github.com/rill-authd/rill-authd/plugins"
	"github.com/rill-authd/rill-authd/resolver"
	"github.com/rill-authd/rill-authd/signin"
	"gopkg.in/yaml.v3"
)

// CLI is rill-authd's command tree: serve, the default, so `rill-authd --data-dir x` runs the
// daemon, and the commands that work on a store. Every flag also reads RILL_AUTHD_<FLAG> from
// the environment and <flag> (or <flag_with_underscores>) from the YAML file given by
// --config; the command line wins over the environment, which wins over the file.
type CLI struct {
	Config  kong.ConfigFlag  `help:"YAML config file; its keys are the flag names (data_dir: ..., grpc_addr: ...). SIGHUP re-reads it: logging, token caps and rate, max staleness, trusted issuers, frontend and runtime URLs and plugins apply at once; other changes are named as needing a restart." placeholder:"FILE"`
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
	// args and flags are the command line this was parsed from and the value of every flag
	// (reload.go): a SIGHUP parses args again and compares.
	args  []string
	flags map[string]any

	GRPCAddr                  string        `name:"grpc-addr" help:"Listen address of the Envoy ext_authz gRPC service: host:port (loopback: a sidecar's Envoy is local; any other address without TLS is warned about), or unix:///path/authz.sock for a Unix socket (mode 0660, group --socket-group; Envoy's pipe address)." default:"127.0.0.1:9191"`
	HTTPAddr                  string        `name:"http-addr" help:"Listen address of the admin API, HTTP ext_authz, health and metrics: host:port, or unix:///path for a Unix socket (as --grpc-addr)." default:"127.0.0.1:8080"`
	SocketGroup               string        `name:"socket-group" help:"Group (name or gid) of the Unix sockets of --grpc-addr and --http-addr unix:///...: its members (Envoy's user) may connect; the sockets are mode 0660. Default: the daemon's group." placeholder:"GROUP"`
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
	ExpiredTokenRetention     time.Duration `name:"expired-token-retention" help:"How long an expired token is kept (listed, and refused as expired) before the store's maintenance (at start, then every 5 minutes) purges it; a purged token stays revoked (a tombstone, and import-rill's ledger never brings it back), so the store does not grow forever (0: never purged)." default:"720h"`
	MaxTokensPerOwner         int           `name:"max-tokens-per-owner" help:"Most live (unexpired, unrevoked) tokens one user or service may hold; issuing one more through the admin API is refused with 409 until some are revoked (0: no cap). Imports are not capped." default:"1000"`
	TokenIssueRate            int           `name:"token-issue-rate" help:"Tokens one principal (a user or service; superusers are not limited) may issue per minute through this replica, in a burst or spread out; past it, 429 with Retry-After (0: no limit)." default:"60"`
	OrgTokenIssueRate         int           `name:"org-token-issue-rate" help:"Services created, service tokens issued and public URLs issued by services in one org per minute through this replica, whoever asks (superusers are not limited); past it, 429 with Retry-After (0: no limit). Each service is a principal with its own --token-issue-rate, so this budget is what bounds services that create services." default:"600"`
	MaxPublicURLsPerProject   int           `name:"max-public-urls-per-project" help:"Most live public URLs one project may hold, whoever made them (0: no cap). Each member's (or service's) public URLs of a project are capped by --max-tokens-per-owner, so one cannot use up the project's." default:"10000"`
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

	// Secret scanning (daemon/leaks.go, package leaks).
	GitHubSecretScanningKeysURL string `name:"github-secret-scanning-keys-url" group:"Secret scanning" placeholder:"URL" help:"Take reports of leaked tokens from GitHub's secret scanning partner program at POST /v1/secret-scanning/github on --http-addr, verified with the public keys GitHub publishes at this URL (GitHub's: https://api.github.com/meta/public_keys/secret_scanning); each reported token of ours is revoked at once and audited as token.leaked. Empty: the endpoint answers 404."`

	// Notifications (daemon/notify.go, package notify).
	WebhookURLs         []string      `name:"webhook-url" group:"Notifications" placeholder:"URL" help:"POST a signed JSON event to this URL when a token is reported leaked and revoked, or expires within --expiry-warning (repeatable: each URL gets every event). Events wait in the store's outbox, are delivered by one replica, and are retried with backoff (dropped after 10 failures, with an audit line). Needs --webhook-secret-file."`
	WebhookSecretFile   string        `name:"webhook-secret-file" group:"Notifications" type:"path" placeholder:"FILE" help:"File holding the secret that signs webhook posts (X-Rill-Authd-Signature: sha256=HMAC-SHA256 of timestamp \".\" body); surrounding whitespace is ignored. At least 16 bytes."`
	WebhookAllowPrivate bool          `name:"webhook-allow-private" group:"Notifications" help:"Let webhooks post to loopback, private, link-local and cloud metadata addresses (refused by default, checked at each connection so DNS cannot get round it): for tests and receivers inside your network."`
	ExpiryWarning       time.Duration `name:"expiry-warning" group:"Notifications" default:"168h" help:"Tell (audit log, webhooks) of each token that expires within this long, once per token and expiry (0: never)."`

	// Sign-in (daemon/device.go, package signin).
	DeviceTokenTTL time.Duration `name:"device-token-ttl" group:"Sign-in" default:"2160h" help:"Life of the user token that rillctl login obtains (the OAuth device authorization grant) when no org policy of the user limits user tokens (the shortest such limit wins). 0: it never expires."`
}

// Run runs the daemon until ctx ends (kong calls it for `serve`).
func (c *Config) Run(ctx context.Context, stderr io.Writer, cli *CLI, kctx *kong.Context) error {
	c.ConfigFile = string(cli.Config)
	c.args, c.flags = kctx.Args, flagValues(kctx)
	return Run(ctx, *c, stderr)
}

// ConfigError is a mistake in the --config file: a usage error (exit 2) like a mistake on the
// command line, printed as it is (kong would put the flag's summary in front of it).
type ConfigError struct{ msg string }

func (e *ConfigError) Error() string { return e.msg }

func configErr(format string, args ...any) error {
	return &ConfigError{msg: "config file: " + fmt.Sprintf(format, args...)}
}

// YAML is a kong configuration loader for YAML files. A value in the file means what the same
// text means on the command line and in the environment: the resolver hands kong the text as
// written (`shutdown_timeout: 30` is "30", refused for want of a unit as --shutdown-timeout=30 is,
// not 30 nanoseconds; `default_org: 007` is "007", not 7), never a number or boolean decoded by
// YAML. The plugins section is checked here too, so that a mistake in it stops the daemon
// before it opens (or creates) a store.
func YAML(r io.Reader) (kong.Resolver, error) {
	var doc yaml.Node
	if err := yaml.NewDecoder(r).Decode(&doc); err != nil && err != io.EOF {
		return nil, &ConfigError{msg: "parse config file: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	f := fileResolver{values: map[string]*yaml.Node{}, raw: map[string]string{}}
	root := docRoot(&doc)
	if root == nil {
		return f, nil // an empty file
	}
	if root.Kind != yaml.MappingNode {
		return nil, configErr("want flag names and their values (data_dir: ..., grpc_addr: ...), not a %s", nodeKind(root))
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i].Value, deref(root.Content[i+1])
		// Accept data-dir and data_dir alike.
		norm := strings.ReplaceAll(k, "-", "_")
		if _, dup := f.values[norm]; dup {
			return nil, configErr("%s is given twice (line %d)", k, root.Content[i].Line)
		}
		f.values[norm], f.raw[norm] = v, k
		f.keys = append(f.keys, norm)
		if norm == "plugins" {
			if _, err := parsePlugins(v); err != nil {
				return nil, err
			}
		}
		if norm == "oidc_providers" {
			if _, err := parseOIDCProviders(v); err != nil {
				return nil, err
			}
		}
	}
	slices.Sort(f.keys)
	return f, nil
}

// docRoot is the top node of a parsed YAML document, nil for an empty one.
func docRoot(doc *yaml.Node) *yaml.Node {
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		return deref(doc.Content[0])
	}
	return nil
}

// deref follows a YAML alias (*name) to its anchor.
func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "list"
	case yaml.MappingNode:
		return "mapping"
	}
	return "single value"
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// fileResolver is the config file's resolver. kong applies environment variables as defaults,
// which any resolver overrides; this one steps back for a flag set in the environment, so the
// precedence is the documented one: command line, then environment, then file.
type fileResolver struct {
	keys   []string              // the file's keys, with underscores, sorted
	values map[string]*yaml.Node // by key with underscores
	raw    map[string]string     // the key as written
}

func (f fileResolver) Resolve(ctx *kong.Context, parent *kong.Path, flag *kong.Flag) (any, error) {
	for _, e := range flag.Envs {
		if _, ok := os.LookupEnv(e); ok {
			return nil, nil
		}
	}
	key := strings.ReplaceAll(flag.Name, "-", "_")
	n, ok := f.values[key]
	if !ok {
		key = camelName(flag.Name) // kong's JSON resolver took this form too
		if n, ok = f.values[key]; !ok {
			return nil, nil
		}
	}
	if key == "plugins" || key == "oidc_providers" || isNull(n) {
		return nil, nil // plugins, oidc_providers: not flags; `key:` with no value: as if absent
	}
	return f.value(key, n, flag)
}

// value is the file's value n of key for flag, as kong takes it, or the error the command line
// would give for the same text.
func (f fileResolver) value(key string, n *yaml.Node, flag *kong.Flag) (any, error) {
	v, text, err := fileValue(n, flag)
	if err != nil {
		return nil, configErr("%s: %v", f.raw[key], err)
	}
	if err := tryValue(flag, v); err != nil {
		hint := ""
		if flag.Value.Target.Type() == reflect.TypeOf(time.Duration(0)) {
			if _, perr := strconv.ParseFloat(text, 64); perr == nil {
				hint = fmt.Sprintf(" (a duration needs a unit, as on the command line: %ss, %sm or %sh)", text, text, text)
			}
		}
		return nil, configErr("%s: %s is refused, as --%s=%s is: %v%s", f.raw[key], text, flag.Name, text, err, hint)
	}
	return v, nil
}

// fileValue is what the command line would carry for the YAML value n: its text as written;
// a list is the flag given once per element (joined on the flag's separator, escaped as kong
// splits it). text is the value as one line, for messages.
func fileValue(n *yaml.Node, flag *kong.Flag) (v any, text string, err error) {
	switch n.Kind {
	case yaml.ScalarNode:
		return n.Value, n.Value, nil
	case yaml.SequenceNode:
		if !flag.Value.IsSlice() {
			return nil, "", fmt.Errorf("a list, but --%s takes one value", flag.Name)
		}
		elems := make([]string, 0, len(n.Content))
		for _, e := range n.Content {
			if e = deref(e); e.Kind != yaml.ScalarNode {
				return nil, "", fmt.Errorf("a list of %ss, but --%s takes words", nodeKind(e), flag.Name)
			}
			elems = append(elems, e.Value)
		}
		if sep := flag.Value.Tag.Sep; sep != -1 {
			joined := kong.JoinEscaped(elems, sep)
			return joined, joined, nil
		}
		list := make([]any, len(elems))
		for i, e := range elems {
			list[i] = e
		}
		return list, "[" + strings.Join(elems, ", ") + "]", nil
	}
	return nil, "", fmt.Errorf("a mapping, but --%s takes a value", flag.Name)
}

// tryValue decodes v as kong will for flag, into a scratch value, and checks it against the
// flag's choices: a file value the command line would refuse is refused here, naming the key,
// before kong applies it.
func tryValue(flag *kong.Flag, v any) error {
	scratch := reflect.New(flag.Value.Target.Type()).Elem()
	if scratch.Kind() == reflect.Slice {
		scratch.Set(reflect.MakeSlice(scratch.Type(), 0, 0))
	}
	scan := kong.Scan().PushTyped(v, kong.FlagValueToken)
	if err := flag.Value.Mapper.Decode(&kong.DecodeContext{Value: flag.Value, Scan: scan}, scratch); err != nil {
		return err
	}
	if flag.Value.Enum == "" {
		return nil
	}
	choices := flag.Value.EnumSlice()
	check := func(x reflect.Value) error {
		if s := fmt.Sprint(x.Interface()); !slices.Contains(choices, s) {
			return fmt.Errorf("want one of %s, not %q", strings.Join(choices, ", "), s)
		}
		return nil
	}
	if scratch.Kind() == reflect.Slice {
		for i := range scratch.Len() {
			if err := check(scratch.Index(i)); err != nil {
				return err
			}
		}
		return nil
	}
	return check(scratch)
}

// camelName is the camelCase form of a flag name (data-dir: dataDir).
func camelName(name string) string {
	parts := strings.Split(name, "-")
	for i := 1; i < len(parts); i++ {
		if parts[i] != "" {
			parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
		}
	}
	return strings.Join(parts, "")
}

// Validate refuses a key that names no flag (a misspelt data_dir would otherwise start a new,
// empty store in ./data), with the closest flag as a hint, as kong does on the command line,
// and a value its flag would refuse, even one the command line or environment overrides: the
// whole file is right, or it is refused.
func (f fileResolver) Validate(app *kong.Application) error {
	known := map[string]*kong.Flag{"plugins": nil, "oidc_providers": nil} // read by pluginConfigs, oidcConfigs
	var names []string                                                    // the spelling to suggest
	var walk func(n *kong.Node)
	walk = func(n *kong.Node) {
		for _, fl := range n.Flags {
			names = append(names, strings.ReplaceAll(fl.Name, "-", "_"))
			known[names[len(names)-1]] = fl
			known[camelName(fl.Name)] = fl // kong also takes the camelCase form
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(app.Node)
	slices.Sort(names)
	for _, k := range f.keys {
		if fl, ok := known[k]; ok {
			if n := f.values[k]; fl != nil && !isNull(n) {
				if _, err := f.value(k, n, fl); err != nil {
					return err
				}
			}
			continue
		}
		if best := closest(k, append(names, "plugins", "oidc_providers")); best != "" {
			return configErr("unknown key %q, did you mean %q?", f.raw[k], best)
		}
		return configErr("unknown key %q (keys are the flag names, such as data_dir)", f.raw[k])
	}
	return nil
}

// closest is the name nearest to s by edit distance, if it is a near miss ("" if none is).
func closest(s string, names []string) string {
	best, dist := "", 3
	for _, name := range names {
		if d := EditDistance(s, name); d < dist {
			best, dist = name, d
		}
	}
	return best
}

// pluginKeys are the keys of a plugins entry, as in plugins.Config.
var pluginKeys = []string{"args", "cache_ttl", "command", "name", "on_error", "timeout"}

// configList walks a config file section that is a list of mappings (plugins:, oidc_providers:)
// strictly: each entry must be a mapping of known keys (an unknown one is refused with the
// nearest, `comand:` -> "command"), and each key's value, not null, goes to set with where (the
// entry, by its name when it has one), the key as written and as a key of keys.
func configList(section, what, shape string, n *yaml.Node, keys []string, set func(where, raw, k string, v *yaml.Node) error, done func()) error {
	if n.Kind != yaml.SequenceNode {
		return configErr("%s: want a list (%s), not a %s", section, shape, nodeKind(n))
	}
	for i, e := range n.Content {
		e = deref(e)
		where := fmt.Sprintf("%s[%d]", section, i)
		if e.Kind != yaml.MappingNode {
			return configErr("%s (line %d): want %s, not a %s", where, e.Line, shape, nodeKind(e))
		}
		for j := 0; j+1 < len(e.Content); j += 2 {
			if k, v := e.Content[j].Value, deref(e.Content[j+1]); k == "name" && v.Kind == yaml.ScalarNode {
				where = fmt.Sprintf("%s[%d] (%s)", section, i, v.Value)
			}
		}
		for j := 0; j+1 < len(e.Content); j += 2 {
			raw, v := e.Content[j].Value, deref(e.Content[j+1])
			k := strings.ReplaceAll(raw, "-", "_")
			if !slices.Contains(keys, k) {
				if best := closest(k, keys); best != "" {
					return configErr("%s (line %d): unknown key %q, did you mean %q?", where, e.Content[j].Line, raw, best)
				}
				return configErr("%s (line %d): unknown key %q (%s has %s)", where, e.Content[j].Line, raw, what, strings.Join(keys, ", "))
			}
			if isNull(v) {
				continue
			}
			if err := set(where, raw, k, v); err != nil {
				return err
			}
		}
		done()
	}
	return nil
}

// configWords reads a list of words ([a, b]) of a config list's entry.
func configWords(where, raw, example string, v *yaml.Node) ([]string, error) {
	if v.Kind != yaml.SequenceNode {
		return nil, configErr("%s: %s: want a list (%s), not a %s", where, raw, example, nodeKind(v))
	}
	var out []string
	for _, a := range v.Content {
		if a = deref(a); a.Kind != yaml.ScalarNode {
			return nil, configErr("%s: %s: want words, not a %s", where, raw, nodeKind(a))
		}
		out = append(out, a.Value)
	}
	return out, nil
}

// parsePlugins reads the config file's plugins section strictly: an unknown key (`comand:`) is
// refused with the nearest key, and durations need a unit, as a flag's do.
func parsePlugins(n *yaml.Node) ([]plugins.Config, error) {
	if isNull(n) {
		return nil, nil
	}
	var out []plugins.Config
	var c plugins.Config
	err := configList("plugins", "a plugin", "- name: ..., command: ...", n, pluginKeys, func(where, raw, k string, v *yaml.Node) error {
		if k == "args" {
			args, err := configWords(where, raw, `["--file", "attrs.json"]`, v)
			c.Args = args
			return err
		}
		if v.Kind != yaml.ScalarNode {
			return configErr("%s: %s: want one value, not a %s", where, raw, nodeKind(v))
		}
		switch k {
		case "name":
			c.Name = v.Value
		case "command":
			c.Command = v.Value
		case "on_error":
			c.OnError = v.Value
		case "timeout", "cache_ttl":
			d, err := time.ParseDuration(v.Value)
			if err != nil {
				return configErr("%s: %s: %q is not a duration: give a unit, as for a flag (50ms, 30s)", where, raw, v.Value)
			}
			if k == "timeout" {
				c.Timeout = d
			} else {
				c.CacheTTL = d
			}
		}
		return nil
	}, func() { out = append(out, c); c = plugins.Config{} })
	if err != nil {
		return nil, err
	}
	if err := plugins.Check(out); err != nil {
		return nil, configErr("plugins: %v", err)
	}
	return out, nil
}

// parseOIDCProviders reads the config file's oidc_providers section as strictly as plugins: an
// unknown key (`client_secert_file:`) is refused with the nearest key, a missing issuer or
// client_id names the entry.
func parseOIDCProviders(n *yaml.Node) ([]signin.ProviderConfig, error) {
	if isNull(n) {
		return nil, nil
	}
	var out []signin.ProviderConfig
	var c signin.ProviderConfig
	err := configList("oidc_providers", "a provider", "- name: ..., issuer: ..., client_id: ...", n, signin.ConfigKeys, func(where, raw, k string, v *yaml.Node) error {
		if k == "scopes" || k == "allowed_domains" {
			list, err := configWords(where, raw, "[a, b]", v)
			if k == "scopes" {
				c.Scopes = list
			} else {
				c.AllowedDomains = list
			}
			return err
		}
		if v.Kind != yaml.ScalarNode {
			return configErr("%s: %s: want one value, not a %s", where, raw, nodeKind(v))
		}
		switch k {
		case "name":
			c.Name = v.Value
		case "issuer":
			c.Issuer = v.Value
		case "client_id":
			c.ClientID = v.Value
		case "client_secret_file":
			c.ClientSecretFile = v.Value
		case "email_claim":
			c.EmailClaim = v.Value
		case "groups_claim":
			c.GroupsClaim = v.Value
		}
		return nil
	}, func() { out = append(out, c); c = signin.ProviderConfig{} })
	if err != nil {
		return nil, err
	}
	if err := signin.Check(out); err != nil {
		return nil, configErr("%v", err)
	}
	return out, nil
}

// EditDistance is the Levenshtein distance of a and b (for "did you mean" hints).
func EditDistance(a, b string) int {
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
		case ti.Issuer == c.Issuer || (c.Issuer == "" && ti.Issuer == c.PublicURL):
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
	if _, ok := admin.(*net.TCPAddr); !ok {
		return "" // a Unix socket has no URL: --public-url says where its proxy is
	}
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
