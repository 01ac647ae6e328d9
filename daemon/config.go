package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
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
	Version kong.VersionFlag `help:"Print the version and exit."`

	Serve     Config       `cmd:"" default:"withargs" help:"Run the daemon (the default command)."`
	Restore   RestoreCmd   `cmd:"" help:"Load a backup (rillctl admin backup) into an empty Badger store; run it with the daemon stopped."`
	CopyStore CopyStoreCmd `cmd:"" name:"copy-store" help:"Copy every record of one store into another, each a data directory or a postgres:// URL (to move from Badger to PostgreSQL, or back)."`
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

	GRPCAddr           string        `name:"grpc-addr" help:"Listen address of the Envoy ext_authz gRPC service." default:":9191"`
	HTTPAddr           string        `name:"http-addr" help:"Listen address of the admin API, HTTP ext_authz, health and metrics." default:"127.0.0.1:8080"`
	BootstrapTokenFile string        `help:"On first start, also write the superuser's bootstrap token to this file (mode 0600)." type:"path" placeholder:"FILE"`
	BootstrapEmail     string        `help:"Email of the superuser created on first start." default:"admin@localhost"`
	DefaultOrg         string        `help:"Org checked when neither the route nor the path names one." placeholder:"ORG"`
	DefaultProject     string        `help:"Project checked when neither the route nor the path names one." placeholder:"PROJECT"`
	CacheSize          int           `help:"Resolved tokens kept in memory." default:"100000"`
	Issuer             string        `help:"iss of the ephemeral JWTs this daemon mints (and accepts)." default:"rill-authd"`
	JWTAudience        string        `name:"jwt-audience" help:"aud of the ephemeral JWTs this daemon mints (and accepts)." default:"rill"`
	MaxCredentialTTL   time.Duration `help:"Longest ttl_seconds an ephemeral credential may ask for." default:"24h"`
	TrustedIssuer      []string      `help:"Accept RS256 JWTs of an external issuer (repeatable): issuer=URL,jwks=URL,audience=AUD,org=ORG[,project=P]. They get viewer-level reads on that org's project." sep:"none" placeholder:"SPEC"`
	JWKSRefresh        time.Duration `name:"jwks-refresh" help:"Least time between refetches of a trusted issuer's JWKS on an unknown kid." default:"1m"`
	TokenExchange      bool          `help:"Replace the upstream's authorization with a short-lived RS256 JWT in the Rill runtime's claim layout (iss = --issuer, JWKS at /.well-known/jwks.json)."`
	RuntimeAudience    string        `help:"aud of exchanged runtime tokens." default:"rill-runtime"`
	RuntimeInstanceID  string        `name:"runtime-instance-id" help:"Runtime instance id of exchanged tokens when the route sets no instance_id context extension." default:"default"`
	ExchangeTTL        time.Duration `help:"Life of an exchanged runtime token (reused until a fifth of it is left)." default:"5m"`
	AuditRetention     time.Duration `help:"How long audit events are kept (0 keeps them forever)." default:"2160h"`
	MaxStaleness       time.Duration `help:"With --store postgres://: how long a replica that cannot confirm it has every change keeps answering checks from memory before it denies them with 503 (0: at once)." default:"30s"`
	ShutdownTimeout    time.Duration `help:"How long in-flight requests may take to finish on SIGTERM." default:"10s"`
	LogLevel           string        `help:"Log level: debug, info, warn or error." default:"info" enum:"debug,info,warn,error"`
	LogFormat          string        `help:"Log format: text or json." default:"text" enum:"text,json"`
	LogAllowedEvery    int           `help:"Log one allowed check in this many at info level (0: allowed checks only at debug level). Denied checks are always logged." default:"0"`
}

// Run runs the daemon until ctx ends (kong calls it for `serve`).
func (c *Config) Run(ctx context.Context, stderr io.Writer, cli *CLI) error {
	c.ConfigFile = string(cli.Config)
	return Run(ctx, *c, stderr)
}

// YAML is a kong configuration loader for YAML files: it hands the file to kong's JSON
// resolver, which matches keys to flag names.
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
	return kong.JSON(bytes.NewReader(b))
}

// KongOptions are the options the daemon's main parses Config with.
func KongOptions(version string) []kong.Option {
	return []kong.Option{
		kong.Name("rill-authd"),
		kong.Description("Auth sidecar for Rill: answers Envoy ext_authz checks for rill_usr_/rill_svc_ tokens and JWTs, and serves the admin API that rillctl talks to."),
		kong.DefaultEnvars("RILL_AUTHD"),
		kong.Configuration(YAML),
		kong.Vars{"version": version},
		kong.UsageOnError(),
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
