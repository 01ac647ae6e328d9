package rillimport

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
)

// services reads the services with their org role (one at most: service_orgs_roles is keyed
// by service), project roles and custom attributes (0075.sql).
func (r *reader) services(ctx context.Context) error {
	svcs := map[string]*store.Service{}
	var order []string
	err := r.query(ctx, "service", "SELECT id::text, org_id::text, name, attributes, created_on, updated_on FROM service ORDER BY org_id, lower(name)",
		func(rows pgx.Rows) error {
			var s store.Service
			var org string
			var raw []byte
			if err := rows.Scan(&s.ID, &org, &s.Name, &raw, &s.CreatedAt, &s.UpdatedAt); err != nil {
				return err
			}
			if _, ok := r.orgName[org]; !ok {
				r.orphan("service", s.ID, []string{org}, "its org %s does not exist", org)
				r.gone[s.ID] = true
				return nil
			}
			a, err := object(raw)
			if err != nil {
				return fmt.Errorf("attributes of service %s: %w", s.ID, err)
			}
			s.Org, s.Attributes, s.CreatedBy = r.orgName[org], a, CreatedBy
			s.CreatedAt, s.UpdatedAt = s.CreatedAt.UTC(), s.UpdatedAt.UTC()
			svcs[s.ID] = &s
			order = append(order, s.ID)
			return nil
		})
	if err != nil {
		return err
	}
	err = r.query(ctx, "service_orgs_roles", "SELECT service_id::text, org_id::text, org_role_id::text FROM service_orgs_roles",
		func(rows pgx.Rows) error {
			var sid, org, role string
			if err := rows.Scan(&sid, &org, &role); err != nil {
				return err
			}
			s := svcs[sid]
			if s == nil {
				r.orphan("service_orgs_roles", keyCols("service_id", sid), []string{sid}, "its service %s does not exist", sid)
				return nil
			}
			if r.orgName[org] != s.Org {
				return fmt.Errorf("service %s of org %s has a role in another org (%s)", s.Name, s.Org, r.orgName[org])
			}
			ours, err := r.orgRoleByID(role)
			if err != nil {
				return fmt.Errorf("service %s in org %s: %w", s.Name, s.Org, err)
			}
			s.OrgRole = ours
			return nil
		})
	if err != nil {
		return err
	}
	err = r.query(ctx, "service_projects_roles", "SELECT service_id::text, project_id::text, project_role_id::text FROM service_projects_roles",
		func(rows pgx.Rows) error {
			var sid, pid, role string
			if err := rows.Scan(&sid, &pid, &role); err != nil {
				return err
			}
			s, p := svcs[sid], r.projects[pid]
			row := keyCols("service_id", sid, "project_id", pid)
			if s == nil {
				r.orphan("service_projects_roles", row, []string{sid}, "its service %s does not exist", sid)
				return nil
			}
			if p.name == "" {
				r.orphan("service_projects_roles", row, []string{pid}, "its project %s does not exist", pid)
				return nil
			}
			if p.org != s.Org {
				return fmt.Errorf("service %s of org %s has a role on project %s/%s of another org", s.Name, s.Org, p.org, p.name)
			}
			ours, err := r.projectRoleByID(role)
			if err != nil {
				return fmt.Errorf("service %s on project %s/%s: %w", s.Name, p.org, p.name, err)
			}
			if s.ProjectRoles == nil {
				s.ProjectRoles = map[string]policy.Role{}
			}
			s.ProjectRoles[p.name] = ours
			return nil
		})
	if err != nil {
		return err
	}
	for _, id := range order {
		r.snap.Services = append(r.snap.Services, *svcs[id])
	}
	return nil
}
