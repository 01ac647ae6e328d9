package adminapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// Register mounts the API's routes on mux.
func (a *API) Register(mux *http.ServeMux) {
	a.handle(mux, "GET /v1/whoami", a.whoami)

	a.mutation(mux, "POST /v1/orgs", "org.create", a.createOrg)
	a.handle(mux, "GET /v1/orgs", a.listOrgs)
	a.mutation(mux, "POST /v1/orgs/{org}/projects", "project.create", a.createProject)
	a.handle(mux, "GET /v1/orgs/{org}/projects", a.listProjects)

	a.mutation(mux, "POST /v1/users", "user.create", a.createUser)
	a.handle(mux, "GET /v1/users", a.listUsers)
	a.mutation(mux, "PUT /v1/users/{email}/roles", "user.set_role", a.setUserRole)
	a.mutation(mux, "DELETE /v1/users/{email}", "user.delete", a.deleteUser)

	a.mutation(mux, "POST /v1/orgs/{org}/services", "service.create", a.createService)
	a.handle(mux, "GET /v1/orgs/{org}/services", a.listServices)
	a.handle(mux, "GET /v1/orgs/{org}/services/{name}", a.showService)
	a.mutation(mux, "PATCH /v1/orgs/{org}/services/{name}", "service.edit", a.editService)
	a.mutation(mux, "PUT /v1/orgs/{org}/services/{name}/roles", "service.set_role", a.setServiceRole)
	a.mutation(mux, "DELETE /v1/orgs/{org}/services/{name}", "service.delete", a.deleteService)
	a.mutation(mux, "POST /v1/orgs/{org}/services/{name}/tokens", "service.token.issue", a.issueServiceToken)
	a.handle(mux, "GET /v1/orgs/{org}/services/{name}/tokens", a.listServiceTokens)
	a.mutation(mux, "DELETE /v1/orgs/{org}/services/{name}/tokens/{ref}", "service.token.revoke", a.revokeServiceToken)

	a.mutation(mux, "POST /v1/tokens", "token.issue", a.issueUserToken)
	a.handle(mux, "GET /v1/tokens", a.listUserTokens)
	a.mutation(mux, "DELETE /v1/tokens/{ref}", "token.revoke", a.revokeUserToken)
	a.mutation(mux, "DELETE /v1/tokens", "token.revoke", a.revokeUserToken)

	a.handle(mux, "GET /v1/audit", a.listAudit)
	a.registerCredentials(mux)
	a.handle(mux, "GET /v1/admin/plugins", a.pluginStatus)
	a.registerRecovery(mux)
}

func (a *API) pluginStatus(w http.ResponseWriter, _ *http.Request, c *caller) error {
	if err := c.superuser(); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wireList(a.plugins.Status(), wirePluginStatus))
	return nil
}

// writeList answers a list: [] rather than null when it is empty.
func writeList[T any](w http.ResponseWriter, list []T, err error) error {
	if err != nil {
		return err
	}
	if list == nil {
		list = []T{}
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

func (a *API) whoami(w http.ResponseWriter, _ *http.Request, c *caller) error {
	writeJSON(w, http.StatusOK, apiv1.Whoami{Kind: string(c.p.Kind), Subject: c.p.Subject, ID: c.p.ID, Superuser: c.p.Superuser,
		OrgRoles: wireRoles(c.p.OrgRoles), ProjectRoles: wireRoles(c.p.ProjectRoles), TokenID: c.tokenID})
	return nil
}

// --- orgs and projects

func (a *API) createOrg(w http.ResponseWriter, r *http.Request, c *caller) error {
	var req apiv1.NameRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := c.superuser(); err != nil {
		c.aim("org:" + req.Name)
		return err
	}
	if err := checkName("name", req.Name, orgName, "1-40 characters of a-z, 0-9 and -, starting with a letter or digit"); err != nil {
		return err
	}
	o := store.Org{Name: req.Name, CreatedAt: a.now().UTC()}
	if err := a.st.CreateOrg(r.Context(), o); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return errf(http.StatusConflict, "org %q already exists", req.Name)
		}
		return err
	}
	return a.audited(w, r, c, "org.create", "org:"+o.Name, http.StatusCreated, wireOrg(o))
}

