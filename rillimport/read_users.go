package rillimport

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
)

// users reads the users and resolves their roles as Rill's ResolveOrganizationRolesForUser and
// ResolveProjectRolesForUser (admin/database/postgres/postgres.go) do: the direct binding and
// every binding of a group they are in. Rill grants the union of those roles' permissions;
// Rill's roles nest, so the highest role is that union.
func (r *reader) users(ctx context.Context) error {
	users := map[string]*store.User{}
	var order []string
	err := r.query(ctx, "users", "SELECT id::text, email, display_name, superuser, created_on, updated_on FROM users ORDER BY id",
		func(rows pgx.Rows) error {
			var u store.User
			if err := rows.Scan(&u.ID, &u.Email, &u.DisplayName, &u.Superuser, &u.CreatedAt, &u.UpdatedAt); err != nil {
				return err
			}
			// Rill's emails are unique case-insensitively (users_email_idx on lower(email));
			// ours are stored lower case, as the admin API writes them.
			u.Email = strings.ToLower(u.Email)
			u.CreatedAt, u.UpdatedAt = u.CreatedAt.UTC(), u.UpdatedAt.UTC()
			u.CreatedBy = CreatedBy
			users[u.ID] = &u
			order = append(order, u.ID)
			return nil
		})
	if err != nil {
		return err
	}

	// Groups: id -> (org, name), and each group's members.
	type group struct{ org, name string }
	groups := map[string]group{}
	err = r.query(ctx, "usergroups", "SELECT id::text, org_id::text, name FROM usergroups", func(rows pgx.Rows) error {
		var id, org, name string
		if err := rows.Scan(&id, &org, &name); err != nil {
			return err
		}
		if _, ok := r.orgName[org]; !ok {
			r.orphan("usergroups", id, []string{org}, "its org %s does not exist", org)
			r.gone[id] = true
			return nil
		}
		groups[id] = group{r.orgName[org], name}
		return nil
	})
	if err != nil {
		return err
	}
	members := map[string][]string{} // group id -> user ids
	err = r.query(ctx, "usergroups_users", "SELECT usergroup_id::text, user_id::text FROM usergroups_users", func(rows pgx.Rows) error {
		var g, u string
		if err := rows.Scan(&g, &u); err != nil {
			return err
		}
		row := keyCols("usergroup_id", g, "user_id", u)
		if _, ok := groups[g]; !ok {
			r.orphan("usergroups_users", row, []string{g}, "its group %s does not exist", g)
			return nil
		}
		if users[u] == nil {
			r.orphan("usergroups_users", row, nil, "its user %s does not exist", u)
			return nil
		}
		members[g] = append(members[g], u)
		if usr := users[u]; usr != nil {
			// Rill's jwtAttributesForUser (admin/server/server.go) lists every group of the
			// user in the org (FindUsergroupsForUser), managed autogroup:* ones included.
			org := groups[g].org
			s := slice(usr, org)
			s.Groups = append(s.Groups, groups[g].name)
			usr.Orgs[org] = s
		}
		return nil
	})
	if err != nil {
		return err
	}

	grantOrg := func(u *store.User, org string, role policy.Role) {
		if u.OrgRoles == nil {
			u.OrgRoles = map[string]policy.Role{}
		}
		u.OrgRoles[org] = higher(u.OrgRoles[org], role)
	}
	grantProject := func(u *store.User, key string, role policy.Role) {
		if u.ProjectRoles == nil {
			u.ProjectRoles = map[string]policy.Role{}
		}
		u.ProjectRoles[key] = higher(u.ProjectRoles[key], role)
	}

	// Direct org roles, with the custom attributes each org set (0083.sql).
	attrs := "'{}'::jsonb"
	if r.cols["users_orgs_roles.attributes"] {
		attrs = "attributes"
	}
	err = r.query(ctx, "users_orgs_roles", "SELECT user_id::text, org_id::text, org_role_id::text, "+attrs+" FROM users_orgs_roles ORDER BY org_id",
		func(rows pgx.Rows) error {
			var uid, org, role string
			var raw []byte
			if err := rows.Scan(&uid, &org, &role, &raw); err != nil {
				return err
			}
			u := users[uid]
			row := keyCols("user_id", uid, "org_id", org)
			if u == nil {
				r.orphan("users_orgs_roles", row, nil, "its user %s does not exist", uid)
				return nil
			}
			if _, ok := r.orgName[org]; !ok {
				r.orphan("users_orgs_roles", row, []string{org}, "its org %s does not exist", org)
				return nil
			}
			ours, err := r.orgRoleByID(role)
			if err != nil {
				return fmt.Errorf("user %s in org %s: %w", uid, r.orgName[org], err)
			}
			grantOrg(u, r.orgName[org], ours)
			a, err := object(raw)
			if err != nil {
				return fmt.Errorf("attributes of user %s in org %s: %w", uid, r.orgName[org], err)
			}
			if a != nil { // the org's own, as FindUserWithAttributes reads them for that org
				s := slice(u, r.orgName[org])
				s.Attributes = a
				u.Orgs[r.orgName[org]] = s
			}
			return nil
		})
	if err != nil {
		return err
	}
	err = r.query(ctx, "usergroups_orgs_roles", "SELECT usergroup_id::text, org_id::text, org_role_id::text FROM usergroups_orgs_roles",
		func(rows pgx.Rows) error {
			var g, org, role string
			if err := rows.Scan(&g, &org, &role); err != nil {
				return err
			}
			row := keyCols("usergroup_id", g, "org_id", org)
			if _, ok := groups[g]; !ok {
				r.orphan("usergroups_orgs_roles", row, []string{g}, "its group %s does not exist", g)
				return nil
			}
			if _, ok := r.orgName[org]; !ok {
				r.orphan("usergroups_orgs_roles", row, []string{org}, "its org %s does not exist", org)
				return nil
			}
			ours, err := r.orgRoleByID(role)
			if err != nil {
				return fmt.Errorf("group %s in org %s: %w", groups[g].name, r.orgName[org], err)
			}
			for _, uid := range members[g] {
				grantOrg(users[uid], r.orgName[org], ours)
			}
			return nil
		})
	if err != nil {
		return err
	}

	// Project roles, direct and through groups, with the resources Rill limits each to.
	var bs bindings
	for _, t := range []struct{ table, who string }{{"users_projects_roles", "user_id"}, {"usergroups_projects_roles", "usergroup_id"}} {
		err = r.query(ctx, t.table, "SELECT "+t.who+"::text, project_id::text, project_role_id::text, "+r.resourcesColumns(t.table)+" FROM "+t.table,
			func(rows pgx.Rows) error {
				var who, pid, role, resources string
				var limited bool
				if err := rows.Scan(&who, &pid, &role, &limited, &resources); err != nil {
					return err
				}
				row := keyCols(t.who, who, "project_id", pid)
				if t.who == "user_id" && users[who] == nil {
					r.orphan(t.table, row, nil, "its user %s does not exist", who)
					return nil
				}
				if _, ok := groups[who]; t.who != "user_id" && !ok {
					r.orphan(t.table, row, []string{who}, "its group %s does not exist", who)
					return nil
				}
				if _, ok := r.projects[pid]; !ok {
					r.orphan(t.table, row, []string{pid}, "its project %s does not exist", pid)
					return nil
				}
				p := r.projects[pid]
				ours, err := r.projectRoleByID(role)
				if err != nil {
					return fmt.Errorf("%s %s on project %s/%s: %w", t.who, who, p.org, p.name, err)
				}
				g := policy.Grant{Restrict: limited}
				if g.Resources, err = parseResources(resources); err != nil {
					return fmt.Errorf("%s %s on project %s/%s: %w", t.who, who, p.org, p.name, err)
				}
				key := store.ProjectKey(p.org, p.name)
				if t.who == "user_id" {
					grantProject(users[who], key, ours)
					bs.add(who, key, "", g)
					return nil
				}
				for _, uid := range members[who] {
					grantProject(users[uid], key, ours)
					bs.add(uid, key, groups[who].name, g)
				}
				return nil
			})
		if err != nil {
			return err
		}
	}
	r.snap.RestrictedBindings = bs.restrict(users)
	for _, id := range order {
		u := users[id]
		for org, s := range u.Orgs {
			slices.Sort(s.Groups)
			u.Orgs[org] = s
		}
		r.snap.Users = append(r.snap.Users, *u)
	}
	return nil
}

// slice is u's slice for org, making u.Orgs if need be.
func slice(u *store.User, org string) store.UserOrg {
	if u.Orgs == nil {
		u.Orgs = map[string]store.UserOrg{}
	}
	return u.Orgs[org]
}

// higher is the higher of two roles ("" is none).
func higher(a, b policy.Role) policy.Role {
	if a.AtMost(b) {
		return b
	}
	return a
}

// object decodes a JSONB object; Rill's attribute columns default to '{}'.
func object(raw []byte) (map[string]any, error) {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}
