package daemon

import (
	"fmt"
	"net"
	"net/http"
	"net/url"

	"github.com/rill-authd/rill-authd/leaks"
)

// checkSecretScanning refuses a --github-secret-scanning-keys-url that is not an http(s) URL
// before anything starts: the keys are fetched only when the first report comes, so a mistake
// would otherwise show up as refused reports, far from its cause.
func (c *Config) checkSecretScanning() error {
	if c.GitHubSecretScanningKeysURL == "" {
		return nil
	}
	u, err := url.Parse(c.GitHubSecretScanningKeysURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("--github-secret-scanning-keys-url %q is not a URL: give GitHub's, https://api.github.com/meta/public_keys/secret_scanning "+
			"(or an http(s) URL that serves the same {\"public_keys\":[...]} document)", c.GitHubSecretScanningKeysURL)
	}
	return nil
}

// registerSecretScanning mounts GitHub's secret scanning reports (package leaks) on the admin
// listener: authenticated by GitHub's signature, not by a bearer token. Off (404) without
// --github-secret-scanning-keys-url. A revocation is a plain store revoke, so the change feed
// takes it to every replica.
func (d *Daemon) registerSecretScanning(mux *http.ServeMux) {
	keysURL := d.cfg.GitHubSecretScanningKeysURL
	if keysURL != "" {
		if u, err := url.Parse(keysURL); err == nil && u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
			d.log.Warn("--github-secret-scanning-keys-url is plain http: whoever sits on the path can substitute keys and sign reports (they can only revoke tokens they already hold)",
				"url", keysURL)
		}
		d.log.Info("secret scanning: reports of leaked tokens are taken", "path", leaks.Path, "keys_url", keysURL)
	}
	leaks.New(d.st, leaks.Options{KeysURL: keysURL, Logger: d.log, Metrics: d.metrics, Notifications: d.leakNotifications}).Register(mux)
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
