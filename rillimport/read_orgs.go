package rillimport

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
)

// orgs reads the orgs. Rill compares org names case-insensitively (orgs_name_idx is on
// lower(name)); ours are lower case slugs.
func (r *reader) orgs(ctx context.Context) error {
	r.orgName = map[string]string{}
	idOf := map[string]string{} // our name -> the Rill org id that has it
	spelled := map[string]string{}
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
		if first, taken := idOf[ours]; taken {
			// Rill's orgs_name_idx is on lower(name): this database lacks it.
			r.setAside(Defect{Table: "orgs", ID: id, Problem: fmt.Sprintf("name %q is %q once lower-cased, as org %s (%q) is; rename one in Rill",
				name, ours, first, spelled[ours])}, id)
			return nil
		}
		idOf[ours], spelled[ours] = id, name
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
		org, ok := r.orgName[orgID]
		if !ok {
			r.orphan("projects", id, []string{orgID}, "its org %s does not exist", orgID)
			r.gone[id] = true
			return nil
		}
		r.projects[id] = project{org, name}
		p := store.Project{ID: id, Org: org, Name: name, CreatedAt: created.UTC(), ProdBranch: prodBranch}
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
