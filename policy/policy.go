// Package policy turns a principal's roles into permissions and the attributes that Rill's
// security policies see. It is pure: no I/O, no clocks, no globals that change.
package policy

import (
	"encoding/json"
	"fmt"
	"math/bits"
	"strings"

	"github.com/rill-authd/rill-authd/token"
)

// Perm is a set of permissions, one bit each, so checks are a mask test.
type Perm uint64

// Org permissions.
const (
	ReadOrg Perm = 1 << iota
	ManageOrg
	ReadProjects
	CreateProjects
	ManageProjects
	ReadOrgMembers
	ManageOrgMembers
	ManageOrgAdmins
	orgEnd
)

// Project permissions.
const (
	ReadProject Perm = orgEnd << iota
	ManageProject
	ReadProd
	ReadProdStatus
	ManageProd
	ReadDev
	ReadDevStatus
	ManageDev
	ReadProvisionerResources
	ManageProvisionerResources
	ReadProjectMembers
	ManageProjectMembers
	ManageProjectAdmins
	CreateMagicAuthTokens
	ManageMagicAuthTokens
	CreateReports
	ManageReports
	CreateAlerts
	ManageAlerts
	CreateBookmarks
	ManageBookmarks
	projectEnd
)

const (
	allOrg     = orgEnd - 1
	allProject = (projectEnd - 1) &^ allOrg
)

var names = [...]string{
	"read_org", "manage_org", "read_projects", "create_projects", "manage_projects",
	"read_org_members", "manage_org_members", "manage_org_admins",
	"read_project", "manage_project", "read_prod", "read_prod_status", "manage_prod", "read_dev",
	"read_dev_status", "manage_dev", "read_provisioner_resources", "manage_provisioner_resources",
	"read_project_members", "manage_project_members", "manage_project_admins",
	"create_magic_auth_tokens", "manage_magic_auth_tokens", "create_reports", "manage_reports",
	"create_alerts", "manage_alerts", "create_bookmarks", "manage_bookmarks",
}

var byName = func() map[string]Perm {
	m := make(map[string]Perm, len(names))
	for i, n := range names {
		m[n] = 1 << i
	}
	return m
}()

// ParsePerm parses one permission name, such as "read_prod".
func ParsePerm(name string) (Perm, error) {
	if p, ok := byName[name]; ok {
		return p, nil
	}
	return 0, fmt.Errorf("unknown permission %q", name)
}

