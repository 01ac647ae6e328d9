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

var _ store.Loader = (*DB)(nil)

// loadBatch bounds the records of one load transaction (halved when Badger finds it too big).
var loadBatch = 10_000

// recordPrefixes are the keys of records and their indexes: what makes a store not empty, and
// what a replacing load drops. Feed and bootstrap marks stay, so the sequence keeps growing.
var recordPrefixes = []string{pOrg, pProject, pUser, pService, pToken, pKey, pAudit}

var dropPrefixes = append([]string{"idx/", pRevoked, pPurge, pChange, pCount, pImported, pOutbox, pDevice, pDeviceUser}, recordPrefixes...)

// Load implements store.Loader in batches, each an atomic transaction, holding the write lock
// throughout. A failure part-way leaves part of snap in the store: load again with replace.
// The records are trusted to be one store's (store.Dump's): owners and names are not checked,
// but their text is (store.Snapshot.Validate), before anything is written.
func (s *DB) Load(ctx context.Context, snap store.Snapshot, replace bool) error {
	if err := snap.Validate(); err != nil {
		return fmt.Errorf("load: %w", err)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.loadLocked(ctx, snap, replace); err != nil {
		if errors.Is(err, bdg.ErrDBClosed) {
			err = store.ErrClosed
		}
		return fmt.Errorf("load: %w", err)
	}
	return nil
}

func (s *DB) loadLocked(ctx context.Context, snap store.Snapshot, replace bool) error {
	empty := true
	err := s.view(func(txn *bdg.Txn) error {
		for _, p := range recordPrefixes {
			it := txn.NewIterator(bdg.IteratorOptions{Prefix: []byte(p)})
			it.Rewind()
			empty = empty && !it.Valid()
			it.Close()
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !empty && !replace {
		return store.ErrNotEmpty
	}
	if !empty {
		var live []token.ID
		err := s.view(func(txn *bdg.Txn) error {
			it := txn.NewIterator(bdg.IteratorOptions{Prefix: []byte(pToken)})
			defer it.Close()
			for it.Rewind(); it.Valid(); it.Next() {
				if id, err := token.ParseID(string(it.Item().Key()[len(pToken):])); err == nil {
					live = append(live, id)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		ps := make([][]byte, len(dropPrefixes))
		for i, p := range dropPrefixes {
			ps[i] = []byte(p)
		}
		if err := s.db.DropPrefix(ps...); err != nil {
			return fmt.Errorf("empty the store: %w", err)
		}
		s.idx.Remove(live...)
	}

	aud := make([]byte, len(pAudit)+12)
	copy(aud, pAudit)
	steps := []struct {
		n      int
		put    func(txn *bdg.Txn, i int) error
		tokens bool
	}{
		{len(snap.Orgs), func(txn *bdg.Txn, i int) error { return putJSON(txn, pOrg+snap.Orgs[i].Name, snap.Orgs[i]) }, false},
		{len(snap.Projects), func(txn *bdg.Txn, i int) error {
			p := snap.Projects[i]
			return putJSON(txn, pProject+p.Org+"/"+p.Name, p)
		}, false},
		{len(snap.Users), func(txn *bdg.Txn, i int) error {
			u := snap.Users[i]
			if err := txn.Set([]byte(pUserMail+u.Email), []byte(u.ID)); err != nil {
				return err
			}
			return putJSON(txn, pUser+u.ID, u)
		}, false},
		{len(snap.Services), func(txn *bdg.Txn, i int) error {
			sv := snap.Services[i]
			if err := txn.Set([]byte(pSvcName+sv.Org+"/"+sv.Name), []byte(sv.ID)); err != nil {
				return err
			}
			return putJSON(txn, pService+sv.ID, sv)
		}, false},
		{len(snap.Tokens), func(txn *bdg.Txn, i int) error {
			t := &snap.Tokens[i]
			if err := txn.Set([]byte(pTokOwner+t.OwnerID+"/"+t.ID.String()), nil); err != nil {
				return err
			}
			if err := setIssuerKey(txn, t); err != nil {
				return err
			}
			return putToken(txn, t)
		}, true},
		{len(snap.Tombstones), func(txn *bdg.Txn, i int) error { return putTombstone(txn, snap.Tombstones[i]) }, false},
		{len(snap.Imported), func(txn *bdg.Txn, i int) error { return putImported(txn, snap.Imported[i]) }, false},
		{len(snap.Notifications), func(txn *bdg.Txn, i int) error {
			x := snap.Notifications[i]
			x.LeaseUntil = time.Time{} // no replica here claimed it
			return putJSON(txn, pOutbox+x.ID, x)
		}, false},
		{len(snap.SigningKeys), func(txn *bdg.Txn, i int) error {
			return putJSON(txn, pKey+snap.SigningKeys[i].KID, snap.SigningKeys[i])
		}, false},
		{len(snap.Audit), func(txn *bdg.Txn, i int) error {
			e := snap.Audit[i]
			b, err := json.Marshal(e)
			if err != nil {
				return fmt.Errorf("encode audit event: %w", err)
			}
			binary.BigEndian.PutUint64(aud[len(pAudit):], uint64(e.Time.UnixNano()))
			binary.BigEndian.PutUint32(aud[len(pAudit)+8:], s.auditSeq.Add(1))
			entry := bdg.NewEntry(append([]byte(nil), aud...), b)
			if r := s.opts.AuditRetention; r > 0 {
				left := time.Until(e.Time.Add(r))
				if left <= 0 {
					return nil // past retention already
				}
				entry = entry.WithTTL(left)
			}
			return txn.SetEntry(entry)
		}, false},
	}
	batch := loadBatch
	for _, st := range steps {
		for done := 0; done < st.n; {
			end := min(done+batch, st.n)
			err := s.update(ctx, func(txn *bdg.Txn) error {
				for i := done; i < end; i++ {
					if err := st.put(txn, i); err != nil {
						return err
					}
				}
				return nil
			})
			if errors.Is(err, bdg.ErrTxnTooBig) && batch > 1 {
				batch /= 2 // too much for one transaction: this part again, in halves
				continue
			}
			if err != nil {
				return err
			}
			if st.tokens { // in the index once committed
				for _, t := range snap.Tokens[done:end] {
					s.idx.Put(t.ID, t.Auth())
				}
			}
			done = end
		}
	}

	// Counts, the bootstrap mark, and a feed that tells every reader from before to reload.
	counts := map[token.Kind]uint64{token.User: 0, token.Service: 0, token.Magic: 0}
	for _, t := range snap.Tokens {
		counts[t.Kind]++
	}
	seq := s.seq.Load() + 1
	err = s.update(ctx, func(txn *bdg.Txn) error {
		for k, n := range counts {
			if err := txn.Set([]byte(pCount+string(k)), binary.BigEndian.AppendUint64(nil, n)); err != nil {
				return err
			}
		}
		if err := txn.Set([]byte(pCount+"v1"), nil); err != nil {
			return err
		}
		if err := txn.Set([]byte(kPruned), binary.BigEndian.AppendUint64(nil, seq)); err != nil {
			return err
		}
		// The issuer goes with the records: the JWTs in the field carry it.
		if snap.Issuer.URL != "" {
			if err := putJSON(txn, kIssuer, snap.Issuer); err != nil {
				return err
			}
		} else if err := txn.Delete([]byte(kIssuer)); err != nil {
			return err
		}
		if ok, err := exists(txn, kBoot); err != nil || ok {
			return err
		}
		return txn.Set([]byte(kBoot), []byte(time.Now().UTC().Format(time.RFC3339)))
	})
	if err != nil {
		return err
	}
	s.seq.Store(seq)
	// Anything may have changed: caches re-check every entry (and drop every signing key).
	cs := []store.Change{store.ResetNotice(time.Now().UTC())}
	for _, fn := range s.subs {
		fn(cs)
	}
	return nil
}
