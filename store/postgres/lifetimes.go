package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/rill-authd/rill-authd/store"
)

// SetTokenPolicy implements store.TokenLifetimes: the policy is part of the org record.
func (s *DB) SetTokenPolicy(ctx context.Context, org string, p store.TokenPolicy) (store.Org, error) {
	if err := p.Validate(); err != nil {
		return store.Org{}, fmt.Errorf("set token policy of org %s: %w", org, err)
	}
	o, err := s.setOrgSetting(ctx, org, func(o *store.Org) { o.TokenPolicy = p })
	if err != nil {
		return store.Org{}, fmt.Errorf("set token policy of org %s: %w", org, err)
	}
	return o, nil
}

// PurgeExpiredTokens implements store.TokenLifetimes: batches of store.PurgeBatch, each one
// write (its tombstones and feed changes in the same transaction), found by the expires_at
// index (migration 0009).
func (s *DB) PurgeExpiredTokens(ctx context.Context, before time.Time, limit int) (int, error) {
	n := 0
	for limit <= 0 || n < limit {
		batch := store.PurgeBatch
		if limit > 0 {
			batch = min(batch, limit-n)
		}
		var k int
		err := s.write(ctx, func(w *wtx) error {
			var err error
			k, err = deleteTokens(w, fmt.Sprintf(`id IN (SELECT id FROM tokens t WHERE t.expires_at > 0 AND t.expires_at < $1
				AND NOT EXISTS (SELECT FROM purges p WHERE p.owner_id = t.owner_id) LIMIT %d)`, batch), store.ExpiredWhy, before.UnixNano())
			return err
		})
		n += k
		if err != nil {
			return n, fmt.Errorf("purge expired tokens: %w", unavail(err))
		}
		if k < batch {
			break
		}
	}
	return n, nil
}
