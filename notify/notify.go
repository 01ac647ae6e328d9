// Package notify tells people about events on tokens: a token reported leaked and revoked, a
// token about to expire, a token used from a refused network. Each event goes to an outbox in
// the store (store.Outbox), one row per sink, and a delivery loop on every replica takes due
// rows under a lease (one replica at a time per row), hands them to their sink, and retries a
// failure with exponential backoff until a limit, after which the row is dropped with an audit
// line. The sinks are the audit log and webhooks (webhook.go).
//
// Delivery is at least once: a replica that stops between a delivery and recording it leaves
// the row to another when its lease ends. Every event carries an id, the same on every
// attempt, so a receiver drops a repeat.
package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/rill-authd/rill-authd/store"
)

// Event types, the "type" of an event's JSON.
const (
	// TokenLeaked: a token was reported leaked (GitHub secret scanning) and revoked.
	TokenLeaked = "token.leaked"
	// TokenExpiring: a token expires within the warning window (--expiry-warning).
	TokenExpiring = "token.expiring"
	// TokenRefusedNetwork: a token was used from a network it is not allowed from. Nothing
	// publishes it yet: RefusedNetworkEvent is the hook for token network constraints.
	TokenRefusedNetwork = "token.refused_network"
)

// Event is what a sink receives, as JSON. It names the token by its id, never its secret.
type Event struct {
	// ID is the event's id, the same on every delivery attempt and every sink: a receiver
	// drops one it has seen. It is also the outbox's idempotency key: publishing an event
	// whose ID was published changes nothing.
	ID   string    `json:"id"`
	Type string    `json:"type"`
	Time time.Time `json:"time"`
	// TokenID is the token's id (the public part of a token, never its secret).
	TokenID   string `json:"token_id"`
	TokenKind string `json:"token_kind,omitempty"`
	OwnerID   string `json:"owner_id,omitempty"`
	// Target names the token as the audit log does ("user:a@b.c token:<id>").
	Target    string     `json:"target,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// URL is where a leaked token was found.
	URL    string `json:"url,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// Store is what notify needs of the store.
type Store interface {
	store.Outbox
	AppendAudit(ctx context.Context, e store.AuditEvent) error
}

// AuditSink is the sink name of the audit log.
const AuditSink = "audit"

// Actor is the audit actor of notify's own lines.
const Actor = "system:notify"

// Options configure a Notifier. Zero values take the defaults in brackets.
type Options struct {
	// Webhooks are the webhook sinks (none: events go to the audit log only).
	Webhooks []*Webhook
	Logger   *slog.Logger
	// MaxAttempts is how many failed deliveries drop a notification [10].
	MaxAttempts int
	// Backoff is the wait after the first failure, doubled after each one up to MaxBackoff
	// [10s, 1h].
	Backoff, MaxBackoff time.Duration
	// Lease is how long a claimed row is this replica's [2m]: longer than a delivery takes.
	Lease time.Duration
	// Interval is how often the loop looks for due rows [5s].
	Interval time.Duration
	// Keep is how long a done row stays to refuse a repeat of its event [30 days].
	Keep time.Duration
	Now  func() time.Time
}

// Notifier publishes events to the outbox and delivers them.
type Notifier struct {
	st    Store
	o     Options
	log   *slog.Logger
	hooks map[string]*Webhook
	// expiring is what the last WarnExpiring found.
	expiring atomic.Int64
}

// New returns a Notifier over st.
func New(st Store, o Options) *Notifier {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 10
	}
	if o.Backoff <= 0 {
		o.Backoff = 10 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = time.Hour
	}
	if o.Lease <= 0 {
		o.Lease = 2 * time.Minute
	}
	if o.Interval <= 0 {
		o.Interval = 5 * time.Second
	}
	if o.Keep <= 0 {
		o.Keep = 30 * 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	n := &Notifier{st: st, o: o, log: o.Logger, hooks: map[string]*Webhook{}}
	for _, w := range o.Webhooks {
		n.hooks[w.URL()] = w
	}
	return n
}

// rowID is the outbox key of event id for sink: one row per sink, so one sink's failures
// never resend to another.
func rowID(id, sink string) string {
	h := sha256.Sum256([]byte(sink))
	return id + "@" + hex.EncodeToString(h[:6])
}

// Publish writes e to the outbox, one row per sink, in one transaction; an event whose ID was
// published before adds nothing. It says whether e was new.
func (n *Notifier) Publish(ctx context.Context, e Event) (bool, error) {
	rows, err := n.Rows(e)
	if err != nil {
		return false, err
	}
	added, err := n.st.EnqueueNotifications(ctx, rows)
	if err != nil {
		return false, fmt.Errorf("publish %s: %w", e.ID, err)
	}
	return added > 0, nil
}

// Rows are e's outbox rows, one per sink, for a store write that enqueues them in its own
// transaction (store.Outbox.DeleteTokenNotify).
func (n *Notifier) Rows(e Event) ([]store.Notification, error) {
	if e.ID == "" || e.Type == "" {
		return nil, errors.New("publish: an event needs an id and a type")
	}
	if e.Time.IsZero() {
		e.Time = n.o.Now()
	}
	e.Time = e.Time.UTC()
	body, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", e.ID, err)
	}
	now := n.o.Now()
	rows := []store.Notification{{ID: rowID(e.ID, AuditSink), Sink: AuditSink, Body: body, CreatedAt: now, NextAt: now}}
	for _, w := range n.o.Webhooks {
		rows = append(rows, store.Notification{ID: rowID(e.ID, w.URL()), Sink: w.URL(), Body: body, CreatedAt: now, NextAt: now})
	}
	return rows, nil
}

