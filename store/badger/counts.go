package badger

import (
	"context"
	"encoding/binary"

	bdg "github.com/dgraph-io/badger/v4"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// Live-token counts per kind, kept in the transaction of every token create and delete, so the
// active-tokens gauge reads one key instead of scanning.
const pCount = "meta/tokens/" // meta/tokens/<kind> -> uint64

func addTokenCount(txn *bdg.Txn, kind token.Kind, delta int64) error {
	if delta == 0 {
		return nil
	}
	n, err := tokenCount(txn, kind)
	if err != nil {
		return err
	}
	v := int64(n) + delta
	if v < 0 {
		v = 0
	}
	return txn.Set([]byte(pCount+string(kind)), binary.BigEndian.AppendUint64(nil, uint64(v)))
}

func tokenCount(txn *bdg.Txn, kind token.Kind) (uint64, error) {
	return getUint64(txn, pCount+string(kind))
}

// CountTokens returns the number of live (not deleted) tokens of each kind. Expired tokens
// count until they are revoked.
func (s *DB) CountTokens(_ context.Context) (map[token.Kind]uint64, error) {
	out := map[token.Kind]uint64{}
	err := s.view(func(txn *bdg.Txn) error {
		for _, k := range token.Kinds {
			n, err := tokenCount(txn, k)
			if err != nil {
				return err
			}
			out[k] = n
		}
		return nil
	})
	return out, err
}

// initTokenCounts counts tokens once, for a store written before the counts existed.
func (s *DB) initTokenCounts() error {
	return s.db.Update(func(txn *bdg.Txn) error {
		if _, err := txn.Get([]byte(pCount + "v1")); err == nil {
			return nil
		}
		counts := map[token.Kind]int64{}
		it := txn.NewIterator(bdg.IteratorOptions{Prefix: []byte(pToken), PrefetchValues: true})
		for it.Rewind(); it.Valid(); it.Next() {
			var t store.Token
			if err := it.Item().Value(func(b []byte) error { return decodeToken(b, &t) }); err != nil {
				it.Close()
				return err
			}
			counts[t.Kind]++
		}
		it.Close()
		for k, n := range counts {
			if err := txn.Set([]byte(pCount+string(k)), binary.BigEndian.AppendUint64(nil, uint64(n))); err != nil {
				return err
			}
		}
		return txn.Set([]byte(pCount+"v1"), nil)
	})
}
