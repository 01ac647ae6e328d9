package adminapi

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// MaxResources bounds the resources of one restriction or public URL.
const MaxResources = 1000

func (a *API) registerEmbedding(mux *http.ServeMux) {
	a.mutation(mux, "PUT /v1/orgs/{org}/projects/{project}/users/{email}/resources", "user.set_resources", a.setUserResources)
	a.mutation(mux, "DELETE /v1/orgs/{org}/projects/{project}/users/{email}/resources", "user.set_resources", a.setUserResources)
	a.handle(mux, "GET /v1/orgs/{org}/projects/{project}/users/{email}/resources", a.showUserResources)
}

// setUserResources is Rill's SetProjectMemberUserRole with resources and restrict_resources
// (rilldata/rill cli/cmd/user/set_resources.go): resources restrict the user to them,
// restrict_resources alone to nothing, neither (or DELETE) clears the restriction. The user must
// hold a role on the project; the caller needs manage_project_members there.
func (a *API) setUserResources(w http.ResponseWriter, r *http.Request, c *caller) error {
	org, project, email := r.PathValue("org"), r.PathValue("project"), strings.ToLower(r.PathValue("email"))
	target := "user:" + email + " project:" + org + "/" + project
	c.aim(target)
	if err := c.need(org, project, policy.ManageProjectMembers); err != nil {
		return err
	}
	var req apiv1.ResourcesRequest
	if r.Method == http.MethodPut {
		if err := decode(r, &req); err != nil {
			return err
		}
	}
	resources, err := resourceNames(req.Resources)
	if err != nil {
		return err
	}
	restrict := req.RestrictResources || len(resources) > 0
	u, err := a.userByEmail(r.Context(), email)
	if err != nil {
		return err
	}
	key := store.ProjectKey(org, project)
	if u.ProjectRoles[key] == "" {
		return errf(http.StatusNotFound, "user %q has no role on project %s/%s: give them one first (rillctl user set-role)", email, org, project)
	}
	if u.ProjectRoles[key] == policy.Admin && !c.p.AccessTo(org, project).Perms.Has(policy.ManageProjectAdmins) {
		return errf(http.StatusForbidden, "%s cannot limit a project admin", c.actor)
	}
	if err := c.mayLimit(u, org, project, restrict, resources); err != nil {
		return err
	}
	u, err = a.st.UpdateUser(r.Context(), u.ID, func(u *store.User) error {
		if u.ProjectRoles[key] == "" {
			return errf(http.StatusNotFound, "user %q has no role on project %s/%s", email, org, project)
		}
		if restrict {
			if u.Restricted == nil {
				u.Restricted = map[string]store.Restricted{}
			}
			u.Restricted[key] = store.Restricted{Resources: resources}
		} else {
			delete(u.Restricted, key)
		}
		u.DropStaleRestrictions()
		u.UpdatedAt = a.now().UTC()
		return nil
	})
	if err != nil {
		return err
	}
	status := "cleared"
	if restrict {
		status = fmt.Sprintf("restricted to %d resources", len(resources))
	}
	return a.audited(w, r, c, "user.set_resources", target+" "+status, http.StatusOK, projectResources(u, org, project))
}

// mayLimit refuses a limit c may not set on u (third red team: a limited editor lifted their
// own limit). Nobody changes their own limit, whatever their role: a limit is set by someone
// else. A caller limited on the project hands on no more than they hold: they may limit
// others to resources within their own limit, never lift a limit or name a resource outside it.
func (c *caller) mayLimit(u store.User, org, project string, restrict bool, resources []token.ResourceName) error {
	if c.isUser() && u.ID == c.p.ID {
		return errf(http.StatusForbidden, "%s cannot change their own resource limit on project %s/%s: another member who manages the project's members must", c.actor, org, project)
	}
	limit, limited := c.p.ResourceLimit(org, project)
	if !limited {
		return nil
	}
	if !restrict {
		return errf(http.StatusForbidden, "%s is limited to some resources of project %s/%s and so cannot lift %s's limit there", c.actor, org, project, u.Email)
	}
	if r, outside := policy.OutsideLimit(limit, resources); outside {
		return errf(http.StatusForbidden, "%s is limited to some resources of project %s/%s and cannot grant %s %q, which is outside that limit", c.actor, org, project, r.Kind, r.Name)
	}
	return nil
}

func (a *API) showUserResources(w http.ResponseWriter, r *http.Request, c *caller) error {
	org, project, email := r.PathValue("org"), r.PathValue("project"), strings.ToLower(r.PathValue("email"))
	if err := c.need(org, project, policy.ReadProjectMembers); err != nil {
		return err
	}
	u, err := a.userByEmail(r.Context(), email)
	if err != nil {
		return err
	}
	if u.ProjectRoles[store.ProjectKey(org, project)] == "" {
		return errf(http.StatusNotFound, "user %q has no role on project %s/%s", email, org, project)
	}
	writeJSON(w, http.StatusOK, projectResources(u, org, project))
	return nil
}

func projectResources(u store.User, org, project string) apiv1.ProjectResources {
	key := store.ProjectKey(org, project)
	out := apiv1.ProjectResources{Email: u.Email, Org: org, Project: project, ProjectRole: string(u.ProjectRoles[key]), Resources: []apiv1.ResourceName{}}
	if rs, ok := u.Restricted[key]; ok {
		out.RestrictResources = true
		for _, r := range rs.Resources {
			out.Resources = append(out.Resources, apiv1.ResourceName{Type: r.Kind, Name: r.Name})
		}
	}
	return out
}

// resourceKinds maps what a request may name a resource kind to the runtime's kind, as Rill's
// CLI does (cli/pkg/cmdutil/resources.go: --explore, --canvas) and runtime.ResourceKindFromShorthand.
var resourceKinds = map[string]string{
	"explore": token.KindExplore, token.KindExplore: token.KindExplore,
	"canvas": token.KindCanvas, token.KindCanvas: token.KindCanvas,
}

// resourceNames checks and normalizes resources: a known kind, a name of 1-256 printable
// characters, each once, in the order given.
func resourceNames(in []apiv1.ResourceName) ([]token.ResourceName, error) {
	if len(in) > MaxResources {
		return nil, errf(http.StatusBadRequest, "at most %d resources, not %d", MaxResources, len(in))
	}
	out := make([]token.ResourceName, 0, len(in))
	for _, r := range in {
		kind, ok := resourceKinds[strings.TrimSpace(r.Type)]
		if !ok {
			return nil, errf(http.StatusBadRequest, "resource type %q is not one of explore, canvas", r.Type)
		}
		name := strings.TrimSpace(r.Name)
		if err := resourceName(name); err != nil {
			return nil, err
		}
		n := token.ResourceName{Kind: kind, Name: name}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

func resourceName(name string) error {
	switch {
	case name == "":
		return errf(http.StatusBadRequest, "a resource needs a name")
	case len(name) > 256:
		return errf(http.StatusBadRequest, "resource name longer than 256 bytes")
	case !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }):
		return errf(http.StatusBadRequest, "resource name %q holds a character that is not printable", name)
	}
	return nil
}
