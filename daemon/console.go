package daemon

import (
	"context"
	"strings"
	"time"

	"github.com/rill-authd/rill-authd/console"
)

// replicaStates is the console's view of this replica's change feed (PostgreSQL only; nil on
// Badger, which has no replicas).
func (d *Daemon) replicaStates() func(context.Context) []console.ReplicaState {
	if d.pg == nil {
		return nil
	}
	pg, stale, name := d.pg, d.stale, listenAddr(d.httpLis)+" (this replica)"
	return func(ctx context.Context) []console.ReplicaState {
		applied, at := pg.Current()
		s := console.ReplicaState{Name: name, Applied: applied, ConfirmedAt: at, Connected: pg.Connected()}
		_, s.Stale = stale.stale()
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if last, err := pg.LastSeq(ctx); err != nil {
			s.LatestErr = "PostgreSQL did not answer"
		} else {
			s.Latest = last
		}
		return []console.ReplicaState{s}
	}
}

// consoleURL is where the console is, as printed at start: on a Unix socket, under
// --public-url (the proxy in front of the socket) when there is one.
func (d *Daemon) consoleURL() string {
	if socketPath(d.cfg.HTTPAddr) != "" {
		if d.cfg.PublicURL != "" {
			return strings.TrimSuffix(d.cfg.PublicURL, "/") + console.Prefix + "/"
		}
		return listenAddr(d.httpLis) + " " + console.Prefix + "/"
	}
	scheme := "http"
	if d.cfg.tlsOn("http") {
		scheme = "https"
	}
	return scheme + "://" + d.httpLis.Addr().String() + console.Prefix + "/"
}