func (a *API) listOrgs(w http.ResponseWriter, r *http.Request, c *caller) error {
	all, err := a.st.ListOrgs(r.Context())
	if err != nil {
		return err
	}
	out := []apiv1.Org{}
	for _, o := range all {
		if c.p.AccessTo(o.Name, "").Perms.Has(policy.ReadOrg) {
			out = append(out, wireOrg(o))
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// org loads the org named in the path after checking the caller may act on it, so that a caller
// without access cannot learn which orgs exist.
func (a *API) org(r *http.Request, c *caller, perm policy.Perm) (string, error) {
	org := r.PathValue("org")
	if err := c.need(org, "", perm); err != nil {
		c.aim("org:" + org)
		return "", err
	}
	if _, err := a.st.GetOrg(r.Context(), org); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return "", errf(http.StatusNotFound, "org %q not found", org)
		}
		return "", err
	}
	return org, nil
}

func (a *API) createProject(w http.ResponseWriter, r *http.Request, c *caller) error {
	org, err := a.org(r, c, policy.CreateProjects)
	if err != nil {
		return err
	}
	var req apiv1.NameRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := checkName("name", req.Name, projectName, "1-64 characters of A-Z, a-z, 0-9, _ and -"); err != nil {
		return err
	}
	p := store.Project{Org: org, Name: req.Name, CreatedAt: a.now().UTC()}
	if err := a.st.CreateProject(r.Context(), p); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return errf(http.StatusConflict, "project %q already exists in org %q", req.Name, org)
		}
		return err
	}
	return a.audited(w, r, c, "project.create", "project:"+org+"/"+p.Name, http.StatusCreated, wireProject(p))
}

func (a *API) listProjects(w http.ResponseWriter, r *http.Request, c *caller) error {
	org, err := a.org(r, c, policy.ReadProjects)
	if err != nil {
		return err
	}
	ps, err := a.st.ListProjects(r.Context(), org)
	return writeList(w, wireList(ps, wireProject), err)
}

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

// --- users

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
	} else if err := c.need(org, "", policy.ReadOrgMembers); err != nil {
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
		u.UpdatedAt = a.now().UTC()
		return nil
	})
	if err != nil {
		return err
	}
	return a.audited(w, r, c, "user.set_role", target, http.StatusOK, userView(c, u, req.Org))
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

// --- services

func (a *API) createService(w http.ResponseWriter, r *http.Request, c *caller) error {
	org, err := a.org(r, c, policy.ManageOrg)
	if err != nil {
		return err
	}
	var req apiv1.ServiceRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	orgRole, projectRole := policy.Role(req.OrgRole), policy.Role(req.ProjectRole)
	target := "service:" + org + "/" + req.Name
	c.aim(target)
	if err := checkName("name", req.Name, serviceName, "1-64 characters of A-Z, a-z, 0-9, _, . and -"); err != nil {
		return err
	}
	if orgRole == "" && projectRole == "" && req.Project == "" {
		return errf(http.StatusBadRequest, "a service needs a role: give org_role, or project with project_role")
	}
	if err := a.checkRoles(r.Context(), org, orgRole, req.Project, projectRole); err != nil {
		return err
	}
	if err := c.grantable(org, orgRole, req.Project, projectRole); err != nil {
		return err
	}
	if err := checkAttributes(req.Attributes); err != nil {
		return err
	}
	now := a.now().UTC()
	s := store.Service{ID: token.NewID(), Org: org, Name: req.Name, OrgRole: orgRole, ProjectRoles: map[string]policy.Role{},
		Attributes: req.Attributes, CreatedBy: c.actor, CreatedAt: now, UpdatedAt: now}
	if s.Attributes == nil {
		s.Attributes = map[string]any{}
	}
	if req.Project != "" {
		s.ProjectRoles[req.Project] = projectRole
	}
	if err := a.st.CreateService(r.Context(), s); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return errf(http.StatusConflict, "service %q already exists in org %q", req.Name, org)
		}
		return err
	}
	issued, err := a.newToken(r.Context(), c, token.Service, s.ID, "")
	if err != nil {
		return err
	}
	return a.audited(w, r, c, "service.create", target, http.StatusCreated, apiv1.ServiceCreated{Service: wireService(s), Token: issued})
}

// service loads the service named in the path after checking manage_org on its org.
func (a *API) service(r *http.Request, c *caller) (store.Service, error) {
	org, err := a.org(r, c, policy.ManageOrg)
	if err != nil {
		return store.Service{}, err
	}
	name := r.PathValue("name")
	s, err := a.st.GetServiceByName(r.Context(), org, name)
	if errors.Is(err, store.ErrNotFound) {
		return s, errf(http.StatusNotFound, "service %q not found in org %q", name, org)
	}
	return s, err
}

func (a *API) listServices(w http.ResponseWriter, r *http.Request, c *caller) error {
	org, err := a.org(r, c, policy.ManageOrg)
	if err != nil {
		return err
	}
	ss, err := a.st.ListServices(r.Context(), org)
	return writeList(w, wireList(ss, wireService), err)
}

