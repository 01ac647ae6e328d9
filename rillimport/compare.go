package rillimport

import (
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/rill-authd/rill-authd/store"
)

// sameRuntime reports whether a stored project already has the prod deployment Rill has.
func sameRuntime(a, b store.Project) bool {
	return a.ID == b.ID && a.RuntimeHost == b.RuntimeHost && a.InstanceID == b.InstanceID && a.RuntimeAudience == b.RuntimeAudience &&
		a.ProdBranch == b.ProdBranch
}

// keepLocalOrgs returns u (as Rill has it) with what old holds in orgs Rill does not have:
// Rill decides a user's roles, groups and attributes in its own orgs only, so an org created in
// rill-authd keeps what it gave an imported user.
func keepLocalOrgs(u, old store.User, rillOrgs map[string]bool) store.User {
	u.OrgRoles, u.ProjectRoles, u.Orgs = maps.Clone(u.OrgRoles), maps.Clone(u.ProjectRoles), maps.Clone(u.Orgs)
	u.Restricted = maps.Clone(u.Restricted)
	for org, r := range old.OrgRoles {
		if !rillOrgs[org] {
			u.OrgRoles = put(u.OrgRoles, org, r)
		}
	}
	for key, r := range old.ProjectRoles {
		if org, _, _ := strings.Cut(key, "/"); !rillOrgs[org] {
			u.ProjectRoles = put(u.ProjectRoles, key, r)
			if x, ok := old.Restricted[key]; ok {
				u.Restricted = put(u.Restricted, key, x)
			}
		}
	}
	for org, s := range old.Orgs {
		if !rillOrgs[org] {
			u.Orgs = put(u.Orgs, org, s)
		}
	}
	return u
}

func put[V any](m map[string]V, k string, v V) map[string]V {
	if m == nil {
		m = map[string]V{}
	}
	m[k] = v
	return m
}

// sameUser compares what an import sets on a user; times are Rill's and not compared.
func sameUser(a, b store.User) bool {
	return a.Email == b.Email && a.DisplayName == b.DisplayName && a.Superuser == b.Superuser && a.CreatedBy == b.CreatedBy &&
		sameMap(a.OrgRoles, b.OrgRoles) && sameMap(a.ProjectRoles, b.ProjectRoles) &&
		maps.EqualFunc(a.Restricted, b.Restricted, func(x, y store.Restricted) bool { return slices.Equal(x.Resources, y.Resources) }) &&
		maps.EqualFunc(a.Orgs, b.Orgs, func(x, y store.UserOrg) bool {
			return slices.Equal(x.Groups, y.Groups) && sameAny(x.Attributes, y.Attributes)
		})
}

func sameService(a, b store.Service) bool {
	return a.Name == b.Name && a.Org == b.Org && a.OrgRole == b.OrgRole && a.CreatedBy == b.CreatedBy &&
		sameMap(a.ProjectRoles, b.ProjectRoles) && sameAny(a.Attributes, b.Attributes)
}

// sameMap treats nil and empty alike, as a stored record does after a round trip.
func sameMap[V comparable](a, b map[string]V) bool { return maps.Equal(a, b) }

func sameAny(a, b map[string]any) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return reflect.DeepEqual(a, b)
}
