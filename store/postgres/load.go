package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

var _ store.Loader = (*DB)(nil)

// Load implements store.Loader in one transaction: the destination holds all of snap or none
// of it. It holds the write lock, so no replica writes meanwhile, and leaves the feed truncated
// at a new sequence, so every replica on the database (this one included) reloads its index.
// Every record's text is checked first (store.Snapshot.Validate), so a record PostgreSQL cannot
// store is named rather than failing the COPY.
func (s *DB) Load(ctx context.Context, snap store.Snapshot, replace bool) error {
	if err := s.closedErr(); err != nil {
		return err
	}
	if err := snap.Validate(); err != nil {
		return fmt.Errorf("load: %w", err)
	}
	// Signing keys are sealed before the transaction: encryption needs no database.
	keys := make([][]any, len(snap.SigningKeys))
	for i, k := range snap.SigningKeys {
		priv, encrypted := k.PrivateKey, false
		if s.aead != nil {
			var err error
			if priv, err = s.seal(k.KID, k.PrivateKey); err != nil {
				return fmt.Errorf("load: encrypt signing key %s: %w", k.KID, err)
			}
			encrypted = true
		}
		meta := k
		meta.PrivateKey = nil
		doc, err := json.Marshal(meta)
		if err != nil {
			return fmt.Errorf("load: encode signing key %s: %w", k.KID, err)
		}
		keys[i] = []any{k.KID, priv, encrypted, nanos(k.CreatedAt), doc}
	}
	var last int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockWrite); err != nil {
			return fmt.Errorf("take the write lock: %w", err)
		}
		var used bool
		err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT FROM orgs) OR EXISTS (SELECT FROM users) OR EXISTS (SELECT FROM services)
			OR EXISTS (SELECT FROM tokens) OR EXISTS (SELECT FROM signing_keys) OR EXISTS (SELECT FROM audit)`).Scan(&used)
		if err != nil {
			return err
		}
		if used && !replace {
			return store.ErrNotEmpty
		}
		if used {
			if _, err := tx.Exec(ctx, "TRUNCATE orgs, projects, users, services, tokens, tombstones, purges, imported_tokens, signing_keys, audit, outbox, device_codes"); err != nil {
				return fmt.Errorf("empty the database: %w", err)
			}
		}
		if err := copyRows(ctx, tx, snap); err != nil {
			return err
		}
		if err := copyDurable(ctx, tx, snap); err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"signing_keys"}, []string{"kid", "private_key", "encrypted", "created_at", "doc"},
			pgx.CopyFromRows(keys)); err != nil {
			return fmt.Errorf("signing keys: %w", err)
		}
		counts := map[token.Kind]int64{token.User: 0, token.Service: 0, token.Magic: 0}
		for _, t := range snap.Tokens {
			counts[t.Kind]++
		}
		for k, n := range counts {
			if _, err := tx.Exec(ctx, `INSERT INTO token_counts (kind, n) VALUES ($1, $2)
				ON CONFLICT (kind) DO UPDATE SET n = excluded.n`, string(k), n); err != nil {
				return fmt.Errorf("token counts: %w", err)
			}
		}
		if err := loadIssuer(ctx, tx, snap.Issuer); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO meta (key, value) VALUES ('bootstrapped', $1) ON CONFLICT (key) DO NOTHING`,
			time.Now().UTC().Format(time.RFC3339)); err != nil {
			return fmt.Errorf("mark bootstrapped: %w", err)
		}
		// The records came without changes: a new sequence past a pruned feed sends every
		// replica, this one included, to reload everything.
		if err := tx.QueryRow(ctx, "UPDATE feed_state SET last_seq = last_seq + 1, pruned = last_seq + 1 RETURNING last_seq").Scan(&last); err != nil {
			return fmt.Errorf("advance the feed: %w", err)
		}
		if _, err := tx.Exec(ctx, "DELETE FROM changes"); err != nil {
			return fmt.Errorf("advance the feed: %w", err)
		}
		if _, err := tx.Exec(ctx, "SELECT pg_notify($1, $2)", notifyChannel, fmt.Sprint(last)); err != nil {
			return fmt.Errorf("notify: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("load: %w", mapErr(err))
	}
	s.amu.Lock()
	defer s.amu.Unlock()
	if s.applied.Load() >= uint64(last) {
		return nil // the follower reloaded already
	}
	if err := s.reload(ctx, s.pool); err != nil {
		return fmt.Errorf("load: the records are in, but this replica's index is not (reopen the store): %w", unavail(err))
	}
	// Anything may have changed: caches re-check every entry (and drop every signing key).
	cs := []store.Change{store.ResetNotice(time.Now().UTC())}
	for _, fn := range s.subs {
		fn(cs)
	}
	return nil
}

