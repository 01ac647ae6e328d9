package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rill-authd/rill-authd/store"
)

// issuerSwaps bounds the rereads when other replicas record an issuer at the same moment.
const issuerSwaps = 3

// resolveIssuer decides the iss of this replica's runtime JWTs with the store, so that every
// replica mints and accepts the same one:
//   - with --issuer or --public-url: that, recorded in the store if none is (or only a default
//     is, or --replace-issuer is given); a different recorded issuer refuses the start;
//   - without: the recorded issuer, else this daemon's default (its admin listener's URL),
//     recorded as a default that a later daemon given a URL replaces.
func (d *Daemon) resolveIssuer(ctx context.Context, cfg Config) (string, error) {
	want, flag := cfg.explicitIssuer()
	def := cfg.defaultIssuer(d.httpLis.Addr())
	for range issuerSwaps {
		rec, err := d.st.GetIssuer(ctx)
		if err != nil {
			return "", fmt.Errorf("read the store's issuer: %w", err)
		}
		var next store.Issuer
		switch {
		case want == "" && rec.URL != "":
			if rec.Default && def != "" && rec.URL != def {
				d.log.Warn("the store's issuer is the default URL of the daemon that recorded it, not this daemon's admin listener: "+
					"the Rill runtime fetches the JWKS from it; give every replica one --public-url", "issuer", rec.URL, "http_addr", def)
			}
			return rec.URL, nil
		case want == "" && def == "":
			return "", fmt.Errorf("--http-addr %s is a Unix socket, which is no URL the Rill runtime can fetch the JWKS from: "+
				"set --public-url to the URL at which it reaches this daemon (the proxy in front of the socket)", cfg.HTTPAddr)
		case want == "":
			next = store.Issuer{URL: def, Default: true, RecordedAt: time.Now().UTC()}
		case rec.URL == want && !rec.Default:
			return want, nil
		case rec.URL == "" || rec.Default || rec.URL == want || cfg.ReplaceIssuer:
			next = store.Issuer{URL: want, RecordedAt: time.Now().UTC()}
		default:
			return "", fmt.Errorf("this daemon was started with %s %s, but the store's issuer is %s (recorded %s): every replica must mint runtime JWTs "+
				"with one iss, or the others and the Rill runtime refuse them. Start it without --issuer and --public-url to use the store's "+
				"(or with --issuer %s); to move every replica to %s, start this one with --replace-issuer, then restart the others "+
				"and set the Rill runtime's RILL_RUNTIME_AUTH_ISSUER_URL to it", flag, want, rec.URL, rec.RecordedAt.Format(time.RFC3339), rec.URL, want)
		}
		got, err := d.st.SwapIssuer(ctx, rec, next)
		if err != nil {
			return "", fmt.Errorf("record the issuer: %w", err)
		}
		if !got.Same(next) {
			continue // another replica recorded one first: decide again against it
		}
		switch {
		case rec.URL == "":
			d.log.Info("recorded the issuer in the store (it had none): replicas started without --issuer or --public-url use it, "+
				"one started with another refuses to start", "issuer", next.URL, "default", next.Default)
		case rec.URL != next.URL:
			d.log.Warn("replaced the store's issuer: restart every other replica so that they mint with it, and set the Rill runtime's "+
				"RILL_RUNTIME_AUTH_ISSUER_URL to it", "issuer", next.URL, "was", rec.URL, "was_default", rec.Default)
		}
		return next.URL, nil
	}
	return "", errors.New("record the issuer: other replicas kept changing it; start again")
}

// runtimeJWKSRefetch is the least time between the Rill runtime's JWKS refetches on an unknown
// kid (keyfunc's RefreshRateLimit in rilldata/rill runtime/server/auth/jwt.go).
const runtimeJWKSRefetch = 5 * time.Minute

// checkActivationDelay refuses a negative --signing-key-activation-delay and warns of one too
// short for the Rill runtime.
func (d *Daemon) checkActivationDelay() error {
	delay := d.cfg.SigningKeyActivationDelay
	if delay < 0 {
		return fmt.Errorf("--signing-key-activation-delay %s: want 0 or more", delay)
	}
	if delay < runtimeJWKSRefetch {
		d.log.Warn("--signing-key-activation-delay is under the Rill runtime's 5-minute JWKS refetch: after a rotation, runtimes that cached the JWKS "+
			"may refuse new runtime JWTs for up to the difference", "delay", delay.String())
	}
	return nil
}
