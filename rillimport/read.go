// Package rillimport reads a Rill admin database (PostgreSQL, as rilldata/rill's
// admin/database/postgres migrations shape it) into rill-authd's model, and brings a store in
// line with it: orgs, projects with their prod deployment's runtime, users with every role they
// hold directly or through groups, services with their attributes and roles, and the live user
// and service tokens, under Rill's own UUIDs and secret hashes.
package rillimport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// CreatedBy marks the services, users and tokens an import created, so that a later import
// with --prune revokes only what came from Rill.
const CreatedBy = "rill-import"

// Snapshot is what Read found in a Rill database, already in our model.
type Snapshot struct {
	// Source names the database (host, port, name; never credentials).
	Source string
	Orgs   []store.Org
	// Projects carry their prod deployment's runtime host, instance, audience and branch.
	Projects []store.Project
	Users    []store.User
	Services []store.Service
	Tokens   []store.Token
	// ExpiredTokens counts the user and service tokens left out because they had expired.
	ExpiredTokens int
	// RestrictedBindings counts project role bindings limited to some resources (0089.sql's
	// restrict_resources), left out: we cannot limit a role to resources, and granting the
	// whole project would grant more than Rill does.
	RestrictedBindings int
}

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

// Read reads everything the import needs from the Rill admin database at url, in one
// read-only REPEATABLE READ transaction, so every part comes from one moment.
func Read(ctx context.Context, url string) (*Snapshot, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		// Not wrapped: pgx's parse error may quote the URL, password included.
		return nil, errors.New("the Rill database URL does not parse (postgres://user:password@host:port/db?sslmode=...)")
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 15 * time.Second
	}
	cfg.RuntimeParams["application_name"] = "rill-authd import-rill"
	src := fmt.Sprintf("%s/%s", net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port)), cfg.Database)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to the Rill database at %s: %w", src, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("the Rill database at %s: begin: %w", src, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // read only: nothing to commit
	r := &reader{tx: tx, snap: &Snapshot{Source: src}}
	if err := r.read(ctx); err != nil {
		return nil, fmt.Errorf("the Rill database at %s: %w", src, err)
	}
	return r.snap, nil
}

type reader struct {
	tx   pgx.Tx
	snap *Snapshot
	cols map[string]bool // "table.column" present

	orgName     map[string]string // org id -> our org name
	projects    map[string]project
	orgRole     map[string]string // role id -> Rill role name
	projectRole map[string]string
}

type project struct{ org, name string }

