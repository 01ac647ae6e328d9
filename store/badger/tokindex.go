package badger

import (
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/store/internal/tokindex"
)

// The token index (store/internal/tokindex) holds the TokenAuth of every live token in
// memory: from Badger's SSTables a read costs several times what it costs from its memtable,
// so without it a cache miss got slower as the store grew. Writers that add or remove tokens
// hold DB.wmu from before their transaction until the index is updated, so the index sees
// commits in commit order.

// loadIndex fills x from every token record in Badger; expect is how many there are, to size
// the maps once instead of growing them step by step.
func loadIndex(x *tokindex.Index, db *badger.DB, expect int) error {
	x.Reserve(expect)
	return db.View(func(txn *badger.Txn) error {
		// Records are small and stored in the LSM tree, so values are read in line: prefetching
		// would start a goroutine per record.
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pToken)})
		defer it.Close()
		var t store.Token
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			err := item.Value(func(b []byte) error { return decodeToken(b, &t) })
			if err != nil {
				return fmt.Errorf("token record %s: %w", item.Key(), err)
			}
			x.Put(t.ID, t.Auth())
		}
		return nil
	})
}