// copyRows writes every record of snap but the signing keys with COPY.
func copyRows(ctx context.Context, tx pgx.Tx, snap store.Snapshot) error {
	docs := func(n int, row func(i int) ([]any, error)) pgx.CopyFromSource {
		return pgx.CopyFromFunc(func() func() ([]any, error) {
			i := 0
			return func() ([]any, error) {
				if i == n {
					return nil, nil
				}
				i++
				return row(i - 1)
			}
		}())
	}
	doc := func(v any) ([]byte, error) { return json.Marshal(v) }
	tables := []struct {
		name string
		cols []string
		src  pgx.CopyFromSource
	}{
		{"orgs", []string{"name", "doc"}, docs(len(snap.Orgs), func(i int) ([]any, error) {
			o := snap.Orgs[i]
			b, err := doc(o)
			return []any{o.Name, b}, err
		})},
		{"projects", []string{"org", "name", "doc"}, docs(len(snap.Projects), func(i int) ([]any, error) {
			p := snap.Projects[i]
			b, err := doc(p)
			return []any{p.Org, p.Name, b}, err
		})},
		{"users", []string{"id", "email", "doc"}, docs(len(snap.Users), func(i int) ([]any, error) {
			u := snap.Users[i]
			b, err := doc(u)
			return []any{u.ID, u.Email, b}, err
		})},
		{"services", []string{"id", "org", "name", "doc"}, docs(len(snap.Services), func(i int) ([]any, error) {
			sv := snap.Services[i]
			b, err := doc(sv)
			return []any{sv.ID, sv.Org, sv.Name, b}, err
		})},
		{"tokens", []string{"id", "kind", "owner_id", "display_name", "prefix", "hash", "created_by", "created_at", "expires_at", "last_used_at", "magic", "last_used_ip", "last_used_user_agent", "limits", "issued_by"},
			docs(len(snap.Tokens), func(i int) ([]any, error) {
				t := &snap.Tokens[i]
				magic, err := magicText(t.Magic)
				return []any{t.ID, string(t.Kind), t.OwnerID, t.DisplayName, t.Prefix, t.Hash[:], t.CreatedBy,
					nanos(t.CreatedAt), nanos(t.ExpiresAt), nanos(t.LastUsedAt), magic, t.LastUsedIP, t.LastUsedUserAgent, limitsText(t), t.IssuedBy}, err
			})},
		{"audit", []string{"at", "actor", "doc"}, docs(len(snap.Audit), func(i int) ([]any, error) {
			e := snap.Audit[i]
			b, err := doc(e)
			return []any{e.Time.UnixNano(), e.Actor, b}, err
		})},
		// The outbox, unclaimed: a lease was a source replica's.
		{"outbox", []string{"id", "sink", "body", "created_at", "attempts", "next_at", "last_error", "lease_until", "done_at"},
			docs(len(snap.Notifications), func(i int) ([]any, error) {
				x := snap.Notifications[i]
				return []any{x.ID, x.Sink, x.Body, nanos(x.CreatedAt), x.Attempts, nanos(x.NextAt), x.LastError, int64(0), nanos(x.DoneAt)}, nil
			})},
	}
	for _, tb := range tables {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{tb.name}, tb.cols, tb.src); err != nil {
			return fmt.Errorf("%s: %w", tb.name, err)
		}
	}
	return nil
}
