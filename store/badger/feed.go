package badger

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bdg "github.com/dgraph-io/badger/v4"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// feedRetention is how long changes stay in the feed; a reader further behind reloads.
const feedRetention = 7 * 24 * time.Hour

// wtxn is a write transaction that records the changes it makes. Changes are stored in the
// same transaction as the records, so the feed and the data never disagree after a crash.
type wtxn struct {
	*bdg.Txn
	changes []store.Change
	next    uint64 // the sequence the next change gets
	now     time.Time
	// Token index updates, applied once the transaction has committed.
	idxPut []store.Token
	idxDel []token.ID
	// purging: an owner deleted here has a purge marker; its tokens, dropped from the index at
	// commit, are refused from s.dying until the purge has tombstoned them.
	purging bool
}

// change appends one change to the feed.
func (w *wtxn) change(kind store.ChangeKind, op store.ChangeOp, id string) error {
	c := store.Change{Seq: w.next, Kind: kind, Op: op, ID: id, Time: w.now}
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode change: %w", err)
	}
	if err := w.Set(changeKey(c.Seq), b); err != nil {
		return err
	}
	w.next++
	w.changes = append(w.changes, c)
	return nil
}

// tokenAdded records a new token: its change and its index entry.
func (w *wtxn) tokenAdded(t store.Token) error {
	w.idxPut = append(w.idxPut, t)
	return w.change(store.ChangeToken, store.OpPut, t.ID.String())
}

// tokenRemoved records a deleted token.
func (w *wtxn) tokenRemoved(id token.ID) error {
	w.idxDel = append(w.idxDel, id)
	return w.change(store.ChangeToken, store.OpDelete, id.String())
}

func changeKey(seq uint64) []byte { return binary.BigEndian.AppendUint64([]byte(pChange), seq) }

// write runs fn in one transaction holding wmu, then publishes what it changed.
func (s *DB) write(ctx context.Context, fn func(w *wtxn) error) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.commit(ctx, fn)
}

// commit runs fn in one transaction (retried on conflicts) and, once it has committed,
// advances the sequence, applies the token index updates and tells the subscribers, in that
// order. The caller holds wmu.
func (s *DB) commit(ctx context.Context, fn func(w *wtxn) error) error {
	var w wtxn
	err := s.update(ctx, func(txn *bdg.Txn) error {
		w = wtxn{Txn: txn, next: s.seq.Load() + 1, now: time.Now().UTC()}
		return fn(&w)
	})
	if err != nil {
		return err
	}
	s.seq.Store(w.next - 1)
	for _, t := range w.idxPut {
		s.idx.Put(t.ID, t.Auth())
	}
	s.idx.Remove(w.idxDel...)
	for _, c := range w.changes {
		kind, ok := c.OwnerDelete()
		if !ok {
			continue
		}
		if w.purging { // before the removal: never briefly unknown
			s.dying.add(s.idx.Owned(kind, c.ID), string(c.Kind)+" deleted")
		}
		s.idx.RemoveOwner(kind, c.ID)
	}
	if len(w.changes) > 0 {
		for _, fn := range s.subs {
			fn(w.changes)
		}
	}
	return nil
}

// Subscribe implements store.Feed.
func (s *DB) Subscribe(fn func([]store.Change)) {
	s.wmu.Lock()
	s.subs = append(s.subs, fn)
	s.wmu.Unlock()
}

// LastSeq implements store.Feed.
func (s *DB) LastSeq(context.Context) (uint64, error) { return s.seq.Load(), nil }

// ChangesSince implements store.Feed.
func (s *DB) ChangesSince(_ context.Context, after uint64, limit int) ([]store.Change, error) {
	var out []store.Change
	err := s.view(func(txn *bdg.Txn) error {
		pruned, err := getUint64(txn, kPruned)
		if err != nil {
			return err
		}
		if after < pruned {
			return fmt.Errorf("changes since %d (the feed starts after %d): %w", after, pruned, store.ErrFeedTruncated)
		}
		it := txn.NewIterator(bdg.IteratorOptions{Prefix: []byte(pChange), PrefetchValues: true})
		defer it.Close()
		for it.Seek(changeKey(after + 1)); it.Valid() && (limit <= 0 || len(out) < limit); it.Next() {
			var c store.Change
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &c) }); err != nil {
				return fmt.Errorf("change %x: %w", it.Item().Key(), err)
			}
			out = append(out, c)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read change feed: %w", err)
	}
	return out, nil
}

// loadSeq finds the newest sequence on open: the last change kept, or the last one pruned.
func (s *DB) loadSeq() error {
	return s.view(func(txn *bdg.Txn) error {
		seq, err := getUint64(txn, kPruned)
		if err != nil {
			return err
		}
		it := txn.NewIterator(bdg.IteratorOptions{Prefix: []byte(pChange), Reverse: true})
		defer it.Close()
		// A reverse iterator seeks to the last key <= its argument.
		if it.Seek(append([]byte(pChange), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)); it.Valid() {
			seq = max(seq, binary.BigEndian.Uint64(it.Item().Key()[len(pChange):]))
		}
		s.seq.Store(seq)
		return nil
	})
}

// pruneFeed deletes changes older than before, keeping the newest change so the sequence
// survives a reopen, and records how far it pruned so a reader that far behind is told to
// reload instead of missing changes.
func (s *DB) pruneFeed(before time.Time) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	last := s.seq.Load()
	for {
		n := 0
		err := s.update(context.Background(), func(txn *bdg.Txn) error {
			n = 0
			var upTo uint64
			it := txn.NewIterator(bdg.IteratorOptions{Prefix: []byte(pChange), PrefetchValues: true})
			defer it.Close()
			for it.Rewind(); it.Valid() && n < purgeBatch; it.Next() {
				seq := binary.BigEndian.Uint64(it.Item().Key()[len(pChange):])
				var c store.Change
				if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &c) }); err != nil {
					return err
				}
				if seq >= last || !c.Time.Before(before) {
					break
				}
				if err := txn.Delete(it.Item().KeyCopy(nil)); err != nil {
					return err
				}
				upTo, n = seq, n+1
			}
			if n == 0 {
				return nil
			}
			return txn.Set([]byte(kPruned), binary.BigEndian.AppendUint64(nil, upTo))
		})
		if err != nil {
			return fmt.Errorf("prune change feed: %w", err)
		}
		if n < purgeBatch {
			return nil
		}
	}
}

func getUint64(txn *bdg.Txn, key string) (uint64, error) {
	item, err := txn.Get([]byte(key))
	if errors.Is(err, bdg.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var n uint64
	err = item.Value(func(b []byte) error {
		if len(b) != 8 {
			return fmt.Errorf("%s: corrupt", key)
		}
		n = binary.BigEndian.Uint64(b)
		return nil
	})
	return n, err
}
