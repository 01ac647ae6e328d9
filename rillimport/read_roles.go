package rillimport

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/rill-authd/rill-authd/policy"
)

// roles reads the role tables. Rill looks roles up by name (FindOrganizationRole in
// admin/database/postgres/postgres.go), and only some have fixed ids (0061.sql creates guest
// with a generated one), so bindings are resolved through these maps.
func (r *reader) roles(ctx context.Context) error {
	r.orgRole, r.projectRole = map[string]string{}, map[string]string{}
	for _, t := range []struct {
		table string
		m     map[string]string
	}{{"org_roles", r.orgRole}, {"project_roles", r.projectRole}} {
		err := r.query(ctx, t.table, "SELECT id::text, name FROM "+t.table, func(rows pgx.Rows) error {
			var id, name string
			if err := rows.Scan(&id, &name); err != nil {
				return err
			}
			t.m[id] = name
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// orgRoleOf maps a Rill org role to ours. collaborator and reader are the names before
// 0061.sql and 0010.sql renamed them.
func orgRoleOf(name string) (policy.Role, bool) {
	switch strings.ToLower(name) {
	case "admin":
		return policy.Admin, true
	case "editor", "collaborator":
		return policy.Editor, true
	case "viewer", "reader":
		return policy.Viewer, true
	case "guest":
		return policy.Guest, true
	}
	return "", false
}

func projectRoleOf(name string) (policy.Role, bool) {
	r, ok := orgRoleOf(name)
	return r, ok && r != policy.Guest // guest is an org role only
}

func (r *reader) orgRoleByID(id string) (policy.Role, error) {
	role, ok := orgRoleOf(r.orgRole[id])
	if !ok {
		return "", fmt.Errorf("org role %q (id %s) is none of admin, editor, viewer, guest", r.orgRole[id], id)
	}
	return role, nil
}

func (r *reader) projectRoleByID(id string) (policy.Role, error) {
	role, ok := projectRoleOf(r.projectRole[id])
	if !ok {
		return "", fmt.Errorf("project role %q (id %s) is none of admin, editor, viewer", r.projectRole[id], id)
	}
	return role, nil
}