func (a *API) showService(w http.ResponseWriter, r *http.Request, c *caller) error {
	s, err := a.service(r, c)
	if err != nil {
		return err
	}
	toks, err := a.tokensOf(r.Context(), s.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, apiv1.ServiceDetail{Service: wireService(s), Tokens: toks})
	return nil
}

func (a *API) tokensOf(ctx context.Context, owner string) ([]apiv1.TokenInfo, error) {
	ts, err := a.st.ListTokens(ctx, owner)
	if err != nil {
		return nil, err
	}
	out := []apiv1.TokenInfo{}
	for _, t := range ts {
		out = append(out, tokenInfo(t))
	}
	return out, nil
}

func (a *API) editService(w http.ResponseWriter, r *http.Request, c *caller) error {
	s, err := a.service(r, c)
	if err != nil {
		return err
	}
	var req apiv1.ServiceEdit
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.NewName == "" && req.Attributes == nil {
		return errf(http.StatusBadRequest, "nothing to change: give new_name or attributes")
	}
	if req.NewName != "" {
		if err := checkName("new_name", req.NewName, serviceName, "1-64 characters of A-Z, a-z, 0-9, _, . and -"); err != nil {
			return err
		}
	}
	if req.Attributes != nil {
		if *req.Attributes == nil {
			return errf(http.StatusBadRequest, "attributes must be a JSON object ({} clears them)")
		}
		if err := checkAttributes(*req.Attributes); err != nil {
			return err
		}
	}
	s, err = a.st.UpdateService(r.Context(), s.ID, func(s *store.Service) error {
		if req.NewName != "" {
			s.Name = req.NewName
		}
		if req.Attributes != nil {
			s.Attributes = *req.Attributes
		}
		s.UpdatedAt = a.now().UTC()
		return nil
	})
	if errors.Is(err, store.ErrConflict) {
		return errf(http.StatusConflict, "service %q already exists in org %q", req.NewName, r.PathValue("org"))
	}
	if err != nil {
		return err
	}
	return a.audited(w, r, c, "service.edit", "service:"+s.Org+"/"+r.PathValue("name"), http.StatusOK, wireService(s))
}

func (a *API) setServiceRole(w http.ResponseWriter, r *http.Request, c *caller) error {
	s, err := a.service(r, c)
	if err != nil {
		return err
	}
	var req apiv1.RoleRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	orgRole, projectRole := policy.Role(req.OrgRole), policy.Role(req.ProjectRole)
	target := "service:" + s.Org + "/" + s.Name
	c.aim(target)
	if req.Org != "" && req.Org != s.Org {
		return errf(http.StatusBadRequest, "a service has roles in its own org only (%s)", s.Org)
	}
	if err := roleChange(&req); err != nil {
		return err
	}
	if !(req.Remove && req.Project != "") {
		if err := a.checkRoles(r.Context(), s.Org, orgRole, req.Project, projectRole); err != nil {
			return err
		}
	}
	if err := c.grantable(s.Org, orgRole, req.Project, projectRole); err != nil {
		return err
	}
	if req.Remove && req.Project != "" {
		if _, ok := s.ProjectRoles[req.Project]; !ok {
			return errf(http.StatusNotFound, "service %q has no role on project %q", s.Name, req.Project)
		}
	}
	s, err = a.st.UpdateService(r.Context(), s.ID, func(s *store.Service) error {
		if s.ProjectRoles == nil {
			s.ProjectRoles = map[string]policy.Role{}
		}
		switch {
		case req.Project != "" && req.Remove:
			delete(s.ProjectRoles, req.Project)
		case req.Project != "":
			s.ProjectRoles[req.Project] = projectRole
		case req.Remove:
			s.OrgRole = ""
		default:
			s.OrgRole = orgRole
		}
		s.UpdatedAt = a.now().UTC()
		return nil
	})
	if err != nil {
		return err
	}
	return a.audited(w, r, c, "service.set_role", target, http.StatusOK, wireService(s))
}

func (a *API) deleteService(w http.ResponseWriter, r *http.Request, c *caller) error {
	s, err := a.service(r, c)
	if err != nil {
		return err
	}
	revoked, err := a.st.DeleteService(r.Context(), s.ID)
	if err != nil {
		return err
	}
	a.metrics.TokensRevoked(policy.KindService, revoked)
	return a.audited(w, r, c, "service.delete", "service:"+s.Org+"/"+s.Name, http.StatusOK, wireService(s))
}

