package store

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"strings"

	"github.com/rill-authd/rill-authd/token"
)

// Restricted is a user's project role limited to some resources, as Rill's project role
// bindings can be (migration 0089: restrict_resources, resources). Present is restricted:
// with no resources the user may open none (the runtime JWT carries Rill's deny-all), else one
// transitive access per resource. An import sets it as Rill's rule gives it over the user's own
// binding and those of their groups (restricted only if every one is; the union of resources).
// It applies only while the user holds a role on that project; it goes with the role.
type Restricted struct {
	Resources []token.ResourceName `json:"resources"`
}

// restrictedIn is a copy of u's restrictions on org's projects.
func (u *User) restrictedIn(org string) map[string]Restricted {
	var out map[string]Restricted
	for k, r := range u.Restricted {
		if strings.HasPrefix(k, org+"/") {
			if out == nil {
				out = map[string]Restricted{}
			}
			out[k] = Restricted{Resources: slices.Clone(r.Resources)}
		}
	}
	return out
}

// DropStaleRestrictions removes the restrictions of projects u holds no role on, so that a
// role granted again later starts unrestricted, as a new binding in Rill does.
func (u *User) DropStaleRestrictions() {
	maps.DeleteFunc(u.Restricted, func(k string, _ Restricted) bool { return u.ProjectRoles[k] == "" })
	if len(u.Restricted) == 0 {
		u.Restricted = nil
	}
}

// ExternalSubject is the sub of a runtime JWT for an external user (external_user_id) of p:
// Rill's subjectForExternalUser (admin/server/deployment.go), "ext_" and the hex SHA-256 of the
// id followed by the project's id. A project made before projects had ids uses "org/name".
func (p Project) ExternalSubject(externalUserID string) string {
	id := p.ID
	if id == "" {
		id = p.Org + "/" + p.Name
	}
	sum := sha256.Sum256([]byte(externalUserID + id))
	return "ext_" + hex.EncodeToString(sum[:])
}
