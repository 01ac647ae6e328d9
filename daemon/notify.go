package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/rill-authd/rill-authd/leaks"
	"github.com/rill-authd/rill-authd/notify"
	"github.com/rill-authd/rill-authd/resolver"
	"github.com/rill-authd/rill-authd/store"
)

// notifyScanInterval is how often each replica looks for tokens about to expire (a variable
// for tests).
var notifyScanInterval = 10 * time.Minute

// notifyOptions are the notifier's defaults, changed by tests.
var notifyOptions = notify.Options{}

// webhooks checks the notification flags before anything starts and builds the webhooks.
func (c *Config) webhooks() ([]*notify.Webhook, error) {
	if len(c.WebhookURLs) == 0 {
		if c.WebhookSecretFile != "" {
			return nil, fmt.Errorf("--webhook-secret-file without --webhook-url: give the URL to post to")
		}
		return nil, nil
	}
	if c.WebhookSecretFile == "" {
		return nil, fmt.Errorf("--webhook-url needs --webhook-secret-file: receivers verify posts with its secret")
	}
	b, err := os.ReadFile(c.WebhookSecretFile)
	if err != nil {
		return nil, fmt.Errorf("--webhook-secret-file: %w", err)
	}
	secret := bytes.TrimSpace(b)
	if len(secret) < 16 {
		return nil, fmt.Errorf("--webhook-secret-file %s: the secret is %d bytes; give at least 16 (e.g. openssl rand -hex 32)", c.WebhookSecretFile, len(secret))
	}
	var out []*notify.Webhook
	seen := map[string]bool{}
	for _, u := range c.WebhookURLs {
		if seen[u] {
			continue
		}
		seen[u] = true
		w, err := notify.NewWebhook(u, notify.WebhookOptions{Secret: secret, AllowPrivate: c.WebhookAllowPrivate})
		if err != nil {
			return nil, fmt.Errorf("--webhook-url: %w", err)
		}
		out = append(out, w)
	}
	return out, nil
}

// startNotify starts the notifier's loops: delivery of the outbox, and expiry warnings. Every
// replica runs both; the outbox's leases and ids keep each event to one delivery at a time.
func (d *Daemon) startNotify(hooks []*notify.Webhook) {
	o := notifyOptions
	o.Webhooks, o.Logger = hooks, d.log
	d.notifier = notify.New(d.st, o)
	ctx, cancel := context.WithCancel(context.Background())
	d.notifyStop = cancel
	d.notifyDone.Go(func() { d.notifier.Run(ctx) })
	if w := d.cfg.ExpiryWarning; w > 0 {
		d.notifyDone.Go(func() { d.notifier.RunExpiryWarnings(ctx, w, notifyScanInterval) })
		d.metrics.GaugeFunc("rill_authd_tokens_expiring", "Live tokens that expire within --expiry-warning, as the last scan found them.",
			map[string]string{"within": windowLabel(w)}, func() float64 { return float64(d.notifier.Expiring()) })
	}
	for _, h := range hooks {
		d.log.Info("notifications: webhook", "url", redactQuery(h.URL()))
	}
}

// stopNotify ends the notifier's loops before the store closes; an interrupted delivery is
// left to the lease.
func (d *Daemon) stopNotify() {
	if d.notifyStop != nil {
		d.notifyStop()
		d.notifyDone.Wait()
		d.notifyStop = nil
	}
}

// leakNotifications is leaks.Options.Notifications: a revoked leaked token is a token.leaked
// event, written in the revoke's transaction. The id is the token's: a token is revoked once,
// so it is told of once.
func (d *Daemon) leakNotifications(l leaks.Leak) ([]store.Notification, error) {
	return d.notifier.Rows(notify.Event{ID: notify.TokenLeaked + ":" + l.TokenID.String(), Type: notify.TokenLeaked, Time: l.At,
		TokenID: l.TokenID.String(), TokenKind: string(l.Kind), OwnerID: l.OwnerID, Target: l.Target, URL: l.URL,
		Detail: strings.TrimSpace(l.Source + " " + l.Type)})
}

// windowLabel is the gauge's within label: whole days as "7d", else Go's duration.
func windowLabel(w time.Duration) string {
	if w%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", w/(24*time.Hour))
	}
	return w.String()
}

// redactQuery drops a URL's query, which may hold a secret, for the log.
func redactQuery(u string) string {
	u, _, _ = strings.Cut(u, "?")
	return u
}

// notifyRefused publishes a token.refused_network event for each token refused for its network
// since the resolver's last flush (its background writer calls it, never a check). The event's
// id names the token and the hour, so a token used from a refused network all day is told of
// once an hour (notify.RefusedNetworkEvent).
func (d *Daemon) notifyRefused(ctx context.Context, refused []resolver.Refusal) {
	for _, f := range refused {
		if !f.Network {
			continue
		}
		t, err := d.st.GetToken(ctx, f.ID)
		if err != nil {
			continue // revoked or gone since: nothing to tell
		}
		addr := "an unknown address"
		if f.Addr.IsValid() {
			addr = f.Addr.String()
		}
		e := notify.RefusedNetworkEvent(t.ID.String(), string(t.Kind), t.OwnerID, t.Prefix, addr, time.Now())
		if _, err := d.notifier.Publish(ctx, e); err != nil && !errors.Is(err, store.ErrClosed) {
			d.log.Warn("publishing a refused network notification failed", "token_id", t.ID.String(), "err", err)
		}
	}
}
