package badger

import (
	"context"
	"errors"
	"fmt"
	"time"

	bdg "github.com/dgraph-io/badger/v4"

	"github.com/rill-authd/rill-authd/store"
)

// Bootstrap implements store.Store. Calls are serialized, so concurrent callers cannot both find
// the store not bootstrapped and both run fn.
func (s *DB) Bootstrap(ctx context.Context, fn func(ctx context.Context) error) (bool, error) {
	s.bootMu.Lock()
	defer s.bootMu.Unlock()
	var done bool
	err := s.view(func(txn *bdg.Txn) error {
		var err error
		done, err = exists(txn, kBoot)
		return err
	})
	if err != nil || done {
		return false, err
	}
	if err := fn(ctx); err != nil {
		return false, fmt.Errorf("bootstrap: %w", err)
	}
	err = s.update(ctx, func(txn *bdg.Txn) error {
		return txn.Set([]byte(kBoot), []byte(time.Now().UTC().Format(time.RFC3339)))
	})
	return err == nil, err
}

// GetIssuer implements store.Store.
func (s *DB) GetIssuer(context.Context) (store.Issuer, error) {
	var iss store.Issuer
	err := s.view(func(txn *bdg.Txn) error { return getJSON(txn, kIssuer, &iss) })
	if errors.Is(err, store.ErrNotFound) {
		return store.Issuer{}, nil
	}
	if err != nil {
		return store.Issuer{}, fmt.Errorf("read issuer: %w", err)
	}
	return iss, nil
}

// SwapIssuer implements store.Store: one transaction reads and writes it, so of two swaps from
// the same old one fails Badger's conflict check and, retried, finds the other's.
func (s *DB) SwapIssuer(ctx context.Context, old, next store.Issuer) (store.Issuer, error) {
	var cur store.Issuer
	err := s.update(ctx, func(txn *bdg.Txn) error {
		cur = store.Issuer{}
		if err := getJSON(txn, kIssuer, &cur); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if !cur.Same(old) {
			return nil
		}
		cur = next
		return putJSON(txn, kIssuer, next)
	})
	if err != nil {
		return store.Issuer{}, fmt.Errorf("record issuer: %w", err)
	}
	return cur, nil
}
