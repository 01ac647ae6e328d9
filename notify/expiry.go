package notify

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/rill-authd/rill-authd/store"
)

// WarnExpiring publishes a TokenExpiring event for each live token that expires within the
// window from now, and says how many tokens that is. An event's id names the token and its
// expiry, so a token is told of once per window, however many scans and replicas find it; a
// token whose expiry changes is told of again.
func (n *Notifier) WarnExpiring(ctx context.Context, within time.Duration) (int, error) {
	now := n.o.Now()
	ts, err := n.st.ExpiringTokens(ctx, now, now.Add(within), 0)
	if err != nil {
		return 0, fmt.Errorf("expiry warnings: %w", err)
	}
	n.expiring.Store(int64(len(ts)))
	for _, t := range ts {
		if _, err := n.Publish(ctx, expiringEvent(t, now)); err != nil {
			return len(ts), fmt.Errorf("expiry warnings: %w", err)
		}
	}
	return len(ts), nil
}

func expiringEvent(t store.Token, now time.Time) Event {
	exp := t.ExpiresAt.UTC()
	return Event{
		ID:        TokenExpiring + ":" + t.ID.String() + ":" + strconv.FormatInt(exp.Unix(), 10),
		Type:      TokenExpiring,
		Time:      now,
		TokenID:   t.ID.String(),
		TokenKind: string(t.Kind),
		OwnerID:   t.OwnerID,
		Target:    string(t.Kind) + ":" + t.OwnerID + " token:" + t.ID.String(),
		ExpiresAt: &exp,
		Detail:    t.DisplayName,
	}
}

// Expiring is the number of live tokens the last WarnExpiring found in its window (the gauge
// rill_authd_tokens_expiring).
func (n *Notifier) Expiring() int64 { return n.expiring.Load() }

// RunExpiryWarnings runs WarnExpiring every interval until ctx ends. Every replica may run
// it: the events' ids make the outbox take each once.
func (n *Notifier) RunExpiryWarnings(ctx context.Context, within, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := n.WarnExpiring(ctx, within); err != nil && ctx.Err() == nil {
			n.log.Error("looking for tokens about to expire", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