func (r *reader) read(ctx context.Context) error {
	if err := r.checkSchema(ctx); err != nil {
		return err
	}
	steps := []func(context.Context) error{r.roles, r.orgs, r.projectsAndRuntime, r.users, r.services, r.tokens}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

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

// query runs sql and calls scan for each row.
func (r *reader) query(ctx context.Context, what, sql string, scan func(pgx.Rows) error) error {
	rows, err := r.tx.Query(ctx, sql)
	if err != nil {
		return fmt.Errorf("read %s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return fmt.Errorf("read %s: %w", what, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read %s: %w", what, err)
	}
	return nil
}

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

// orgs reads the orgs. Rill compares org names case-insensitively (orgs_name_idx is on
// lower(name)); ours are lower case slugs.
func (r *reader) orgs(ctx context.Context) error {
	r.orgName = map[string]string{}
	var bad []string
	err := r.query(ctx, "orgs", "SELECT id::text, name, created_on FROM orgs ORDER BY lower(name)", func(rows pgx.Rows) error {
		var id, name string
		var created time.Time
		if err := rows.Scan(&id, &name, &created); err != nil {
			return err
		}
		ours := strings.ToLower(name)
		if !policy.ValidOrgName(ours) {
			bad = append(bad, fmt.Sprintf("%q (id %s)", name, id))
			return nil
		}
		r.orgName[id] = ours
		r.snap.Orgs = append(r.snap.Orgs, store.Org{Name: ours, CreatedAt: created.UTC()})
		return nil
	})
	if err != nil {
		return err
	}
	if len(bad) > 0 {
		return fmt.Errorf("org names rill-authd cannot hold (%s): %s", policy.OrgNameRule, strings.Join(bad, ", "))
	}
	return nil
}

// projectsAndRuntime reads the projects and their prod deployment: the one the project's
// primary_deployment_id (prod_deployment_id before 0090.sql) points at, as Rill's
// admin/deployments.go creates it with the provisioner's host and audience.
func (r *reader) projectsAndRuntime(ctx context.Context) error {
	r.projects = map[string]project{}
	branch, depl := r.column("projects", "primary_branch|prod_branch"), r.column("projects", "primary_deployment_id|prod_deployment_id")
	sql := `SELECT p.id::text, p.org_id::text, p.name, p.created_on, COALESCE(p.` + branch + `, ''),
			d.branch, d.runtime_host, d.runtime_instance_id, d.runtime_audience
		FROM projects p LEFT JOIN deployments d ON d.id = p.` + depl + `
		ORDER BY p.org_id, lower(p.name)`
	var bad []string
	err := r.query(ctx, "projects", sql, func(rows pgx.Rows) error {
		var id, orgID, name, prodBranch string
		var created time.Time
		var dBranch, host, instance, audience *string
		if err := rows.Scan(&id, &orgID, &name, &created, &prodBranch, &dBranch, &host, &instance, &audience); err != nil {
			return err
		}
		if !policy.ValidProjectName(name) {
			bad = append(bad, fmt.Sprintf("%q (id %s)", name, id))
			return nil
		}
		org := r.orgName[orgID]
		r.projects[id] = project{org, name}
		p := store.Project{Org: org, Name: name, CreatedAt: created.UTC(), ProdBranch: prodBranch}
		if host != nil { // a hibernated project has no prod deployment
			p.RuntimeHost, p.InstanceID, p.RuntimeAudience, p.ProdBranch = *host, *instance, *audience, *dBranch
			if p.RuntimeAudience == "" {
				// The runtime's audience is its own URL (RILL_RUNTIME_AUTH_AUDIENCE_URL), which
				// a static provisioner without audience_url leaves as the host.
				p.RuntimeAudience = p.RuntimeHost
			}
		}
		r.snap.Projects = append(r.snap.Projects, p)
		return nil
	})
	if err != nil {
		return err
	}
	if len(bad) > 0 {
		return fmt.Errorf("project names rill-authd cannot hold (%s): %s", policy.ProjectNameRule, strings.Join(bad, ", "))
	}
	return nil
}

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

	// Project roles, direct and through groups, without those limited to some resources.
	for _, t := range []struct{ table, who string }{{"users_projects_roles", "user_id"}, {"usergroups_projects_roles", "usergroup_id"}} {
		restricted := "false"
		if r.cols[t.table+".restrict_resources"] {
			restricted = "restrict_resources"
		}
		err = r.query(ctx, t.table, "SELECT "+t.who+"::text, project_id::text, project_role_id::text, "+restricted+" FROM "+t.table,
			func(rows pgx.Rows) error {
				var who, pid, role string
				var limited bool
				if err := rows.Scan(&who, &pid, &role, &limited); err != nil {
					return err
				}
				if limited {
					r.snap.RestrictedBindings++
					return nil
				}
				p := r.projects[pid]
				ours, err := r.projectRoleByID(role)
				if err != nil {
					return fmt.Errorf("%s %s on project %s/%s: %w", t.who, who, p.org, p.name, err)
				}
				if t.who == "user_id" {
					grantProject(users[who], store.ProjectKey(p.org, p.name), ours)
					return nil
				}
				for _, uid := range members[who] {
					grantProject(users[uid], store.ProjectKey(p.org, p.name), ours)
				}
				return nil
			})
		if err != nil {
			return err
		}
	}
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

// tokens reads the live user and service tokens. A user token acts as its representing user
// when it has one (userAuthToken.OwnerID in admin/auth_token.go), so that user owns it here.
// Expired ones are left out: Rill refuses them (validateAuthTokenUncached) and deletes them
// later (DeleteExpiredUserAuthTokens).
func (r *reader) tokens(ctx context.Context) error {
	for _, t := range []struct {
		kind  token.Kind
		table string
		sql   string
	}{
		{token.User, "user_auth_tokens", `SELECT id::text, secret_hash, COALESCE(representing_user_id, user_id)::text,
			COALESCE(display_name, ''), created_on, expires_on FROM user_auth_tokens
			WHERE expires_on IS NULL OR expires_on > now() ORDER BY created_on, id`},
		{token.Service, "service_auth_tokens", `SELECT id::text, secret_hash, service_id::text, '', created_on, expires_on
			FROM service_auth_tokens WHERE expires_on IS NULL OR expires_on > now() ORDER BY created_on, id`},
	} {
		err := r.query(ctx, t.table, t.sql, func(rows pgx.Rows) error {
			var rec store.Token
			var id string
			var hash []byte
			var expires *time.Time
			if err := rows.Scan(&id, &hash, &rec.OwnerID, &rec.DisplayName, &rec.CreatedAt, &expires); err != nil {
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