func (a *API) issueServiceToken(w http.ResponseWriter, r *http.Request, c *caller) error {
	s, err := a.service(r, c)
	if err != nil {
		return err
	}
	issued, err := a.newToken(r.Context(), c, token.Service, s.ID, "")
	if err != nil {
		return err
	}
	return a.audited(w, r, c, "service.token.issue", "service:"+s.Org+"/"+s.Name+" token:"+issued.ID, http.StatusCreated, issued)
}

func (a *API) listServiceTokens(w http.ResponseWriter, r *http.Request, c *caller) error {
	s, err := a.service(r, c)
	if err != nil {
		return err
	}
	toks, err := a.tokensOf(r.Context(), s.ID)
	return writeList(w, toks, err)
}

func (a *API) revokeServiceToken(w http.ResponseWriter, r *http.Request, c *caller) error {
	s, err := a.service(r, c)
	if err != nil {
		return err
	}
	t, err := a.findToken(r.Context(), s.ID, r.PathValue("ref"))
	if err != nil {
		return err
	}
	if err := a.st.DeleteToken(r.Context(), t.ID); err != nil {
		return err
	}
	a.metrics.TokensRevoked(policy.KindOf(t.Kind), 1)
	return a.audited(w, r, c, "service.token.revoke", "service:"+s.Org+"/"+s.Name+" token:"+t.ID.String(), http.StatusOK, apiv1.Revoked{Revoked: []apiv1.TokenInfo{tokenInfo(t)}})
}

// --- tokens

// newToken mints a token for owner and stores its hash.
func (a *API) newToken(ctx context.Context, c *caller, k token.Kind, owner, name string) (apiv1.IssuedToken, error) {
	return a.newTokenTTL(ctx, c, k, owner, name, 0)
}

func (a *API) newTokenTTL(ctx context.Context, c *caller, k token.Kind, owner, name string, ttl time.Duration) (apiv1.IssuedToken, error) {
	tok, err := token.New(k)
	if err != nil {
		return apiv1.IssuedToken{}, err
	}
	rec := store.NewToken(tok, owner, name, c.actor, a.now(), ttl)
	if err := a.st.CreateToken(ctx, rec); err != nil {
		return apiv1.IssuedToken{}, fmt.Errorf("store token: %w", err)
	}
	a.metrics.TokenIssued(policy.KindOf(k))
	return apiv1.IssuedToken{Token: tok.Encode(), TokenInfo: tokenInfo(rec)}, nil
}

// tokenOwner is the user whose tokens a request is about: the caller, or (superusers only) the
// user named by user_email.
func (a *API) tokenOwner(ctx context.Context, c *caller, email string) (store.User, error) {
	if !c.isUser() {
		return store.User{}, errf(http.StatusForbidden, "%s is a service: user tokens belong to users (use service token commands)", c.actor)
	}
	if email == "" || strings.EqualFold(email, c.p.Email) {
		u, err := a.st.GetUser(ctx, c.p.ID)
		return u, err
	}
	if err := c.superuser(); err != nil {
		return store.User{}, errf(http.StatusForbidden, "only a superuser may manage another user's tokens (%s is not one)", c.actor)
	}
	return a.userByEmail(ctx, email)
}

func (a *API) issueUserToken(w http.ResponseWriter, r *http.Request, c *caller) error {
	var req apiv1.TokenRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.DisplayName) == "" {
		return errf(http.StatusBadRequest, "display_name is required")
	}
	if len(req.DisplayName) > 200 {
		return errf(http.StatusBadRequest, "display_name is longer than 200 characters")
	}
	if req.TTLMinutes < 0 {
		return errf(http.StatusBadRequest, "ttl_minutes must be 0 (never expires) or more, not %d", req.TTLMinutes)
	}
	if req.TTLMinutes > 100*365*24*60 {
		return errf(http.StatusBadRequest, "ttl_minutes %d is more than 100 years", req.TTLMinutes)
	}
	u, err := a.tokenOwner(r.Context(), c, req.UserEmail)
	if err != nil {
		c.aim("user:" + req.UserEmail)
		return err
	}
	issued, err := a.newTokenTTL(r.Context(), c, token.User, u.ID, req.DisplayName, time.Duration(req.TTLMinutes)*time.Minute)
	if err != nil {
		return err
	}
	return a.audited(w, r, c, "token.issue", "user:"+u.Email+" token:"+issued.ID, http.StatusCreated, issued)
}

func (a *API) listUserTokens(w http.ResponseWriter, r *http.Request, c *caller) error {
	u, err := a.tokenOwner(r.Context(), c, r.URL.Query().Get("user_email"))
	if err != nil {
		return err
	}
	toks, err := a.tokensOf(r.Context(), u.ID)
	return writeList(w, toks, err)
}

