package policy

import (
	"encoding/json"
	"slices"

	"github.com/rill-authd/rill-authd/token"
)

// Restriction limits a user's role on one project to some resources (none: to nothing), as
// Rill's project role bindings do (rilldata/rill admin/database/postgres/migrations/0089.sql:
// resources, restrict_resources on users_projects_roles and usergroups_projects_roles).
//
// The check's own decision does not change for a restricted principal (a project role is a
// project role); the runtime enforces it, from the sec claim of the runtime JWTs minted for the
// principal (SecurityRules).
type Restriction struct {
	Resources []token.ResourceName
}

// Grant is one project role binding of a user: their own, or one of a group they are in.
type Grant struct {
	Restrict  bool
	Resources []token.ResourceName
}

// MergeGrants is Rill's getResourceRestrictionsForUser (admin/server/deployment.go): with no
// binding the user is not restricted (an org admin without project rows); otherwise restricted
// only if every binding is, to the union of their resources, in order, each once.
func MergeGrants(grants []Grant) (restricted bool, resources []token.ResourceName) {
	restricted = len(grants) > 0
	for _, g := range grants {
		restricted = restricted && g.Restrict
		for _, r := range g.Resources {
			if !slices.Contains(resources, r) {
				resources = append(resources, r)
			}
		}
	}
	if !restricted {
		return false, nil
	}
	return true, resources
}

// RulesFromResources is Rill's securityRulesFromResources (admin/server/deployment.go): nothing
// for an unrestricted principal, deny-all for one restricted to no resources, else one
// transitive access per resource (a resource without a kind or a name is skipped, so a list of
// only such resources gives no rules, as in Rill).
func RulesFromResources(restricted bool, resources []token.ResourceName) []token.SecurityRule {
	if !restricted {
		return nil
	}
	if len(resources) == 0 {
		return []token.SecurityRule{token.DenyAll()}
	}
	rules := make([]token.SecurityRule, 0, len(resources))
	for _, r := range resources {
		if r.Kind == "" || r.Name == "" {
			continue
		}
		rules = append(rules, token.Transitive(r))
	}
	return rules
}

// SecurityRules are the rules Rill signs into the runtime JWTs of p on org/project for its
// restricted project role, if any: only a user with a role on the project itself can be
// restricted (an org admin without one is not).
func (p *Principal) SecurityRules(org, project string) []token.SecurityRule {
	if p == nil || len(p.Restrictions) == 0 || project == "" {
		return nil
	}
	key := org + "/" + project
	r, ok := p.Restrictions[key]
	if !ok || p.ProjectRoles[key] == "" {
		return nil
	}
	return RulesFromResources(true, r.Resources)
}

// Sec is the sec claim of the runtime JWTs minted for p on org/project: an ephemeral token's own
// rules, else those of p's restricted role there (nil: no claim).
func (p *Principal) Sec(org, project string) ([]json.RawMessage, error) {
	if p == nil {
		return nil, nil
	}
	if p.Security != nil {
		return p.Security, nil
	}
	return token.EncodeSec(p.SecurityRules(org, project))
}

// ResourceLimit says whether p's role on org/project is limited to some resources, and to which
// (none: to nothing). Who is limited may hand on no more than their limit: not lift it on
// themselves or widen anyone's past it (adminapi's resources endpoint), nor share what lies
// outside it in a public URL.
func (p *Principal) ResourceLimit(org, project string) (resources []token.ResourceName, limited bool) {
	if p == nil || len(p.Restrictions) == 0 || project == "" {
		return nil, false
	}
	key := org + "/" + project
	r, ok := p.Restrictions[key]
	if !ok || p.ProjectRoles[key] == "" {
		return nil, false
	}
	return r.Resources, true
}

// OutsideLimit returns the first of asked that limit does not hold (ok false when every one is
// within it). Resources are compared by kind and name, as the runtime matches them.
func OutsideLimit(limit, asked []token.ResourceName) (outside token.ResourceName, ok bool) {
	for _, r := range asked {
		if !slices.Contains(limit, r) {
			return r, true
		}
	}
	return token.ResourceName{}, false
}
