package rillimport

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// schema lists the tables and columns Read needs. A column given as "a|b" may have either name
// (the first is the newer); 0090.sql renamed projects.prod_branch and prod_deployment_id.
var schema = []struct {
	table   string
	columns []string
}{
	{"orgs", []string{"id", "name", "created_on"}},
	{"projects", []string{"id", "org_id", "name", "created_on", "primary_branch|prod_branch", "primary_deployment_id|prod_deployment_id"}},
	{"deployments", []string{"id", "branch", "runtime_host", "runtime_instance_id", "runtime_audience"}},
	{"users", []string{"id", "email", "display_name", "superuser", "created_on", "updated_on"}},
	{"usergroups", []string{"id", "org_id", "name"}},
	{"usergroups_users", []string{"usergroup_id", "user_id"}},
	{"org_roles", []string{"id", "name"}},
	{"project_roles", []string{"id", "name"}},
	{"users_orgs_roles", []string{"user_id", "org_id", "org_role_id"}},
	{"users_projects_roles", []string{"user_id", "project_id", "project_role_id"}},
	{"usergroups_orgs_roles", []string{"usergroup_id", "org_id", "org_role_id"}},
	{"usergroups_projects_roles", []string{"usergroup_id", "project_id", "project_role_id"}},
	{"service", []string{"id", "org_id", "name", "attributes", "created_on", "updated_on"}},
	{"service_orgs_roles", []string{"service_id", "org_id", "org_role_id"}},
	{"service_projects_roles", []string{"service_id", "project_id", "project_role_id"}},
	{"user_auth_tokens", []string{"id", "secret_hash", "user_id", "display_name", "representing_user_id", "expires_on", "created_on"}},
	{"service_auth_tokens", []string{"id", "secret_hash", "service_id", "expires_on", "created_on"}},
}

// ErrSchema is wrapped by Read's error when the database lacks a table or column it needs.
var ErrSchema = errors.New("not a Rill admin database this import knows")

// checkSchema refuses a database without the tables and columns Read queries, naming them
// all, before any of them is read.
func (r *reader) checkSchema(ctx context.Context) error {
	rows, err := r.tx.Query(ctx, `SELECT table_name::text, column_name::text FROM information_schema.columns
		WHERE table_schema = ANY (current_schemas(false))`)
	if err != nil {
		return fmt.Errorf("read its schema: %w", err)
	}
	r.cols = map[string]bool{}
	tables := map[string]bool{}
	for rows.Next() {
		var t, c string
		if err := rows.Scan(&t, &c); err != nil {
			return fmt.Errorf("read its schema: %w", err)
		}
		r.cols[t+"."+c], tables[t] = true, true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read its schema: %w", err)
	}
	var missing []string
	for _, t := range schema {
		if !tables[t.table] {
			missing = append(missing, fmt.Sprintf("table %s", t.table))
			continue
		}
		for _, c := range t.columns {
			if r.column(t.table, c) == "" {
				missing = append(missing, fmt.Sprintf("column %s.%s", t.table, strings.ReplaceAll(c, "|", " (or ")+strings.Repeat(")", strings.Count(c, "|"))))
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w (rilldata/rill admin/database/postgres/migrations): missing %s", ErrSchema, strings.Join(missing, ", "))
	}
	return nil
}

// column returns the name that table has for spec ("a|b": a or b), or "" for none.
func (r *reader) column(table, spec string) string {
	for _, c := range strings.Split(spec, "|") {
		if r.cols[table+"."+c] {
			return c
		}
	}
	return ""
}
