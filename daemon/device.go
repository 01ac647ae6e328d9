package daemon

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/rill-authd/rill-authd/signin"
	"github.com/rill-authd/rill-authd/token"
)

// checkDevice refuses a negative --device-token-ttl (a typo; 0 is "never expires").
func (c *Config) checkDevice() error {
	if c.DeviceTokenTTL < 0 {
		return fmt.Errorf("--device-token-ttl %v is negative: give how long rillctl login's tokens live, such as 2160h (90 days), or 0 for never", c.DeviceTokenTTL)
	}
	return nil
}

// startDevice mounts the device authorization grant (`rillctl login`: RFC 8414 metadata, the
// device authorization and token endpoints) on the admin listener, and starts its sweep of
// expired requests, stopped with the notifier's loops (before the store closes).
func (d *Daemon) startDevice(mux *http.ServeMux) *signin.Device {
	dev := signin.NewDevice(d.st, signin.DeviceOptions{Logger: d.log, PublicURL: d.cfg.PublicURL, TrustedProxyHops: d.cfg.TrustedProxyHops,
		Revoke: func(ctx context.Context, id string) error {
			tid, err := token.ParseID(id)
			if err != nil {
				return fmt.Errorf("token id %q: %w", id, err)
			}
			return d.st.DeleteToken(ctx, tid)
		}})
	dev.Register(mux)
	ctx, cancel := context.WithCancel(context.Background())
	stopNotify := d.notifyStop
	d.notifyStop = func() {
		cancel()
		if stopNotify != nil {
			stopNotify()
		}
	}
	d.notifyDone.Go(func() { dev.Run(ctx) })
	return dev
}

// deviceTokenTTL maps --device-token-ttl to adminapi.Options.DeviceTokenTTL: the flag's 0
// (never expires) is the option's negative (its 0 is the default).
func deviceTokenTTL(flag time.Duration) time.Duration {
	if flag == 0 {
		return -1
	}
	return flag
}