// Names lists the permissions in p in a fixed order.
func (p Perm) Names() []string {
	out := make([]string, 0, bits.OnesCount64(uint64(p)))
	for i, n := range names {
		if p&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

// String is the comma list sent in x-rill-permissions.
func (p Perm) String() string { return strings.Join(p.Names(), ",") }

// Project reports whether p includes any project-level permission (as opposed to org-level).
func (p Perm) Project() bool { return p&allProject != 0 }

// Has reports whether p includes every permission in need.
func (p Perm) Has(need Perm) bool { return p&need == need }

// Role is an org or a project role. The empty Role is none.
type Role string

// Org and project roles (guest is an org role only).
const (
	Admin  Role = "admin"
	Editor Role = "editor"
	Viewer Role = "viewer"
	Guest  Role = "guest"
)

var orgRoles = map[Role]Perm{
	Admin:  allOrg,
	Editor: ReadOrg | ReadProjects | CreateProjects | ReadOrgMembers | ManageOrgMembers,
	Viewer: ReadOrg | ReadProjects,
	Guest:  ReadOrg | ReadProjects,
}

var projectRoles = map[Role]Perm{
	Admin: allProject,
	Editor: allProject &^ (ManageProject | ManageProd | ManageProvisionerResources |
		ManageProjectAdmins | ManageReports | ManageAlerts | ManageBookmarks),
	Viewer: ReadProject | ReadProd | ReadDev | CreateReports | CreateAlerts | CreateBookmarks,
}

// ValidOrgRole and ValidProjectRole check role names from user input.
func ValidOrgRole(r Role) bool     { _, ok := orgRoles[r]; return ok }
func ValidProjectRole(r Role) bool { _, ok := projectRoles[r]; return ok }

// OrgPerms returns the org permissions of an org role.
func (r Role) OrgPerms() Perm { return orgRoles[r] }

// ProjectPerms returns the project permissions of a project role.
func (r Role) ProjectPerms() Perm { return projectRoles[r] }

var rank = map[Role]int{"": 0, Guest: 1, Viewer: 2, Editor: 3, Admin: 4}

// AtMost reports whether r is no higher than ceiling, so no one grants more than they hold.
func (r Role) AtMost(ceiling Role) bool { return rank[r] <= rank[ceiling] }

// Kind is what sort of principal a credential resolved to. Its values are also the
// x-rill-auth-kind header's and the metrics' kind label.
type Kind string

// Principal kinds.
const (
	KindUser      Kind = "user"
	KindService   Kind = "service"
	KindEphemeral Kind = "ephemeral"
)

// KindOf is the principal kind of a token kind's owner.
func KindOf(k token.Kind) Kind {
	switch k {
	case token.Service:
		return KindService
	case token.Magic:
		return KindMagic
	}
	return KindUser
}

// Principal is who is calling, with the roles they hold. ProjectRoles is keyed by
// "org/project"; a service has entries for its own org only.
type Principal struct {
	Kind         Kind
	ID           string
	Subject      string // user email or service name
	Name         string // display name
	Email        string
	Superuser    bool
	OrgRoles     map[string]Role
	ProjectRoles map[string]Role
	// Orgs holds a user's groups and custom attributes per org, each set by that org: what a
	// check on an org sees is that org's entry only.
	Orgs map[string]OrgData
	// Attributes are the custom attributes of a service or an ephemeral token, which act in one
	// org only. A user's are in Orgs.
	Attributes map[string]any
	// Limit, when non-zero, caps permissions (ephemeral tokens are at most viewer reads).
	Limit Perm
	// Issuer is the external issuer of a JWT accepted from a trusted issuer ("" otherwise).
	Issuer string
	// SubjectID is who the principal acts for in the sub of the runtime JWTs minted for it
	// (the runtime's user id): a user's or service's UUID, or an ephemeral JWT's own sub ("" when
	// it names no one). Never a name or an email.
	SubjectID string
	// Restrictions limits some of a user's project roles (keyed "org/project") to resources:
	// see SecurityRules.
	Restrictions map[string]Restriction
	// Security is the sec claim of an ephemeral token, as its issuer signed it: runtime JWTs
	// minted for it carry the same rules.
	Security []json.RawMessage
}

// OrgData is what one org set for a user.
type OrgData struct {
	Groups     []string
	Attributes map[string]any
}

// Access is what a principal holds on one org/project.
type Access struct {
	Org         string // the org it is about: attributes are that org's
	OrgRole     Role
	ProjectRole Role // admin for org admins, who hold every project permission
	Perms       Perm
}

// AccessTo computes the principal's roles and permissions on org/project ("" for no project).
func (p *Principal) AccessTo(org, project string) Access {
	a := Access{Org: org}
	if p.Superuser {
		a.OrgRole, a.ProjectRole, a.Perms = Admin, Admin, allOrg|allProject
		if project == "" {
			a.ProjectRole, a.Perms = "", allOrg
		}
		return a
	}
	a.OrgRole = p.OrgRoles[org]
	a.Perms = orgRoles[a.OrgRole]
	if project != "" {
		a.ProjectRole = p.ProjectRoles[org+"/"+project]
		if a.OrgRole == Admin {
			a.ProjectRole = Admin
		}
		a.Perms |= projectRoles[a.ProjectRole]
	}
	if p.Limit != 0 {
		a.Perms &= p.Limit
	}
	return a
}

// Reserved attribute names: identity facts that no custom source may override.
var Reserved = []string{"email", "domain", "name", "admin", "groups"}

// IsReserved reports whether key is a reserved attribute name.
func IsReserved(key string) bool {
	for _, r := range Reserved {
		if r == key {
			return true
		}
	}
	return false
}

// In is the groups and custom attributes the principal has in org: a user's as org set them,
// a service's or ephemeral token's own (they hold roles in their one org only).
func (p *Principal) In(org string) OrgData {
	if p.Kind == KindUser {
		return p.Orgs[org]
	}
	return OrgData{Attributes: p.Attributes}
}

// AttributesFor assembles what security policies see for the principal on a project with the
// given access: the standard attributes of its kind, then its custom attributes in a.Org, which
// never replace a standard one.
func (p *Principal) AttributesFor(a Access) map[string]any {
	in := p.In(a.Org)
	out := make(map[string]any, len(in.Attributes)+5)
	switch p.Kind {
	case KindUser:
		out["name"] = p.Name
		out["email"] = p.Email
		out["domain"] = Domain(p.Email)
		groups := in.Groups
		if groups == nil {
			groups = []string{}
		}
		out["groups"] = groups
		out["admin"] = a.Perms.Has(ManageProject)
	case KindService:
		out["name"] = p.Subject
		out["admin"] = a.Perms.Has(ManageProject)
	}
	for k, v := range in.Attributes {
		if _, set := out[k]; !set {
			out[k] = v
		}
	}
	return out
}

// Domain is the part of an email after the last @ ("" if none).
func Domain(email string) string {
	if i := strings.LastIndexByte(email, '@'); i >= 0 {
		return email[i+1:]
	}
	return ""
}