// revokeUserToken revokes one of the owner's tokens by reference (path) or by display name
// (query display_name).
func (a *API) revokeUserToken(w http.ResponseWriter, r *http.Request, c *caller) error {
	u, err := a.tokenOwner(r.Context(), c, r.URL.Query().Get("user_email"))
	if err != nil {
		c.aim("user:" + r.URL.Query().Get("user_email"))
		return err
	}
	var t store.Token
	ref, name := r.PathValue("ref"), r.URL.Query().Get("display_name")
	switch {
	case ref != "" && name != "":
		return errf(http.StatusBadRequest, "give a token id or a display name, not both")
	case ref != "":
		if t, err = a.findToken(r.Context(), u.ID, ref); err != nil {
			return err
		}
	case name != "":
		toks, err := a.st.ListTokens(r.Context(), u.ID)
		if err != nil {
			return err
		}
		var match []store.Token
		for _, tk := range toks {
			if tk.DisplayName == name {
				match = append(match, tk)
			}
		}
		switch len(match) {
		case 0:
			return errf(http.StatusNotFound, "no token named %q", name)
		case 1:
			t = match[0]
		default:
			ids := make([]string, len(match))
			for i, m := range match {
				ids[i] = m.Prefix
			}
			return errf(http.StatusConflict, "%d tokens are named %q (%s): revoke one by its id", len(match), name, strings.Join(ids, ", "))
		}
	default:
		return errf(http.StatusBadRequest, "give a token id (or prefix) or display_name")
	}
	if err := a.st.DeleteToken(r.Context(), t.ID); err != nil {
		return err
	}
	a.metrics.TokensRevoked(policy.KindOf(t.Kind), 1)
	return a.audited(w, r, c, "token.revoke", "user:"+u.Email+" token:"+t.ID.String(), http.StatusOK, apiv1.Revoked{Revoked: []apiv1.TokenInfo{tokenInfo(t)}})
}

// findToken finds one of owner's tokens by its id, the whole token, or a display prefix of at
// least 10 characters after rill_usr_/rill_svc_ (a trailing "..." as list prints it is fine).
func (a *API) findToken(ctx context.Context, owner, ref string) (store.Token, error) {
	ref = strings.TrimSuffix(strings.TrimSpace(ref), "...")
	toks, err := a.st.ListTokens(ctx, owner)
	if err != nil {
		return store.Token{}, err
	}
	var match []store.Token
	switch {
	case token.HasPrefix(ref) && len(ref) == token.Len:
		tok, err := token.Parse(ref)
		if err != nil {
			return store.Token{}, errf(http.StatusBadRequest, "token: %v", err)
		}
		for _, t := range toks {
			if t.ID == tok.ID {
				match = append(match, t)
			}
		}
	case token.HasPrefix(ref):
		if len(ref) < len("rill_usr_")+10 {
			return store.Token{}, errf(http.StatusBadRequest, "token prefix %q is too short: give at least 10 characters after %s", ref, ref[:9])
		}
		for _, t := range toks {
			if strings.HasPrefix(t.Prefix, ref) || (len(ref) > len(t.Prefix) && strings.HasPrefix(ref, t.Prefix)) {
				match = append(match, t)
			}
		}
	default:
		// An id, in either case; one that is no UUID matches no token.
		if id, err := token.ParseID(ref); err == nil {
			for _, t := range toks {
				if t.ID == id {
					match = append(match, t)
				}
			}
		}
	}
	switch len(match) {
	case 0:
		return store.Token{}, errf(http.StatusNotFound, "no token %q", ref)
	case 1:
		return match[0], nil
	}
	return store.Token{}, errf(http.StatusConflict, "%q matches %d tokens: give more of it", ref, len(match))
}

// --- audit

func (a *API) listAudit(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := c.superuser(); err != nil {
		return err
	}
	q := r.URL.Query()
	f := store.AuditFilter{Actor: q.Get("actor"), Limit: 100}
	if s := q.Get("since"); s != "" {
		if d, err := time.ParseDuration(s); err == nil {
			f.Since = a.now().Add(-d)
		} else if t, err := time.Parse(time.RFC3339, s); err == nil {
			f.Since = t
		} else {
			return errf(http.StatusBadRequest, "since %q is neither a duration (24h) nor an RFC 3339 time", s)
		}
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 10000 {
			return errf(http.StatusBadRequest, "limit %q must be a number from 1 to 10000", l)
		}
		f.Limit = n
	}
	evs, err := a.st.ListAudit(r.Context(), f)
	return writeList(w, wireList(evs, wireAuditEvent), err)
}
