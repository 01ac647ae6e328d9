package badger

import (
	"context"
	"fmt"
	"time"

	bdg "github.com/dgraph-io/badger/v4"
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
