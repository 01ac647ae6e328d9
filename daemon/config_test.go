package daemon_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"

	"github.com/rill-authd/rill-authd/daemon"
)

// parseServe parses a rill-authd command line as the binary does, with env set, and returns
// serve's configuration.
func parseServe(t *testing.T, args []string, env map[string]string) (daemon.Config, error) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	var cli daemon.CLI
	parser, err := kong.New(&cli, daemon.KongOptions("test")...)
	if err != nil {
		t.Fatal(err)
	}
	_, err = parser.Parse(args)
	return cli.Serve, err
}

// TestConfigOneReading: every value means the same on the command line, in the environment and
// in the --config file, for every type of flag. A file value is the text as written, not a
// number YAML decoded (`shutdown_timeout: 30` was 30 nanoseconds, `default_org: 007` was "7",
// `cache_size: 1.5` was 2), and a file value the command line refuses is refused too, naming
// the key on one line.
func TestConfigOneReading(t *testing.T) {
	type getter func(daemon.Config) any
	for _, c := range []struct {
		name string
		flag string   // the flag's name
		cli  []string // its values on the command line (once each)
		env  string   // its value in the environment ("-": not tried)
		yaml string   // its value in the file, as written
		ok   bool
		get  getter // with ok: what it sets
		want any
	}{
		// time.Duration
		{"duration with unit", "max-staleness", []string{"30s"}, "30s", "30s", true, func(c daemon.Config) any { return c.MaxStaleness }, 30 * time.Second},
		{"duration compound", "shutdown-timeout", []string{"1m30s"}, "1m30s", "1m30s", true, func(c daemon.Config) any { return c.ShutdownTimeout }, 90 * time.Second},
		{"duration zero", "max-staleness", []string{"0"}, "0", "0", true, func(c daemon.Config) any { return c.MaxStaleness }, time.Duration(0)},
		{"duration without unit", "shutdown-timeout", []string{"30"}, "30", "30", false, nil, nil},
		{"duration without unit, float", "max-staleness", []string{"1.5"}, "1.5", "1.5", false, nil, nil},
		{"duration quoted", "max-staleness", []string{"5m"}, "5m", `"5m"`, true, func(c daemon.Config) any { return c.MaxStaleness }, 5 * time.Minute},
		// int
		{"int", "cache-size", []string{"1000"}, "1000", "1000", true, func(c daemon.Config) any { return c.CacheSize }, 1000},
		{"int hex", "cache-size", []string{"0x10"}, "0x10", "0x10", true, func(c daemon.Config) any { return c.CacheSize }, 16},
		{"int fraction", "cache-size", []string{"1.5"}, "1.5", "1.5", false, nil, nil},
		{"int exponent", "cache-size", []string{"1e3"}, "1e3", "1e3", false, nil, nil},
		{"int word", "max-tokens-per-owner", []string{"many"}, "many", "many", false, nil, nil},
		// uint32
		{"uint32", "grpc-max-concurrent-streams", []string{"64"}, "64", "64", true, func(c daemon.Config) any { return c.GRPCMaxConcurrentStreams }, uint32(64)},
		{"uint32 negative", "grpc-max-concurrent-streams", []string{"-1"}, "-1", "-1", false, nil, nil},
		// bool
		{"bool true", "token-exchange", []string{"true"}, "true", "true", true, func(c daemon.Config) any { return c.TokenExchange }, true},
		{"bool 1", "token-exchange", []string{"1"}, "1", "1", true, func(c daemon.Config) any { return c.TokenExchange }, true},
		{"bool no", "replace-issuer", []string{"no"}, "no", "no", true, func(c daemon.Config) any { return c.ReplaceIssuer }, false},
		{"bool word", "token-exchange", []string{"maybe"}, "maybe", "maybe", false, nil, nil},
		// enum
		{"enum", "log-level", []string{"debug"}, "debug", "debug", true, func(c daemon.Config) any { return c.LogLevel }, "debug"},
		{"enum not a choice", "log-format", []string{"xml"}, "xml", "xml", false, nil, nil},
		{"enum number", "log-level", []string{"5"}, "5", "5", false, nil, nil},
		// enum string slice (sep ","): a YAML list is the flag's comma list
		{"enum slice", "tls-listeners", []string{"http"}, "http", "http", true, func(c daemon.Config) any { return c.TLSListeners }, []string{"http"}},
		{"enum slice list", "tls-listeners", []string{"grpc,http"}, "grpc,http", "[grpc, http]", true, func(c daemon.Config) any { return c.TLSListeners }, []string{"grpc", "http"}},
		{"enum slice comma text", "tls-listeners", []string{"grpc,http"}, "grpc,http", "grpc,http", true, func(c daemon.Config) any { return c.TLSListeners }, []string{"grpc", "http"}},
		{"enum slice bad element", "tls-listeners", []string{"grpc,ftp"}, "grpc,ftp", "[grpc, ftp]", false, nil, nil},
		// string slice without separator (repeatable): a YAML list is the flag given per element
		{"repeatable", "trusted-issuer", []string{"issuer=a,jwks=http://j,audience=x,org=o", "issuer=b,jwks=http://k,audience=y,org=p"}, "-",
			`["issuer=a,jwks=http://j,audience=x,org=o", "issuer=b,jwks=http://k,audience=y,org=p"]`, true,
			func(c daemon.Config) any { return c.TrustedIssuer }, []string{"issuer=a,jwks=http://j,audience=x,org=o", "issuer=b,jwks=http://k,audience=y,org=p"}},
		{"repeatable once", "trusted-issuer", []string{"issuer=a,jwks=http://j,audience=x,org=o"}, "issuer=a,jwks=http://j,audience=x,org=o",
			`"issuer=a,jwks=http://j,audience=x,org=o"`, true, func(c daemon.Config) any { return c.TrustedIssuer }, []string{"issuer=a,jwks=http://j,audience=x,org=o"}},
		// string: the text as written, whatever YAML would make of it
		{"string like an octal", "default-org", []string{"007"}, "007", "007", true, func(c daemon.Config) any { return c.DefaultOrg }, "007"},
		{"string like a float", "runtime-instance-id", []string{"1.0"}, "1.0", "1.0", true, func(c daemon.Config) any { return c.RuntimeInstanceID }, "1.0"},
		{"string like a bool", "default-project", []string{"yes"}, "yes", "yes", true, func(c daemon.Config) any { return c.DefaultProject }, "yes"},
		{"string like hex", "bootstrap-email", []string{"0x1F"}, "0x1F", "0x1F", true, func(c daemon.Config) any { return c.BootstrapEmail }, "0x1F"},
		// path: relative to the working directory, wherever it was given
		{"path", "data-dir", []string{"rel/data"}, "rel/data", "rel/data", true, func(c daemon.Config) any { return c.DataDir }, mustAbs(t, "rel/data")},
		{"path quoted", "tls-cert-file", []string{"certs/a b.pem"}, "certs/a b.pem", `"certs/a b.pem"`, true, func(c daemon.Config) any { return c.TLSCertFile }, mustAbs(t, "certs/a b.pem")},
	} {
		t.Run(c.name, func(t *testing.T) {
			type outcome struct {
				cfg daemon.Config
				err error
			}
			got := map[string]outcome{}

			var args []string
			for _, v := range c.cli {
				args = append(args, "--"+c.flag+"="+v)
			}
			cfg, err := parseServe(t, args, nil)
			got["command line"] = outcome{cfg, err}

			if c.env != "-" {
				env := "RILL_AUTHD_" + strings.ToUpper(strings.ReplaceAll(c.flag, "-", "_"))
				t.Run("env", func(t *testing.T) {
					cfg, err := parseServe(t, nil, map[string]string{env: c.env})
					got["environment"] = outcome{cfg, err}
				})
			}

			key := strings.ReplaceAll(c.flag, "-", "_")
			file := filepath.Join(t.TempDir(), "c.yaml")
			if err := os.WriteFile(file, []byte(key+": "+c.yaml+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err = parseServe(t, []string{"--config", file}, nil)
			cfg.ConfigFile = ""
			got["config file"] = outcome{cfg, err}
			if err != nil {
				var ce *daemon.ConfigError
				if msg := err.Error(); !errors.As(err, &ce) || !strings.HasPrefix(ce.Error(), "config file: "+key+": ") || strings.Contains(msg, "\n") {
					t.Errorf("config file %s: %s: error %q, want one line starting with %q", key, c.yaml, msg, "config file: "+key+": ")
				}
			}

			base := got["command line"]
			for src, o := range got {
				if (o.err == nil) != c.ok {
					t.Errorf("%s: --%s %v: error %v, want ok=%v", src, c.flag, c.cli, o.err, c.ok)
					continue
				}
				if c.ok && !reflect.DeepEqual(o.cfg, base.cfg) {
					t.Errorf("%s: --%s %v reads differently than on the command line:\n%+v\nwant\n%+v", src, c.flag, c.cli, o.cfg, base.cfg)
				}
				if c.ok && !reflect.DeepEqual(c.get(o.cfg), c.want) {
					t.Errorf("%s: --%s %v: got %#v, want %#v", src, c.flag, c.cli, c.get(o.cfg), c.want)
				}
			}
		})
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestConfigFileMistakes: what else a config file can get wrong is one line naming the key,
// and the plugins section is read as strictly as the flags (an unknown key with the nearest
// one, durations with a unit), at parse time, before anything starts.
func TestConfigFileMistakes(t *testing.T) {
	for _, c := range []struct{ name, yaml, want string }{
		{"unknown key", "datadir: x\n", `config file: unknown key "datadir", did you mean "data_dir"?`},
		{"a list for a flag of one value", "default_org: [a, b]\n", "config file: default_org: a list, but --default-org takes one value"},
		{"a mapping for a flag", "data_dir: {a: b}\n", "config file: data_dir: a mapping, but --data-dir takes a value"},
		{"given twice", "data-dir: a\ndata_dir: b\n", "config file: data_dir is given twice (line 2)"},
		{"not a mapping", "- a\n- b\n", "config file: want flag names and their values"},
		{"plugin key typo", "plugins:\n  - name: hr\n    comand: bin/plugins/jsonfile\n", `config file: plugins[0] (hr) (line 3): unknown key "comand", did you mean "command"?`},
		{"plugin unknown key", "plugins:\n  - name: hr\n    command: x\n    colour: blue\n", `config file: plugins[0] (hr) (line 4): unknown key "colour" (a plugin has args, cache_ttl, command, name, on_error, timeout)`},
		{"plugin timeout without unit", "plugins:\n  - name: hr\n    command: x\n    timeout: 50\n", `config file: plugins[0] (hr): timeout: "50" is not a duration: give a unit`},
		{"plugin without command", "plugins:\n  - name: hr\n", "config file: plugins: plugin hr: command is required"},
		{"plugin twice", "plugins:\n  - {name: hr, command: x}\n  - {name: hr, command: y}\n", "config file: plugins: plugin hr is configured twice"},
		{"plugin on_error", "plugins:\n  - {name: hr, command: x, on_error: explode}\n", `on_error "explode": want skip or deny`},
		{"plugins not a list", "plugins:\n  name: hr\n", "config file: plugins: want a list"},
		{"plugin args not a list", "plugins:\n  - {name: hr, command: x, args: --file}\n", "config file: plugins[0] (hr): args: want a list"},
		{"oidc_providers misspelt", "oidc_provider:\n  - name: g\n", `config file: unknown key "oidc_provider", did you mean "oidc_providers"?`},
		{"oidc key typo", "oidc_providers:\n  - name: google\n    issuer: https://accounts.google.com\n    client_id: x\n    client_secert_file: /s\n",
			`config file: oidc_providers[0] (google) (line 5): unknown key "client_secert_file", did you mean "client_secret_file"?`},
		{"oidc unknown key", "oidc_providers:\n  - {name: g, issuer: https://a.example, client_id: x, colour: blue}\n",
			`config file: oidc_providers[0] (g) (line 2): unknown key "colour" (a provider has allowed_domains, client_id, client_secret_file, email_claim, groups_claim, issuer, name, scopes)`},
		{"oidc without issuer", "oidc_providers:\n  - {name: g, client_id: x}\n", "config file: oidc_providers[0] (g): issuer is required"},
		{"oidc without client id", "oidc_providers:\n  - {name: g, issuer: https://a.example}\n", "config file: oidc_providers[0] (g): client_id is required"},
		{"oidc without name", "oidc_providers:\n  - {issuer: https://a.example, client_id: x}\n", "config file: oidc_providers[0]: name is required"},
		{"oidc name not for a URL", "oidc_providers:\n  - {name: My IdP, issuer: https://a.example, client_id: x}\n", "name must be 1-40 of a-z, 0-9 and -"},
		{"oidc twice", "oidc_providers:\n  - {name: g, issuer: https://a.example, client_id: x}\n  - {name: g, issuer: https://b.example, client_id: y}\n", "oidc_providers[1] (g): name is given twice"},
		{"oidc issuer not a URL", "oidc_providers:\n  - {name: g, issuer: accounts.google.com, client_id: x}\n", `issuer "accounts.google.com" is not an http(s) URL`},
		{"oidc scopes not a list", "oidc_providers:\n  - {name: g, issuer: https://a.example, client_id: x, scopes: openid email}\n", "config file: oidc_providers[0] (g): scopes: want a list"},
		{"oidc domain with @", "oidc_providers:\n  - {name: g, issuer: https://a.example, client_id: x, allowed_domains: [\"@acme.io\"]}\n", `allowed_domains: "@acme.io" is not a domain`},
		{"oidc_providers not a list", "oidc_providers:\n  name: g\n", "config file: oidc_providers: want a list"},
	} {
		t.Run(c.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "c.yaml")
			if err := os.WriteFile(file, []byte(c.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := parseServe(t, []string{"--config", file}, nil)
			var ce *daemon.ConfigError
			if !errors.As(err, &ce) || !strings.Contains(ce.Error(), c.want) || strings.Contains(ce.Error(), "\n") {
				t.Errorf("error %v, want a one-line ConfigError containing %q", err, c.want)
			}
		})
	}
	// A wrong value is refused even where the command line or the environment overrides it:
	// the file is right as a whole or not at all.
	bad := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(bad, []byte("shutdown_timeout: 30\nlog_level: loud\n"), 0o600)
	if _, err := parseServe(t, []string{"--config", bad, "--shutdown-timeout", "5s"}, map[string]string{"RILL_AUTHD_LOG_LEVEL": "debug"}); err == nil ||
		!strings.Contains(err.Error(), "config file: ") {
		t.Errorf("an overridden wrong value in the file: %v, want it refused", err)
	}
	// A right plugins section is accepted, hyphens and all.
	file := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(file, []byte("plugins:\n  - name: hr\n    command: x\n    args: [\"--file\", \"a.json\"]\n    timeout: 50ms\n    cache-ttl: 30s\n    on_error: deny\n"), 0o600)
	if _, err := parseServe(t, []string{"--config", file}, nil); err != nil {
		t.Errorf("a right plugins section: %v", err)
	}
}
