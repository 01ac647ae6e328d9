package badger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	bdg "github.com/dgraph-io/badger/v4"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// EnqueueNotifications implements store.Outbox: one transaction, an existing ID untouched.
func (s *DB) EnqueueNotifications(ctx context.Context, ns []store.Notification) (int, error) {
	s.outboxMu.Lock()
	defer s.outboxMu.Unlock()
	var n int
	err := s.update(ctx, func(txn *bdg.Txn) error {
		var err error
		n, err = enqueue(txn, ns)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("enqueue notifications: %w", err)
	}
	return n, nil
}

// ClaimNotifications implements store.Outbox. Badger is one process, so the lease only keeps
// a delivery loop from claiming a row it is still delivering.
func (s *DB) ClaimNotifications(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]store.Notification, error) {
	s.outboxMu.Lock()
	defer s.outboxMu.Unlock()
	var out []store.Notification
	err := s.update(ctx, func(txn *bdg.Txn) error {
		out = out[:0]
		it := txn.NewIterator(bdg.IteratorOptions{Prefix: []byte(pOutbox), PrefetchValues: true})
		var due []store.Notification
		for it.Rewind(); it.Valid(); it.Next() {
			var x store.Notification
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &x) }); err != nil {
				it.Close()
				return err
			}
			if x.DoneAt.IsZero() && !x.NextAt.After(now) && !x.LeaseUntil.After(now) {
				due = append(due, x)
			}
		}
		it.Close()
		sort.SliceStable(due, func(i, j int) bool { return due[i].NextAt.Before(due[j].NextAt) })
		if limit > 0 && len(due) > limit {
			due = due[:limit]
		}
		for _, x := range due {
			x.LeaseUntil = now.Add(lease)
			if err := putJSON(txn, pOutbox+x.ID, x); err != nil {
				return err
			}
			out = append(out, x)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim notifications: %w", err)
	}
	return out, nil
}

func (s *DB) changeNotification(ctx context.Context, id string, fn func(*store.Notification)) error {
	s.outboxMu.Lock()
	defer s.outboxMu.Unlock()
	return s.update(ctx, func(txn *bdg.Txn) error {
		var x store.Notification
		if err := getJSON(txn, pOutbox+id, &x); err != nil {
			return err
		}
		fn(&x)
		return putJSON(txn, pOutbox+id, x)
	})
}

// FinishNotification implements store.Outbox.
func (s *DB) FinishNotification(ctx context.Context, id string, now time.Time) error {
	if err := s.changeNotification(ctx, id, func(x *store.Notification) {
		x.DoneAt, x.LeaseUntil = now, time.Time{}
	}); err != nil {
		return fmt.Errorf("finish notification %s: %w", id, err)
	}
	return nil
}

// RetryNotification implements store.Outbox.
func (s *DB) RetryNotification(ctx context.Context, id string, next time.Time, lastErr string) error {
	if err := s.changeNotification(ctx, id, func(x *store.Notification) {
		x.Attempts++
		x.NextAt, x.LastError, x.LeaseUntil = next, lastErr, time.Time{}
	}); err != nil {
		return fmt.Errorf("retry notification %s: %w", id, err)
	}
	return nil
}

// GetNotification implements store.Outbox.
func (s *DB) GetNotification(_ context.Context, id string) (store.Notification, error) {
	var x store.Notification
	err := s.view(func(txn *bdg.Txn) error { return getJSON(txn, pOutbox+id, &x) })
	if err != nil {
		return store.Notification{}, fmt.Errorf("notification %s: %w", id, err)
	}
	return x, nil
}

// PruneNotifications implements store.Outbox.
func (s *DB) PruneNotifications(ctx context.Context, before time.Time) (int, error) {
	s.outboxMu.Lock()
	defer s.outboxMu.Unlock()
	var n int
	err := s.update(ctx, func(txn *bdg.Txn) error {
		n = 0
		it := txn.NewIterator(bdg.IteratorOptions{Prefix: []byte(pOutbox), PrefetchValues: true})
		var gone [][]byte
		for it.Rewind(); it.Valid(); it.Next() {
			var x store.Notification
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &x) }); err != nil {
				it.Close()
				return err
			}
			if !x.DoneAt.IsZero() && x.DoneAt.Before(before) {
				gone = append(gone, it.Item().KeyCopy(nil))
			}
		}
		it.Close()
		for _, k := range gone {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		n = len(gone)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune notifications: %w", err)
	}
	return n, nil
}

// ExpiringTokens implements store.Outbox: a scan of the token records, off the check path.
func (s *DB) ExpiringTokens(_ context.Context, from, to time.Time, limit int) ([]store.Token, error) {
	var out []store.Token
	err := s.view(func(txn *bdg.Txn) error {
		return scan(txn, pToken, func(_, val []byte) error {
			var t store.Token
			if err := decodeToken(val, &t); err != nil {
				return err
			}
			if t.ExpiresAt.IsZero() || !t.ExpiresAt.After(from) || t.ExpiresAt.After(to) {
				return nil
			}
			if ok, err := exists(txn, pPurge+t.OwnerID); err != nil || ok {
				return err
			}
			out = append(out, t)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("expiring tokens: %w", err)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].ExpiresAt.Equal(out[j].ExpiresAt) {
			return out[i].ExpiresAt.Before(out[j].ExpiresAt)
		}
		return out[i].ID.String() < out[j].ID.String()
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// enqueue writes the notifications of ns whose ID is new in txn, and says how many.
func enqueue(txn *bdg.Txn, ns []store.Notification) (int, error) {
	n := 0
	for _, x := range ns {
		if x.ID == "" {
			return 0, errors.New("notification without an id")
		}
		_, err := txn.Get([]byte(pOutbox + x.ID))
		if err == nil {
			continue
		}
		if !errors.Is(err, bdg.ErrKeyNotFound) {
			return 0, err
		}
		if x.CreatedAt.IsZero() {
			x.CreatedAt = time.Now()
		}
		if x.NextAt.IsZero() {
			x.NextAt = x.CreatedAt
		}
		x.LeaseUntil, x.DoneAt = time.Time{}, time.Time{}
		if err := putJSON(txn, pOutbox+x.ID, x); err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}

// DeleteTokenNotify implements store.Outbox: DeleteToken's transaction writes the rows too.
func (s *DB) DeleteTokenNotify(ctx context.Context, id token.ID, ns []store.Notification) error {
	s.outboxMu.Lock()
	defer s.outboxMu.Unlock()
	err := s.write(ctx, func(w *wtxn) error {
		var t store.Token
		if err := getToken(w.Txn, id, &t); err != nil {
			return fmt.Errorf("token %s: %w", id, err)
		}
		if err := deleteTokenKeys(w, id, t.OwnerID, "revoked"); err != nil {
			return err
		}
		if err := dropIssuerKey(w.Txn, &t); err != nil {
			return err
		}
		if err := addTokenCount(w.Txn, t.Kind, -1); err != nil {
			return err
		}
		_, err := enqueue(w.Txn, ns)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete token: %w", err)
	}
	return nil
}

// ListNotifications implements store.NotificationLister.
func (s *DB) ListNotifications(_ context.Context) ([]store.Notification, error) {
	var out []store.Notification
	err := s.view(func(txn *bdg.Txn) error {
		it := txn.NewIterator(bdg.IteratorOptions{Prefix: []byte(pOutbox), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var x store.Notification
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &x) }); err != nil {
				return fmt.Errorf("notification %s: %w", it.Item().Key()[len(pOutbox):], err)
			}
			out = append(out, x)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list notifications: %w", err)
	}
	return out, nil
}
