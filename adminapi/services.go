package adminapi

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"slices"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

func (a *API) createService(w http.ResponseWriter, r *http.Request, c *caller) error {
	org, err := a.org(r, c, NeedServices)
	if err != nil {
		return err
	}
	var req apiv1.ServiceRequest
	if err := decodeRill(r.Body, &req, serviceAliases); err != nil {
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
	ttl, err := ttlMinutes(req.TTLMinutes)
	if err != nil {
		return err
	}
	if err := a.checkLifetimeIn(r.Context(), token.Service, []string{org}, ttl); err != nil {
		return err
	}
	networks, err := allowedNetworks(req.AllowedNetworks)
	if err != nil {
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
	// The service comes with a token: refuse before creating it, not after. Not so in Rill's
	// shape: Rill's CreateService makes none (its CLI then calls IssueServiceAuthToken).
	rill := rillShape(r)
	if !rill {
		if err := a.chargeIssue(c); err != nil {
			return err
		}
	}
	if err := a.chargeOrg(c, org); err != nil {
		return err
	}
	if err := a.st.CreateService(r.Context(), s); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return errf(http.StatusConflict, "service %q already exists in org %q", req.Name, org)
		}
		return err
	}
	if rill {
		return a.audited(w, r, c, "service.create", target, http.StatusOK, apiv1.RillServiceResponse{Service: rillService(s)})
	}
	issued, err := a.newToken(r.Context(), c, token.Service, s.ID, "", ttl, networks)
	if err != nil {
		return err
	}
	return a.audited(w, r, c, "service.create", target, http.StatusCreated, apiv1.ServiceCreated{Service: wireService(s), Token: issued})
}

// serviceAliases are Rill's names for the fields of a service request: CreateServiceRequest's
// (org_role_name, project_role_name) and UpdateServiceRequest's, and their JSON names.
var serviceAliases = map[string]string{"org_role_name": "org_role", "orgRoleName": "org_role", "project_role_name": "project_role",
	"projectRoleName": "project_role", "newName": "new_name", "orgRole": "org_role", "projectRole": "project_role"}

// service loads the service named in the path after checking manage_org on its org.
func (a *API) service(r *http.Request, c *caller) (store.Service, error) {
	org, err := a.org(r, c, NeedServices)
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
	org, err := a.org(r, c, NeedServices)
	if err != nil {
		return err
	}
	ss, err := a.st.ListServices(r.Context(), org)
	if err != nil || !rillShape(r) {
		return writeList(w, wireList(ss, wireService), err)
	}
	writeJSON(w, http.StatusOK, apiv1.RillListServicesResponse{Services: wireList(ss, rillMemberService)})
	return nil
}

func (a *API) showService(w http.ResponseWriter, r *http.Request, c *caller) error {
	s, err := a.service(r, c)
	if err != nil {
		return err
	}
	if rillShape(r) {
		return a.showServiceRill(w, r, s)
	}
	toks, err := a.tokensOf(r.Context(), s.ID)
	if err == nil {
		err = a.markBeyond(r.Context(), token.Service, s.ID, toks)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, apiv1.ServiceDetail{Service: wireService(s), Tokens: toks})
	return nil
}

// showServiceRill answers Rill's GetServiceResponse: the service with its org role, and a
// ProjectMemberService per project it has a role on, by project name.
func (a *API) showServiceRill(w http.ResponseWriter, r *http.Request, s store.Service) error {
	out := apiv1.RillGetServiceResponse{Service: rillMemberService(s), ProjectMemberships: []apiv1.RillProjectMemberService{}}
	for _, name := range slices.Sorted(maps.Keys(s.ProjectRoles)) {
		p, err := a.st.GetProject(r.Context(), s.Org, name)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		out.ProjectMemberships = append(out.ProjectMemberships, apiv1.RillProjectMemberService{ID: s.ID, Name: s.Name, OrgName: s.Org,
			OrgRoleName: string(s.OrgRole), ProjectID: p.ID, ProjectName: name, ProjectRoleName: string(s.ProjectRoles[name]),
			Attributes: attrsOrEmpty(s.Attributes), CreatedOn: apiv1.RillTime(s.CreatedAt), UpdatedOn: apiv1.RillTime(s.UpdatedAt)})
	}
	writeJSON(w, http.StatusOK, out)
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
	if err := decodeRill(r.Body, &req, serviceAliases); err != nil {
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
	return a.answer(w, r, c, "service.edit", "service:"+s.Org+"/"+r.PathValue("name"), http.StatusOK, wireService(s),
		apiv1.RillServiceResponse{Service: rillService(s)})
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
	return a.answer(w, r, c, "service.delete", "service:"+s.Org+"/"+s.Name, http.StatusOK, wireService(s), apiv1.RillServiceResponse{Service: rillService(s)})
}

func (a *API) issueServiceToken(w http.ResponseWriter, r *http.Request, c *caller) error {
	s, err := a.service(r, c)
	if err != nil {
		return err
	}
	var req apiv1.ServiceTokenRequest
	if err := decodeOptional(r, &req); err != nil {
		return err
	}
	networks, err := allowedNetworks(req.AllowedNetworks)
	if err != nil {
		return err
	}
	ttl, err := ttlMinutes(req.TTLMinutes)
	if err != nil {
		return err
	}
	if err := a.checkLifetimeIn(r.Context(), token.Service, []string{s.Org}, ttl); err != nil {
		return err
	}
	if err := a.chargeIssue(c); err != nil {
		return err
	}
	if err := a.chargeOrg(c, s.Org); err != nil {
		return err
	}
	issued, err := a.newToken(r.Context(), c, token.Service, s.ID, "", ttl, networks)
	if err != nil {
		return err
	}
	c.named = TokenLabel(issued.Prefix, "")
	return a.answer(w, r, c, "service.token.issue", "service:"+s.Org+"/"+s.Name+" token:"+issued.ID, http.StatusCreated, issued,
		apiv1.RillIssuedToken{Token: issued.Token})
}

func (a *API) listServiceTokens(w http.ResponseWriter, r *http.Request, c *caller) error {
	s, err := a.service(r, c)
	if err != nil {
		return err
	}
	if rillShape(r) {
		ts, err := a.st.ListTokens(r.Context(), s.ID)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, apiv1.RillListServiceAuthTokensResponse{Tokens: wireList(ts, rillServiceToken)})
		return nil
	}
	toks, err := a.tokensOf(r.Context(), s.ID)
	if err == nil {
		err = a.markBeyond(r.Context(), token.Service, s.ID, toks)
	}
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
	c.named = TokenLabel(t.Prefix, t.DisplayName)
	return a.audited(w, r, c, "service.token.revoke", "service:"+s.Org+"/"+s.Name+" token:"+t.ID.String(), http.StatusOK, apiv1.Revoked{Revoked: []apiv1.TokenInfo{tokenInfo(t)}})
}
