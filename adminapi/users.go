package adminapi

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// checkRoles validates role names and that the project exists.
func (a *API) checkRoles(ctx context.Context, org string, orgRole policy.Role, project string, projectRole policy.Role) error {
	if orgRole != "" && !policy.ValidOrgRole(orgRole) {
		return errf(http.StatusBadRequest, "org_role %q is invalid: use admin, editor, viewer or guest", orgRole)
	}
	if projectRole != "" && !policy.ValidProjectRole(projectRole) {
		return errf(http.StatusBadRequest, "project_role %q is invalid: use admin, editor or viewer", projectRole)
	}
	if (project == "") != (projectRole == "") {
		return errf(http.StatusBadRequest, "project and project_role go together: give both or neither")
	}
	if project != "" {
		if _, err := a.st.GetProject(ctx, org, project); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return errf(http.StatusNotFound, "project %q not found in org %q", project, org)
			}
			return err
		}
	}
	return nil
}

// checkAttributes refuses attribute names that could be mistaken for identity facts.
func checkAttributes(attrs map[string]any) error {
	for k := range attrs {
		if k == "" {
			return errf(http.StatusBadRequest, "attributes: an attribute name is empty")
		}
	}
	return nil
}

func (a *API) createUser(w http.ResponseWriter, r *http.Request, c *caller) error {
	var req apiv1.UserRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	orgRole, projectRole := policy.Role(req.OrgRole), policy.Role(req.ProjectRole)
	target := "user:" + req.Email
	c.aim(target)
	if req.Org == "" {
		if !c.p.Superuser {
			err := errf(http.StatusForbidden, "only a superuser may create a user outside an org; give an org you manage")
			return err
		}
		if orgRole != "" || req.Project != "" {
			return errf(http.StatusBadRequest, "org is required with org_role or project")
		}
	} else {
		if err := c.need(req.Org, "", policy.ManageOrgMembers); err != nil {
			return err
		}
		if err := c.grantable(req.Org, orgRole, req.Project, projectRole); err != nil {
			return err
		}
		if _, err := a.st.GetOrg(r.Context(), req.Org); errors.Is(err, store.ErrNotFound) {
			return errf(http.StatusNotFound, "org %q not found", req.Org)
		}
	}
	if !strings.Contains(req.Email, "@") || strings.ContainsAny(req.Email, " \t\n/") || len(req.Email) > 254 {
		return errf(http.StatusBadRequest, "email %q is not an email address", req.Email)
	}
	if err := a.checkRoles(r.Context(), req.Org, orgRole, req.Project, projectRole); err != nil {
		return err
	}
	if err := checkAttributes(req.Attributes); err != nil {
		return err
	}
	if req.Org == "" && (len(req.Groups) > 0 || len(req.Attributes) > 0) {
		return errf(http.StatusBadRequest, "groups and attributes are set per org: give the org they belong to")
	}
	now := a.now().UTC()
	u := store.User{ID: token.NewID(), Email: strings.ToLower(req.Email), DisplayName: req.DisplayName, CreatedAt: now, UpdatedAt: now}
	joinOrg(&u, &req)
	err := a.st.CreateUser(r.Context(), u)
	if errors.Is(err, store.ErrConflict) && req.Org != "" {
		// As in Rill, an org adds someone who already has an account by their email. It writes
		// and sees its own slice only: the rest of the record is other orgs'.
		u, err = a.addToOrg(r.Context(), &req)
	}
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			return errf(http.StatusConflict, "user %q already exists; use set-role to give them roles", u.Email)
		}
		return err
	}
	return a.audited(w, r, c, "user.create", "user:"+u.Email, http.StatusCreated, userView(c, u, req.Org))
}

// addToOrg adds the existing user req names to req.Org. Their identity (display name
// included) is theirs and stays as it is.
func (a *API) addToOrg(ctx context.Context, req *apiv1.UserRequest) (store.User, error) {
	old, err := a.userByEmail(ctx, req.Email)
	if err != nil {
		return old, err
	}
	return a.st.UpdateUser(ctx, old.ID, func(u *store.User) error {
		if u.Member(req.Org) {
			return errf(http.StatusConflict, "user %q is already a member of org %q; use set-role to change their roles", u.Email, req.Org)
		}
		joinOrg(u, req)
		u.UpdatedAt = a.now().UTC()
		return nil
	})
}

