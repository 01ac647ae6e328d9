package adminapi

import (
	"net/http"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
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
	a.mutation(mux, "PATCH /v1/orgs/{org}/services/{name}/tokens/{ref}", "service.token.edit", a.editServiceToken)

	a.mutation(mux, "POST /v1/tokens", "token.issue", a.issueUserToken)
	a.handle(mux, "GET /v1/tokens", a.listUserTokens)
	a.mutation(mux, "DELETE /v1/tokens/{ref}", "token.revoke", a.revokeUserToken)
	a.mutation(mux, "PATCH /v1/tokens/{ref}", "token.edit", a.editUserToken)
	a.mutation(mux, "DELETE /v1/tokens", "token.revoke", a.revokeUserToken)

	a.handle(mux, "GET /v1/audit", a.listAudit)
	a.registerCredentials(mux)
	a.registerEmbedding(mux)
	a.registerMagic(mux)
	a.registerTokenPolicy(mux)
	a.registerSigninRules(mux)
	a.registerIFrame(mux)
	a.handle(mux, "GET /v1/admin/plugins", a.pluginStatus)
	a.registerRecovery(mux)
	a.registerRepresent(mux)
	a.registerDevice(mux)
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

func (a *API) whoami(w http.ResponseWriter, r *http.Request, c *caller) error {
	writeJSON(w, http.StatusOK, apiv1.Whoami{Kind: string(c.p.Kind), Subject: c.p.Subject, ID: c.p.ID, Superuser: c.p.Superuser,
		OrgRoles: wireRoles(c.p.OrgRoles), ProjectRoles: wireRoles(c.p.ProjectRoles), TokenID: c.tokenID,
		AssumedBy: a.assumedBy(r.Context(), c)})
	return nil
}

// --- orgs and projects

// --- users

// --- services

// --- tokens

// --- audit
