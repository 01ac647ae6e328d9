package rillimport

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// tokens reads the live user and service tokens. A user token acts as its representing user
// when it has one (userAuthToken.OwnerID in admin/auth_token.go), so that user owns it here, and
// the superuser who issued it (its user_id) is its IssuedBy, as for one issued here
// (store.Token.IssuedBy): deleting either user revokes it.
// Expired ones are left out: Rill refuses them (validateAuthTokenUncached) and deletes them
// later (DeleteExpiredUserAuthTokens).
func (r *reader) tokens(ctx context.Context) error {
	for _, t := range []struct {
		kind  token.Kind
		table string
		sql   string
	}{
		{token.User, "user_auth_tokens", `SELECT id::text, secret_hash, COALESCE(representing_user_id, user_id)::text,
			COALESCE(display_name, ''), created_on, expires_on,
			CASE WHEN representing_user_id IS NULL THEN '' ELSE user_id::text END FROM user_auth_tokens
			WHERE expires_on IS NULL OR expires_on > now() ORDER BY created_on, id`},
		{token.Service, "service_auth_tokens", `SELECT id::text, secret_hash, service_id::text, '', created_on, expires_on, ''
			FROM service_auth_tokens WHERE expires_on IS NULL OR expires_on > now() ORDER BY created_on, id`},
	} {
		err := r.query(ctx, t.table, t.sql, func(rows pgx.Rows) error {
			var rec store.Token
			var id string
			var hash []byte
			var expires *time.Time
			if err := rows.Scan(&id, &hash, &rec.OwnerID, &rec.DisplayName, &rec.CreatedAt, &expires, &rec.IssuedBy); err != nil {
				return err
			}
			var err error
			if rec.ID, err = token.ParseID(id); err != nil {
				return err
			}
			// secret_hash is the SHA-256 of the 24 secret bytes (authtoken.Token.SecretHash in
			// admin/pkg/authtoken/authtoken.go): the hash we keep for our own tokens too.
			if rec.Hash, err = token.HashFromBytes(hash); err != nil {
				return fmt.Errorf("token %s: secret_hash: %w", rec.ID, err)
			}
			rec.Kind, rec.Prefix, rec.CreatedBy = t.kind, token.RillDisplay(t.kind, rec.ID), CreatedBy
			rec.CreatedAt = rec.CreatedAt.UTC()
			if expires != nil {
				rec.ExpiresAt = expires.UTC()
			}
			r.snap.Tokens = append(r.snap.Tokens, rec)
			return nil
		})
		if err != nil {
			return err
		}
		var n int
		if err := r.tx.QueryRow(ctx, "SELECT count(*) FROM "+t.table+" WHERE expires_on <= now()").Scan(&n); err != nil {
			return fmt.Errorf("count expired %s: %w", t.table, err)
		}
		r.snap.ExpiredTokens += n
	}
	return nil
}
