package rillimport

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// magicColumns are the columns of Rill's magic_auth_tokens the import reads, as its migrations
// leave them (admin/database/postgres/migrations: the table, created_by_user_id and attributes,
// state, display_name, internal, resources replacing resource_type/resource_name, fields
// replacing metrics_view_fields, metrics_view_filter_jsons replacing filter_json). A database
// whose table lacks one predates public URLs as we model them: none are read from it.
var magicColumns = []string{"id", "secret_hash", "project_id", "created_on", "expires_on", "created_by_user_id", "attributes",
	"resources", "metrics_view_filter_jsons", "fields", "state", "display_name", "internal"}

// magicTokens reads the live magic tokens (public URLs) with what each opens. Their secret_hash
// is SHA-256 of the secret, as for every Rill token (admin/pkg/authtoken), so a link Rill
// handed out keeps working here. Expired ones are left out, as Rill refuses them.
func (r *reader) magicTokens(ctx context.Context) error {
	if r.column("magic_auth_tokens", "id") == "" {
		return nil // a Rill from before public URLs
	}
	for _, c := range magicColumns {
		if r.column("magic_auth_tokens", c) == "" {
			r.snap.PublicURLsUnread = "Rill's magic_auth_tokens has no column " + c + " (a Rill older than the import knows)"
			return nil
		}
	}
	sql := `SELECT m.id::text, m.secret_hash, m.project_id::text, m.created_on, m.expires_on,
		COALESCE(m.created_by_user_id::text, ''), COALESCE(u.email, ''), m.attributes::text, m.resources::text,
		m.metrics_view_filter_jsons::text, m.fields, COALESCE(m.state, ''), COALESCE(m.display_name, ''), m.internal
		FROM magic_auth_tokens m LEFT JOIN users u ON u.id = m.created_by_user_id
		WHERE m.expires_on IS NULL OR m.expires_on > now() ORDER BY m.created_on, m.id`
	err := r.query(ctx, "magic_auth_tokens", sql, func(rows pgx.Rows) error {
		var (
			id, projectID, attrs, resources, filters string
			hash                                     []byte
			expires                                  *time.Time
			fields                                   []string
			m                                        store.Magic
			rec                                      store.Token
		)
		if err := rows.Scan(&id, &hash, &projectID, &rec.CreatedAt, &expires, &m.CreatedByUserID, &m.CreatedByEmail, &attrs, &resources,
			&filters, &fields, &m.State, &rec.DisplayName, &m.Internal); err != nil {
			return err
		}
		var err error
		if rec.ID, err = token.ParseID(id); err != nil {
			return err
		}
		if rec.Hash, err = token.HashFromBytes(hash); err != nil {
			return fmt.Errorf("magic token %s: secret_hash: %w", rec.ID, err)
		}
		p, ok := r.projects[projectID]
		if !ok {
			r.orphan("magic_auth_tokens", id, []string{projectID}, "its project %s does not exist", projectID)
			return nil
		}
		if err := json.Unmarshal([]byte(attrs), &m.Attributes); err != nil {
			return fmt.Errorf("magic token %s: attributes: %w", rec.ID, err)
		}
		if len(m.Attributes) == 0 {
			m.Attributes = nil
		}
		if err := json.Unmarshal([]byte(resources), &m.Resources); err != nil { // database.ResourceName: type, name
			return fmt.Errorf("magic token %s: resources: %w", rec.ID, err)
		}
		// Each value is the filter's protojson as a JSON string (database.MagicAuthToken
		// MetricsViewFilterJSONs map[string]string).
		if err := json.Unmarshal([]byte(filters), &m.Filters); err != nil {
			return fmt.Errorf("magic token %s: metrics_view_filter_jsons: %w", rec.ID, err)
		}
		if len(m.Filters) == 0 {
			m.Filters = nil
		}
		if len(fields) > 0 {
			m.Fields = fields
		}
		m.Org, m.Project = p.org, p.name
		rec.Kind, rec.OwnerID, rec.Prefix, rec.CreatedBy = token.Magic, store.MagicOwner(p.org, p.name), token.RillDisplay(token.Magic, rec.ID), CreatedBy
		rec.CreatedAt = rec.CreatedAt.UTC()
		if expires != nil {
			rec.ExpiresAt = expires.UTC()
		}
		rec.Magic = &m
		r.snap.Tokens = append(r.snap.Tokens, rec)
		return nil
	})
	if err != nil {
		return err
	}
	var n int
	if err := r.tx.QueryRow(ctx, "SELECT count(*) FROM magic_auth_tokens WHERE expires_on <= now()").Scan(&n); err != nil {
		return fmt.Errorf("count expired magic_auth_tokens: %w", err)
	}
	r.snap.ExpiredTokens += n
	return nil
}
