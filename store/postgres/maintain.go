package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// maintain prunes, now and then, changes older than the feed keeps (always keeping the newest),
// tombstones past their period, audit events past their retention and tokens expired longer
// than theirs, and finishes the token purges of deleted owners that a replica left part way.
// The two purges also run once at start, in this goroutine (Open and readiness do not wait for
// them): a replica restarted more often than the interval would otherwise never purge, and a
// test or an operator sees the retention applied at once. Every replica does it; the deletes
// are idempotent (each batch is one write under the write lock, so two replicas purging at once
// delete each token once, and the later finds nothing).
func (s *DB) maintain() {
	defer s.done.Done()
	if s.opts.MaintainInterval < 0 {
		<-s.stop
		return
	}
	t := time.NewTicker(s.opts.MaintainInterval)
	defer t.Stop()
	// Purges a stopped replica left are finished at once, not a whole interval later.
	stopped, cancelStop := context.WithCancel(context.Background())
	defer cancelStop()
	go func() { <-s.stop; cancelStop() }()
	ctx, cancel := context.WithTimeout(stopped, time.Minute)
	if err := s.resumePurges(ctx, time.Now()); err != nil && ctx.Err() == nil {
		s.log.Error("finishing the token purges of deleted owners", "err", err)
	}
	cancel()
	// Bounded as one periodic run is; stopping cancels it.
	ctx, cancel = context.WithTimeout(stopped, time.Minute)
	if err := s.purgeExpired(ctx, time.Now()); err != nil && stopped.Err() == nil {
		s.log.Error("purging expired tokens", "err", err)
	}
	cancel()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(stopped, time.Minute)
			if err := s.prune(ctx, time.Now()); err != nil {
				s.log.Error("pruning the change feed, tombstones and audit", "err", err)
			}
			cancel()
		}
	}
}

func (s *DB) prune(ctx context.Context, now time.Time) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockWrite); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `WITH gone AS (
				DELETE FROM changes WHERE at < $1 AND seq < (SELECT last_seq FROM feed_state) RETURNING seq)
			UPDATE feed_state SET pruned = greatest(pruned, (SELECT coalesce(max(seq), 0) FROM gone))`,
			now.Add(-feedRetention).UnixNano())
		return err
	})
	if err != nil {
		return fmt.Errorf("prune changes: %w", err)
	}
	if _, err := s.pool.Exec(ctx, "DELETE FROM tombstones WHERE deleted_at < $1", now.Add(-tombstoneTTL)); err != nil {
		return fmt.Errorf("prune tombstones: %w", err)
	}
	s.dead.Load().prune(now.Add(-tombstoneTTL))
	if err := s.resumePurges(ctx, now); err != nil {
		return err
	}
	if err := s.purgeExpired(ctx, now); err != nil {
		return err
	}
	if r := s.opts.AuditRetention; r > 0 {
		if _, err := s.pool.Exec(ctx, "DELETE FROM audit WHERE at < $1", now.Add(-r).UnixNano()); err != nil {
			return fmt.Errorf("prune audit: %w", err)
		}
	}
	return nil
}

// purgeExpired purges the tokens expired longer than ExpiredTokenRetention (none without one),
// logging how many this replica purged.
func (s *DB) purgeExpired(ctx context.Context, now time.Time) error {
	r := s.opts.ExpiredTokenRetention
	if r <= 0 {
		return nil
	}
	before := now.Add(-r)
	n, err := s.PurgeExpiredTokens(ctx, before, 0)
	if n > 0 {
		s.log.Info("purged expired tokens", "tokens", n, "expired_before", before.UTC().Format(time.RFC3339))
	}
	if err != nil {
		return fmt.Errorf("purge expired tokens (%d purged): %w", n, err)
	}
	return nil
}
