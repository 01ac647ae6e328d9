package adminapi

import (
	"errors"
	"net/http"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

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

// What the org-level lists ask of their caller on the org. The handlers check these, and the
// console shows a page to whom its list would answer, from the same constants (and policy's
// role tables), so a menu never offers a page that answers 403.
const (
	// NeedServices is asked by every route on an org's services and their tokens.
	NeedServices = policy.ManageOrg
	// NeedMembers is asked to list an org's members.
	NeedMembers = policy.ReadOrgMembers
)

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
	p := store.Project{ID: token.NewID(), Org: org, Name: req.Name, CreatedAt: a.now().UTC()}
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