// joinOrg makes u a member of req.Org (if any) with the request's roles, as guest when it gives
// none, and sets that org's groups and attributes.
func joinOrg(u *store.User, req *apiv1.UserRequest) {
	if req.Org == "" {
		return
	}
	if u.OrgRoles == nil {
		u.OrgRoles = map[string]policy.Role{}
	}
	if u.ProjectRoles == nil {
		u.ProjectRoles = map[string]policy.Role{}
	}
	if req.OrgRole != "" {
		u.OrgRoles[req.Org] = policy.Role(req.OrgRole)
	}
	if req.Project != "" {
		u.ProjectRoles[store.ProjectKey(req.Org, req.Project)] = policy.Role(req.ProjectRole)
	}
	if u.OrgRoles[req.Org] == "" { // a member can see the org (and a project's member its org)
		u.OrgRoles[req.Org] = policy.Guest
	}
	if len(req.Groups) > 0 || len(req.Attributes) > 0 {
		if u.Orgs == nil {
			u.Orgs = map[string]store.UserOrg{}
		}
		u.Orgs[req.Org] = store.UserOrg{Groups: req.Groups, Attributes: req.Attributes}
	}
}

// userView is u as c may see it in a response about org: a superuser sees every org's slice,
// anyone else org's only (nothing of any org when there is none).
func userView(c *caller, u store.User, org string) apiv1.User {
	if !c.p.Superuser {
		u = u.Only(org)
	}
	return wireUser(u, org)
}

