package badger

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	bdg "github.com/dgraph-io/badger/v4"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// purgeBatch bounds the tokens one purge transaction deletes (4 writes each, well inside the
// 26,214 writes a transaction holds with 16 MiB memtables).
const purgeBatch = 2000

// deleteOwner runs delOwner, which deletes an owner's records, and deletes the owner's tokens.
// It returns how many tokens it deleted. It is one change in the feed, the owner's delete,
// which revokes all its tokens (commit drops them from the index). Usually that is one
// transaction. An owner with more tokens than a Badger transaction holds (some thousands) is
// deleted with a purge marker in one transaction instead, which stops all its tokens at once
// (they are dropped from the index and refused as revoked from memory, s.dying) and is announced
// at once; its tokens are then deleted in batches, and a purge cut short by a crash is finished
// on the next open.
//
// also, when not nil, runs in the owner's delete transaction (a user's delete revokes the tokens
// the user issued to act as others).
func (s *DB) deleteOwner(ctx context.Context, kind token.Kind, owner string, delOwner func(*bdg.Txn) error, also func(*wtxn) error) (int, error) {
	ck := store.OwnerChange(kind)
	why := string(ck) + " deleted"
	s.wmu.Lock()
	defer s.wmu.Unlock()
	n := 0
	err := s.commit(ctx, func(w *wtxn) error {
		if err := delOwner(w.Txn); err != nil {
			return err
		}
		if also != nil {
			if err := also(w); err != nil {
				return err
			}
		}
		if err := w.change(ck, store.OpDelete, owner); err != nil {
			return err
		}
		var err error
		n, err = deleteOwnedTokens(w, kind, owner, why, 0)
		return err
	})
	if errors.Is(err, bdg.ErrTxnTooBig) {
		err = s.commit(ctx, func(w *wtxn) error {
			if err := delOwner(w.Txn); err != nil {
				return err
			}
			if also != nil {
				if err := also(w); err != nil {
					return err
				}
			}
			if err := w.Set([]byte(pPurge+owner), []byte(string(kind)+"\x00"+why)); err != nil {
				return err
			}
			w.purging = true
			return w.change(ck, store.OpDelete, owner)
		})
		if err != nil {
			return 0, err
		}
		// The owner is gone: finish even if the caller gives up waiting.
		n, err := s.purge(context.WithoutCancel(ctx), kind, owner, why)
		if err != nil {
			// The owner is deleted and its tokens refused; the rest is done on the next open.
			s.log.Error("deleting the tokens of a deleted owner; the store finishes on next open", "owner", owner, "err", err)
		}
		return n, nil
	}
	if err != nil {
		return 0, err
	}
	return n, nil
}

// purge deletes the tokens of a deleted owner in batches, then its purge marker, and returns
// how many it deleted. Each batch's tokens leave s.dying once their tombstones are written. The
// caller holds wmu.
func (s *DB) purge(ctx context.Context, kind token.Kind, owner, why string) (int, error) {
	total := 0
	for batch := purgeBatch; ; {
		n := 0
		var ids []token.ID
		err := s.commit(ctx, func(w *wtxn) error {
			var err error
			if ids, err = ownedTokens(w, owner, batch); err != nil {
				return err
			}
			if n, err = deleteOwnedTokens(w, kind, owner, why, batch); err != nil || n > 0 {
				return err
			}
			return w.Delete([]byte(pPurge + owner))
		})
		if errors.Is(err, bdg.ErrTxnTooBig) && batch > 1 {
			batch /= 2
			continue
		}
		if err != nil {
			return total, fmt.Errorf("purge tokens of %s: %w", owner, err)
		}
		s.dying.remove(ids)
		total += n
		if n == 0 {
			return total, nil
		}
	}
}

// resumePurges finishes purges a crash cut short.
func (s *DB) resumePurges() error {
	type job struct {
		owner, kind, why string
	}
	var jobs []job
	err := s.view(func(txn *bdg.Txn) error {
		return scan(txn, pPurge, func(k, v []byte) error {
			kind, why, _ := strings.Cut(string(v), "\x00")
			jobs = append(jobs, job{strings.TrimPrefix(string(k), pPurge), kind, why})
			return nil
		})
	})
	if err != nil {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	for _, j := range jobs {
		s.log.Info("finishing the token purge of a deleted owner", "owner", j.owner)
		if _, err := s.purge(context.Background(), token.Kind(j.kind), j.owner, j.why); err != nil {
			return err
		}
	}
	return nil
}

// ownedTokens lists the ids of owner's tokens inside w, all of them or at most limit (> 0).
func ownedTokens(w *wtxn, owner string, limit int) ([]token.ID, error) {
	var ids []token.ID
	it := w.NewIterator(bdg.IteratorOptions{Prefix: []byte(pTokOwner + owner + "/")})
	defer it.Close()
	for it.Rewind(); it.Valid() && (limit <= 0 || len(ids) < limit); it.Next() {
		id, err := ownedTokenID(it.Item().Key(), owner)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// deleteOwnedTokens deletes the tokens of owner inside w, all of them or at most limit (> 0),
// leaving tombstones, and returns how many. They get no change of their own: the owner's
// delete revokes them all.
func deleteOwnedTokens(w *wtxn, kind token.Kind, owner, why string, limit int) (int, error) {
	ids, err := ownedTokens(w, owner, limit)
	if err != nil {
		return 0, err
	}
	for _, id := range ids {
		if err := removeToken(w, id, owner, why); err != nil {
			return 0, err
		}
	}
	return len(ids), addTokenCount(w.Txn, kind, -int64(len(ids)))
}

// dyingSet holds the tokens of a deleted owner whose purge has not written their tombstones
// yet, with why they are revoked, so they are refused as revoked (not unknown) meanwhile.
type dyingSet struct {
	mu sync.RWMutex
	m  map[token.ID]string
}

func (d *dyingSet) add(ids []token.ID, why string) {
	if len(ids) == 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = map[token.ID]string{}
	}
	for _, id := range ids {
		d.m[id] = why
	}
}

func (d *dyingSet) remove(ids []token.ID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, id := range ids {
		delete(d.m, id)
	}
}

func (d *dyingSet) get(id token.ID) (string, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	why, ok := d.m[id]
	return why, ok
}
