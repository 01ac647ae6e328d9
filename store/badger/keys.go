package badger

import (
	"context"
	"fmt"
	"sort"

	"github.com/rill-authd/rill-authd/store"
)

func (s *DB) PutSigningKey(ctx context.Context, k store.SigningKey) error {
	err := s.write(ctx, func(w *wtxn) error {
		if err := putJSON(w.Txn, pKey+k.KID, k); err != nil {
			return err
		}
		return w.change(store.ChangeKey, store.OpPut, k.KID)
	})
	if err != nil {
		return fmt.Errorf("put signing key: %w", err)
	}
	return nil
}

func (s *DB) ListSigningKeys(context.Context) ([]store.SigningKey, error) {
	ks, err := list[store.SigningKey](s, pKey)
	sort.Slice(ks, func(i, j int) bool { return ks[i].CreatedAt.Before(ks[j].CreatedAt) })
	return ks, err
}