func (a *API) listUsers(w http.ResponseWriter, r *http.Request, c *caller) error {
	org := r.URL.Query().Get("org")
	if org == "" {
		if !c.p.Superuser {
			return errf(http.StatusForbidden, "only a superuser may list every user; give an org")
		}
	} else if err := c.need(org, "", NeedMembers); err != nil {
		return err
	}
	all, err := a.st.ListUsers(r.Context())
	if err != nil {
		return err
	}
	out := []apiv1.User{}
	for _, u := range all {
		if org == "" || u.Member(org) {
			out = append(out, userView(c, u, org))
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) userByEmail(ctx context.Context, email string) (store.User, error) {
	u, err := a.st.GetUserByEmail(ctx, strings.ToLower(email))
	if errors.Is(err, store.ErrNotFound) {
		return u, errf(http.StatusNotFound, "user %q not found", email)
	}
	return u, err
}

func (a *API) setUserRole(w http.ResponseWriter, r *http.Request, c *caller) error {
	var req apiv1.RoleRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	orgRole, projectRole := policy.Role(req.OrgRole), policy.Role(req.ProjectRole)
	email := r.PathValue("email")
	target := "user:" + email
	c.aim(target)
	if req.Org == "" {
		return errf(http.StatusBadRequest, "org is required")
	}
	if err := c.need(req.Org, "", policy.ManageOrgMembers); err != nil {
		return err
	}
	if err := roleChange(&req); err != nil {
		return err
	}
	if err := c.grantable(req.Org, orgRole, req.Project, projectRole); err != nil {
		return err
	}
	if err := a.checkRoles(r.Context(), req.Org, orgRole, req.Project, projectRole); err != nil && !(req.Remove && req.Project != "") {
		return err
	}
	u, err := a.userByEmail(r.Context(), email)
	if err != nil {
		return err
	}
	if err := c.mayChangeProjectRole(u, req); err != nil {
		return err
	}
	// Demoting or removing an org admin takes manage_org_admins too.
	if u.OrgRoles[req.Org] == policy.Admin && !c.p.AccessTo(req.Org, "").Perms.Has(policy.ManageOrgAdmins) {
		err := errf(http.StatusForbidden, "%s cannot change the role of an org admin", c.actor)
		return err
	}
	u, err = a.st.UpdateUser(r.Context(), u.ID, func(u *store.User) error {
		if u.OrgRoles == nil {
			u.OrgRoles = map[string]policy.Role{}
		}
		if u.ProjectRoles == nil {
			u.ProjectRoles = map[string]policy.Role{}
		}
		switch {
		case req.Project != "" && req.Remove:
			delete(u.ProjectRoles, store.ProjectKey(req.Org, req.Project))
		case req.Project != "":
			u.ProjectRoles[store.ProjectKey(req.Org, req.Project)] = projectRole
			if u.OrgRoles[req.Org] == "" {
				u.OrgRoles[req.Org] = policy.Guest
			}
		case req.Remove: // out of the org altogether, and what it set for them goes too
			delete(u.OrgRoles, req.Org)
			delete(u.Orgs, req.Org)
			for k := range u.ProjectRoles {
				if strings.HasPrefix(k, req.Org+"/") {
					delete(u.ProjectRoles, k)
				}
			}
		default:
			u.OrgRoles[req.Org] = orgRole
		}
		u.DropStaleRestrictions() // a removed project role takes its restriction with it
		u.UpdatedAt = a.now().UTC()
		return nil
	})
	if err != nil {
		return err
	}
	return a.audited(w, r, c, "user.set_role", target, http.StatusOK, userView(c, u, req.Org))
}

// mayChangeProjectRole keeps a resource limit from being lifted through roles: removing a
// project role drops its limit, and a role given again comes without one. So a caller limited
// on the project changes no role of their own there (nor leaves the org: an org admin without a
// project role is not limited), and gives others a role there only when they are already
// limited within the caller's limit (set-resources first); taking a role away stays allowed.
func (c *caller) mayChangeProjectRole(u store.User, req apiv1.RoleRequest) error {
	if !c.isUser() {
		return nil
	}
	if u.ID == c.p.ID {
		for key := range c.p.Restrictions {
			org, project, _ := strings.Cut(key, "/")
			if _, limited := c.p.ResourceLimit(org, project); limited && org == req.Org && (req.Project == "" || req.Project == project) {
				return errf(http.StatusForbidden, "%s is limited to some resources of project %s and so cannot change their own role there: another member who manages the org's members must", c.actor, key)
			}
		}
		return nil
	}
	if req.Project == "" || req.Remove {
		return nil
	}
	limit, limited := c.p.ResourceLimit(req.Org, req.Project)
	if !limited {
		return nil
	}
	theirs, ok := u.Restricted[store.ProjectKey(req.Org, req.Project)]
	if _, outside := policy.OutsideLimit(limit, theirs.Resources); !ok || u.ProjectRoles[store.ProjectKey(req.Org, req.Project)] == "" || outside {
		return errf(http.StatusForbidden, "%s is limited to some resources of project %s/%s and so can give %s a role there only within that limit (already limited there to resources within it): ask a member without a limit", c.actor, req.Org, req.Project, u.Email)
	}
	return nil
}

// roleChange checks that a role request asks for one thing.
func roleChange(req *apiv1.RoleRequest) error {
	switch {
	case req.Remove && (req.OrgRole != "" || req.ProjectRole != ""):
		return errf(http.StatusBadRequest, "remove takes no role: give project (or nothing, for the org role) with remove")
	case req.Remove:
		return nil
	case req.OrgRole != "" && req.Project != "":
		return errf(http.StatusBadRequest, "set either org_role, or project with project_role, not both")
	case req.OrgRole == "" && req.Project == "":
		return errf(http.StatusBadRequest, "nothing to change: give org_role, or project with project_role, or remove")
	}
	return nil
}

func (a *API) deleteUser(w http.ResponseWriter, r *http.Request, c *caller) error {
	email := r.PathValue("email")
	if err := c.superuser(); err != nil {
		c.aim("user:" + email)
		return err
	}
	u, err := a.userByEmail(r.Context(), email)
	if err != nil {
		return err
	}
	if u.ID == c.p.ID {
		return errf(http.StatusBadRequest, "you cannot delete yourself")
	}
	revoked, err := a.st.DeleteUser(r.Context(), u.ID)
	if err != nil {
		return err
	}
	a.metrics.TokensRevoked(policy.KindUser, revoked)
	return a.audited(w, r, c, "user.delete", "user:"+u.Email, http.StatusOK, userView(c, u, ""))
}