// Run delivers due notifications every Interval until ctx ends, and prunes done ones.
func (n *Notifier) Run(ctx context.Context) {
	t := time.NewTicker(n.o.Interval)
	defer t.Stop()
	lastPrune := time.Time{}
	for {
		if _, err := n.DeliverDue(ctx); err != nil && ctx.Err() == nil {
			n.log.Error("delivering notifications", "err", err)
		}
		if now := n.o.Now(); now.Sub(lastPrune) > time.Hour {
			if _, err := n.st.PruneNotifications(ctx, now.Add(-n.o.Keep)); err != nil && ctx.Err() == nil {
				n.log.Error("pruning delivered notifications", "err", err)
			}
			lastPrune = now
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// DeliverDue claims the due notifications and delivers each once, recording the outcome. It
// says how many were delivered.
func (n *Notifier) DeliverDue(ctx context.Context) (int, error) {
	delivered := 0
	for {
		rows, err := n.st.ClaimNotifications(ctx, n.o.Now(), n.o.Lease, claimBatch)
		if err != nil {
			return delivered, fmt.Errorf("claim: %w", err)
		}
		if len(rows) == 0 {
			return delivered, nil
		}
		for i, r := range rows {
			ok, err := n.deliver(ctx, r)
			if err != nil {
				if ctx.Err() != nil {
					n.release(ctx, rows[i:])
				}
				return delivered, err
			}
			if ok {
				delivered++
			}
		}
	}
}

// release hands back the rows this replica claimed but has not posted, because it is stopping:
// the next replica takes them at once, not after their lease (2 min), so a restart delays no
// event. Each row handed back counts one failed attempt (the store ends a lease only so; the
// interrupted post may have reached the receiver, and the event's id lets it see a repeat).
func (n *Notifier) release(ctx context.Context, rows []store.Notification) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	now := n.o.Now()
	for _, r := range rows {
		if err := n.st.RetryNotification(ctx, r.ID, now, "interrupted: the replica stopped"); err != nil {
			n.log.Warn("stopping: a claimed notification keeps its lease", "id", r.ID, "err", err)
			return
		}
	}
}

// claimBatch is how many rows one claim takes: few enough that posting them all, each within
// its 10 s timeout, ends well inside the default lease (2 min), so no row's lease runs out
// while this replica still holds it unposted.
const claimBatch = 8

// backoff is the wait after the attempts-th failure.
func (n *Notifier) backoff(attempts int) time.Duration {
	d := n.o.Backoff
	for i := 1; i < attempts && d < n.o.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, n.o.MaxBackoff)
}

func (n *Notifier) deliver(ctx context.Context, r store.Notification) (bool, error) {
	var err error
	switch w := n.hooks[r.Sink]; {
	case r.Sink == AuditSink:
		err = n.audit(ctx, r.Body)
	case w != nil:
		err = w.Post(ctx, r.Body)
	default:
		// A webhook this replica does not have: removed from the configuration since, or one
		// that only another replica (being reconfigured) has. It fails like a refused post, so
		// a replica that has it may take it before the row is dropped.
		err = fmt.Errorf("no such sink here (a webhook not configured on this replica)")
	}
	now := n.o.Now()
	if err == nil {
		if ferr := n.st.FinishNotification(ctx, r.ID, now); ferr != nil {
			return false, fmt.Errorf("record delivery of %s: %w", r.ID, ferr)
		}
		return true, nil
	}
	if ctx.Err() != nil {
		// Stopping: the lease runs out and another attempt comes, uncounted.
		return false, ctx.Err()
	}
	attempts := r.Attempts + 1
	if attempts >= n.o.MaxAttempts {
		n.log.Warn("dropping a notification after its last attempt", "id", r.ID, "sink", sinkName(r.Sink), "attempts", attempts, "err", err)
		if aerr := n.st.AppendAudit(ctx, store.AuditEvent{Time: now, Actor: Actor, Action: "notification.dropped",
			Target: "notification:" + r.ID, Outcome: "dropped",
			Detail: fmt.Sprintf("sink %s, %d attempts, last error: %v", sinkName(r.Sink), attempts, err)}); aerr != nil {
			return false, fmt.Errorf("audit the drop of %s: %w", r.ID, aerr)
		}
		if ferr := n.st.FinishNotification(ctx, r.ID, now); ferr != nil {
			return false, fmt.Errorf("drop %s: %w", r.ID, ferr)
		}
		return false, nil
	}
	n.log.Info("a notification failed; retrying later", "id", r.ID, "sink", sinkName(r.Sink), "attempts", attempts, "err", err)
	if rerr := n.st.RetryNotification(ctx, r.ID, now.Add(n.backoff(attempts)), err.Error()); rerr != nil {
		return false, fmt.Errorf("record the failure of %s: %w", r.ID, rerr)
	}
	return false, nil
}

// sinkName is a sink as logs and audit show it: a webhook's URL without its query, which may
// hold a secret.
func sinkName(sink string) string {
	if sink == AuditSink {
		return sink
	}
	return redactURL(sink)
}

// audit is the audit sink: the event as an audit line "notify.<type>".
func (n *Notifier) audit(ctx context.Context, body []byte) error {
	var e Event
	if err := json.Unmarshal(body, &e); err != nil {
		return fmt.Errorf("decode event: %w", err)
	}
	detail := "event " + e.ID
	if e.ExpiresAt != nil {
		detail += ", expires " + e.ExpiresAt.UTC().Format(time.RFC3339)
	}
	return n.st.AppendAudit(ctx, store.AuditEvent{Time: e.Time, Actor: Actor, Action: "notify." + e.Type,
		Target: e.Target, Outcome: "notified", Detail: detail})
}

// RefusedNetworkEvery bounds the token.refused_network events of one token: one per period,
// whatever the number of refused uses (the event's id names the period, and the outbox takes
// an id once).
const RefusedNetworkEvery = time.Hour

// RefusedNetworkEvent is the event of a token used from a network it is not allowed from, at
// at, from the client address addr. It is the hook of token network constraints: whoever
// refuses the use publishes it (off the check path: Publish is a store write). Its id names the
// token and the hour, so publishing every refusal tells of at most one per token and hour.
func RefusedNetworkEvent(tokenID, kind, ownerID, target, addr string, at time.Time) Event {
	bucket := at.UTC().Truncate(RefusedNetworkEvery).Unix()
	return Event{ID: TokenRefusedNetwork + ":" + tokenID + ":" + fmt.Sprint(bucket), Type: TokenRefusedNetwork, Time: at,
		TokenID: tokenID, TokenKind: kind, OwnerID: ownerID, Target: target, Detail: "used from " + addr}
}
