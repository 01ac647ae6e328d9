package badger

import (
	"context"
	"errors"
	"fmt"
	"time"

	bdg "github.com/dgraph-io/badger/v4"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
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

// purgeScan bounds the expired tokens one scan of the token records collects, so memory stays
// bounded however many there are; PurgeExpiredTokens scans again until a scan comes up short
// (a variable for tests).
var purgeScan = 50_000

// errEnough stops a scan that found what it wanted.
var errEnough = errors.New("enough")

type expiredToken struct {
	id    token.ID
	kind  token.Kind
	owner string
}

// PurgeExpiredTokens implements store.TokenLifetimes. It reads the token records (a scan, off
// the check path: the maintenance loop runs it) and deletes the expired ones in transactions of
// store.PurgeBatch, each token read again inside its transaction.
func (s *DB) PurgeExpiredTokens(ctx context.Context, before time.Time, limit int) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("purge expired tokens: %w", err)
	}
	n := 0
	for limit <= 0 || n < limit {
		want := purgeScan
		if limit > 0 {
			want = min(want, limit-n)
		}
		found, err := s.expiredTokens(before, want)
		if err != nil {
			return n, fmt.Errorf("purge expired tokens: %w", err)
		}
		got := len(found)
		for len(found) > 0 {
			batch := found[:min(len(found), store.PurgeBatch)]
			found = found[len(batch):]
			k, err := s.purgeExpired(ctx, batch, before)
			n += k
			if err != nil {
				return n, fmt.Errorf("purge expired tokens: %w", err)
			}
		}
		if got < want {
			break
		}
	}
	return n, nil
}

func (s *DB) expiredTokens(before time.Time, want int) ([]expiredToken, error) {
	var out []expiredToken
	err := s.view(func(txn *bdg.Txn) error {
		err := scan(txn, pToken, func(_, val []byte) error {
			var t store.Token
			if err := decodeToken(val, &t); err != nil {
				return err
			}
			if t.ExpiresAt.IsZero() || !t.ExpiresAt.Before(before) {
				return nil
			}
			// An owner being deleted purges its own tokens.
			if ok, err := exists(txn, pPurge+t.OwnerID); err != nil || ok {
				return err
			}
			out = append(out, expiredToken{t.ID, t.Kind, t.OwnerID})
			if len(out) >= want {
				return errEnough
			}
			return nil
		})
		if errors.Is(err, errEnough) {
			return nil
		}
		return err
	})
	return out, err
}

func (s *DB) purgeExpired(ctx context.Context, ts []expiredToken, before time.Time) (int, error) {
	n := 0
	err := s.write(ctx, func(w *wtxn) error {
		n = 0
		counts := map[token.Kind]int64{}
		for _, e := range ts {
			var t store.Token
			if err := getToken(w.Txn, e.id, &t); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					continue // revoked meanwhile
				}
				return err
			}
			if t.ExpiresAt.IsZero() || !t.ExpiresAt.Before(before) {
				continue
			}
			if err := deleteTokenKeys(w, t.ID, t.OwnerID, store.ExpiredWhy); err != nil {
				return err
			}
			if err := dropIssuerKey(w.Txn, &t); err != nil {
				return err
			}
			counts[t.Kind]++
			n++
		}
		for k, c := range counts {
			if err := addTokenCount(w.Txn, k, -c); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// purgeExpiredTokens is the GC loop's purge of tokens expired longer than the retention, at
// most a minute of it (the rest waits for the next round); stopped ends it when the store
// closes, so Close does not wait out a long purge.
func (s *DB) purgeExpiredTokens(stopped context.Context) {
	r := s.opts.ExpiredTokenRetention
	if r <= 0 {
		return
	}
	ctx, cancel := context.WithTimeout(stopped, time.Minute)
	defer cancel()
	before := time.Now().Add(-r)
	n, err := s.PurgeExpiredTokens(ctx, before, 0)
	if n > 0 {
		s.log.Info("purged expired tokens", "tokens", n, "expired_before", before.UTC().Format(time.RFC3339))
	}
	if err != nil && stopped.Err() == nil {
		s.log.Error("purging expired tokens", "err", err, "purged", n)
	}
}
