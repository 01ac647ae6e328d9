package badger

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bdg "github.com/dgraph-io/badger/v4"
	"github.com/rill-authd/rill-authd/store"
)

func (s *DB) AppendAudit(ctx context.Context, e store.AuditEvent) error {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	var k [len(pAudit) + 12]byte
	copy(k[:], pAudit)
	binary.BigEndian.PutUint64(k[len(pAudit):], uint64(e.Time.UnixNano()))
	binary.BigEndian.PutUint32(k[len(pAudit)+8:], s.auditSeq.Add(1))
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode audit event: %w", err)
	}
	return s.update(ctx, func(txn *bdg.Txn) error {
		entry := bdg.NewEntry(k[:], b)
		if s.opts.AuditRetention > 0 {
			entry = entry.WithTTL(s.opts.AuditRetention)
		}
		return txn.SetEntry(entry)
	})
}

// ListAudit returns matching events, oldest first; with a Limit, the newest Limit of them.
func (s *DB) ListAudit(_ context.Context, f store.AuditFilter) ([]store.AuditEvent, error) {
	var out []store.AuditEvent
	err := s.view(func(txn *bdg.Txn) error {
		it := txn.NewIterator(bdg.IteratorOptions{Prefix: []byte(pAudit), PrefetchValues: true})
		defer it.Close()
		start := []byte(pAudit)
		if !f.Since.IsZero() {
			start = binary.BigEndian.AppendUint64(start, uint64(f.Since.UnixNano()))
		}
		for it.Seek(start); it.Valid(); it.Next() {
			var e store.AuditEvent
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &e) }); err != nil {
				return err
			}
			if f.Actor != "" && e.Actor != f.Actor {
				continue
			}
			out = append(out, e)
		}
		return nil
	})
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[len(out)-f.Limit:]
	}
	return out, err
}
