package badger

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bdg "github.com/dgraph-io/badger/v4"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// pImported holds the import ledger: imported/<token id> -> unix nanos BE of the import that
// brought it. Its entries never expire (see store.ImportLedger).
const pImported = "imported/"

var (
	_ store.TombstoneLister = (*DB)(nil)
	_ store.ImportLedger    = (*DB)(nil)
)

// ListTombstones implements store.TombstoneLister. A tombstone's time is read from its expiry
// (Badger keeps no other): its revocation is tombstoneTTL before.
func (s *DB) ListTombstones(_ context.Context) ([]store.Tombstone, error) {
	var out []store.Tombstone
	err := s.view(func(txn *bdg.Txn) error {
		return scanItems(txn, pRevoked, func(item *bdg.Item, v []byte) error {
			id, err := token.ParseID(string(item.Key()[len(pRevoked):]))
			if err != nil {
				return fmt.Errorf("%w: tombstone key %q: %w", errCorrupt, item.Key(), err)
			}
			t := store.Tombstone{ID: id, Why: string(v), At: time.Now().UTC()}
			if exp := item.ExpiresAt(); exp > 0 {
				t.At = time.Unix(int64(exp), 0).Add(-tombstoneTTL).UTC()
			}
			out = append(out, t)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list tombstones: %w", err)
	}
	return out, nil
}

// putTombstone writes t with what is left of its period; one past it is not written.
func putTombstone(txn *bdg.Txn, t store.Tombstone) error {
	left := time.Until(t.At.Add(tombstoneTTL))
	if left <= time.Second {
		return nil
	}
	return txn.SetEntry(bdg.NewEntry([]byte(pRevoked+t.ID.String()), []byte(t.Why)).WithTTL(left))
}

// MarkImported implements store.ImportLedger.
func (s *DB) MarkImported(ctx context.Context, ids []token.ID, at time.Time) error {
	for len(ids) > 0 {
		n := min(len(ids), 10_000)
		err := s.update(ctx, func(txn *bdg.Txn) error {
			for _, id := range ids[:n] {
				if ok, err := exists(txn, pImported+id.String()); err != nil || ok {
					if err != nil {
						return err
					}
					continue
				}
				if err := putImported(txn, store.ImportedToken{ID: id, At: at}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("mark imported tokens: %w", err)
		}
		ids = ids[n:]
	}
	return nil
}

func putImported(txn *bdg.Txn, t store.ImportedToken) error {
	return txn.Set([]byte(pImported+t.ID.String()), binary.BigEndian.AppendUint64(nil, uint64(t.At.UnixNano())))
}

// ImportedTokens implements store.ImportLedger.
func (s *DB) ImportedTokens(_ context.Context) ([]store.ImportedToken, error) {
	var out []store.ImportedToken
	err := s.view(func(txn *bdg.Txn) error {
		return scanItems(txn, pImported, func(item *bdg.Item, v []byte) error {
			t, err := decodeImported(item.Key(), v)
			if err != nil {
				return err
			}
			out = append(out, t)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read the import ledger: %w", err)
	}
	return out, nil
}

func decodeImported(k, v []byte) (store.ImportedToken, error) {
	var t store.ImportedToken
	id, err := token.ParseID(string(k[len(pImported):]))
	if err != nil || len(v) != 8 {
		return t, fmt.Errorf("%w: import ledger entry %q", errCorrupt, k)
	}
	t.ID, t.At = id, time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC()
	return t, nil
}

// scanItems calls fn with each item under prefix and its value.
func scanItems(txn *bdg.Txn, prefix string, fn func(item *bdg.Item, val []byte) error) error {
	it := txn.NewIterator(bdg.IteratorOptions{Prefix: []byte(prefix), PrefetchValues: true, PrefetchSize: 64})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		if err := item.Value(func(v []byte) error { return fn(item, v) }); err != nil {
			return err
		}
	}
	return nil
}
