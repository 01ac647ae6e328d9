package daemon

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/alecthomas/kong"

	"github.com/rill-authd/rill-authd/adminapi"
	"github.com/rill-authd/rill-authd/plugins"
)

// liveFlags are the settings a reload (SIGHUP) applies to a running daemon, with the plugin
// set (the file's plugins:). Any other flag whose value changed (a listener, the store, TLS
// files, cache size...) needs a restart: the reload names it in a warning and leaves it as it
// was.
var liveFlags = map[string]bool{
	"log-level": true, "log-format": true, "log-allowed-every": true,
	"max-tokens-per-owner": true, "token-issue-rate": true, "max-staleness": true,
	"trusted-issuer": true, "frontend-url": true, "runtime-host": true,
}

// LoadConfig parses a command line of `rill-authd serve` as main does: flags, then the
// environment, then the --config file, with every check of the parse (unknown keys, enums).
// A reload parses the daemon's own command line again with it, so the file is read the one way.
func LoadConfig(args []string) (Config, error) {
	var cli CLI
	p, err := kong.New(&cli, append(KongOptions(""), kong.Exit(func(int) {}), kong.Writers(io.Discard, io.Discard))...)
	if err != nil {
		return Config{}, err
	}
	kctx, err := p.Parse(args)
	if err != nil {
		return Config{}, err
	}
	if kctx.Selected() == nil || kctx.Selected().Name != "serve" {
		return Config{}, fmt.Errorf("%q is not a command line of rill-authd serve", strings.Join(args, " "))
	}
	c := cli.Serve
	c.ConfigFile = string(cli.Config)
	c.args, c.flags = slices.Clone(args), flagValues(kctx)
	return c, nil
}

// flagValues is the value of every flag of serve, by name.
func flagValues(kctx *kong.Context) map[string]any {
	m := map[string]any{}
	for _, f := range kctx.Flags() {
		switch f.Name {
		case "help", "version", "config":
			continue
		}
		m[f.Name] = f.Target.Interface()
	}
	return m
}

// reload re-reads the configuration (SIGHUP) and applies it, all of it or nothing: a file
// that does not parse or validate leaves everything as it was, with the reason logged.
func (d *Daemon) reload() {
	err := d.reloadConfig()
	d.metrics.ConfigReload(err)
	if err != nil {
		d.log.Error("config reload failed; the previous configuration stays in force", "config", d.cfg.ConfigFile, "err", err)
	}
}

func (d *Daemon) reloadConfig() error {
	if d.cfg.args == nil && d.cfg.flags == nil {
		return errors.New("this daemon was started without a command line to parse again")
	}
	next, err := LoadConfig(d.cfg.args)
	if err != nil {
		return err
	}
	// Validate everything before anything is applied.
	if err := next.checkURLs(); err != nil {
		return err
	}
	probe := next
	probe.Issuer = d.cfg.Issuer // the issuer in force, which a trusted issuer must not be
	trusted, err := probe.TrustedIssuers()
	if err != nil {
		return err
	}
	pcfgs, err := pluginConfigs(next.ConfigFile)
	if err != nil {
		return err
	}
	ocfgs, err := oidcConfigs(next.ConfigFile)
	if err != nil {
		return err
	}
	for _, f := range []struct {
		flag string
		v    int64
	}{{"--max-tokens-per-owner", int64(next.MaxTokensPerOwner)}, {"--token-issue-rate", int64(next.TokenIssueRate)},
		{"--log-allowed-every", int64(next.LogAllowedEvery)}, {"--max-staleness", int64(next.MaxStaleness)}} {
		if f.v < 0 {
			return fmt.Errorf("%s: want 0 or more", f.flag)
		}
	}

	var live, restart []string
	for _, name := range slices.Sorted(maps.Keys(next.flags)) {
		v, old := next.flags[name], d.applied[name]
		if reflect.DeepEqual(v, old) {
			continue
		}
		if liveFlags[name] {
			live = append(live, fmt.Sprintf("%s: %s -> %s", name, showFlag(old), showFlag(v)))
		} else {
			restart = append(restart, "--"+name)
		}
	}
	if !reflect.DeepEqual(ocfgs, d.oidcCfgs) { // the providers are discovered once, at start
		restart = append(restart, "oidc_providers")
	}
	// Apply. The plugins first: starting a new one is the one step that can fail, and then
	// nothing else is applied.
	if !reflect.DeepEqual(pcfgs, d.pluginCfgs) {
		if err := d.plugins.Replace(pcfgs); err != nil {
			return fmt.Errorf("plugins: %w", err)
		}
		d.check.PluginsChanged()
		var names []string
		for _, p := range pcfgs {
			names = append(names, p.Name)
		}
		d.metrics.PluginsConfigured(names...)
		live = append(live, fmt.Sprintf("plugins: %s -> %s", pluginNames(d.pluginCfgs), pluginNames(pcfgs)))
		d.pluginCfgs = pcfgs
	}
	// The rest: each a store of an atomic (or a few), read by the requests that start after.
	d.logs.set(next.LogLevel, next.LogFormat)
	d.check.SetLogAllowedEvery(next.LogAllowedEvery)
	d.api.SetLive(adminapi.Live{RuntimeHost: next.RuntimeHost, FrontendURL: next.FrontendURL,
		MaxTokensPerOwner: next.MaxTokensPerOwner, TokenIssuesPerMinute: next.TokenIssueRate})
	d.res.SetTrusted(trusted)
	d.res.SetMaxStaleness(next.MaxStaleness)
	if d.stale != nil {
		d.stale.set(next.MaxStaleness)
	}
	for name := range liveFlags {
		d.applied[name] = next.flags[name]
	}

	if len(live) == 0 {
		d.log.Info("config reloaded: no setting that applies live changed", "config", next.ConfigFile)
	} else {
		d.log.Info("config reloaded", "config", next.ConfigFile, "changed", strings.Join(live, "; "))
	}
	if len(restart) > 0 {
		d.log.Warn("config reload: these settings changed but need a restart; still running with their previous values",
			"restart_needed", strings.Join(restart, " "))
	}
	return nil
}

// showFlag is a flag's value in the reload's log line.
func showFlag(v any) string {
	switch v := v.(type) {
	case nil:
		return "(unset)"
	case string:
		return fmt.Sprintf("%q", v)
	case time.Duration:
		return v.String()
	case []string:
		return fmt.Sprintf("%q", v)
	}
	return fmt.Sprint(v)
}

// pluginNames lists plugins by name for the reload's log line.
func pluginNames(cfgs []plugins.Config) string {
	if len(cfgs) == 0 {
		return "(none)"
	}
	var names []string
	for _, c := range cfgs {
		names = append(names, c.Name)
	}
	return "[" + strings.Join(names, " ") + "]"
}
