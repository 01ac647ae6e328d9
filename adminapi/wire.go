package adminapi

import (
	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/plugins"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
)

// Conversions from the server's types to the wire types of apiv1: the store's model may change
// without changing the API, and a client links none of it.

func wireOrg(o store.Org) apiv1.Org { return apiv1.Org{Name: o.Name, CreatedAt: o.CreatedAt} }

func wireProject(p store.Project) apiv1.Project {
	return apiv1.Project{Org: p.Org, Name: p.Name, CreatedAt: p.CreatedAt}
}

// wireUser converts all of u that it is given (callers pass what the caller may see, see
// API.userView); Groups and Attributes repeat org's, when the response is about one.
func wireUser(u store.User, org string) apiv1.User {
	w := apiv1.User{ID: u.ID, Email: u.Email, DisplayName: u.DisplayName, OrgRoles: wireRoles(u.OrgRoles), ProjectRoles: wireRoles(u.ProjectRoles),
		Superuser: u.Superuser, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
	if len(u.Orgs) > 0 {
		w.Orgs = make(map[string]apiv1.UserOrg, len(u.Orgs))
		for o, s := range u.Orgs {
			w.Orgs[o] = apiv1.UserOrg{Groups: s.Groups, Attributes: s.Attributes}
			if p := s.Provisioned; p != nil && u.OrgRoles[o] == p.Role { // else an admin's since
				uo := w.Orgs[o]
				uo.Provisioned = &apiv1.Provisioned{Role: string(p.Role), Groups: p.Groups, Provider: p.Provider, At: p.At}
				w.Orgs[o] = uo
			}
		}
	}
	if s, ok := u.Orgs[org]; ok && org != "" {
		w.Groups, w.Attributes = s.Groups, s.Attributes
	}
	for k, r := range u.Restricted {
		if w.Restricted == nil {
			w.Restricted = map[string][]apiv1.ResourceName{}
		}
		list := make([]apiv1.ResourceName, 0, len(r.Resources))
		for _, x := range r.Resources {
			list = append(list, apiv1.ResourceName{Type: x.Kind, Name: x.Name})
		}
		w.Restricted[k] = list
	}
	return w
}

func wireService(s store.Service) apiv1.Service {
	return apiv1.Service{ID: s.ID, Org: s.Org, Name: s.Name, OrgRole: string(s.OrgRole), ProjectRoles: wireRoles(s.ProjectRoles),
		Attributes: s.Attributes, CreatedBy: s.CreatedBy, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt}
}

func wireAuditEvent(e store.AuditEvent) apiv1.AuditEvent {
	return apiv1.AuditEvent{Time: e.Time, Actor: e.Actor, Action: e.Action, Target: e.Target, Outcome: e.Outcome, Detail: e.Detail}
}

func wirePluginStatus(s plugins.Status) apiv1.PluginStatus {
	return apiv1.PluginStatus{Name: s.Name, Command: s.Command, Healthy: s.Healthy, PID: s.PID,
		Restarts: s.Restarts, Calls: s.Calls, Errors: s.Errors, LastError: s.LastError}
}

func tokenInfo(t store.Token) apiv1.TokenInfo {
	return apiv1.TokenInfo{ID: t.ID.String(), Prefix: t.Prefix, Kind: string(t.Kind), DisplayName: t.DisplayName, CreatedBy: t.CreatedBy,
		CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, LastUsedAt: t.LastUsedAt, LastUsedIP: t.LastUsedIP, LastUsedUserAgent: t.LastUsedUserAgent,
		AllowedNetworks: t.AllowedNetworks, AllowedOrigins: t.AllowedOrigins}
}

// wireRoles converts a role map, keeping nil as nil (omitted on the wire).
func wireRoles(m map[string]policy.Role) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, r := range m {
		out[k] = string(r)
	}
	return out
}

// wireList converts a list; never nil, so that an empty list is [] on the wire, not null.
func wireList[S, W any](list []S, conv func(S) W) []W {
	out := make([]W, 0, len(list))
	for _, v := range list {
		out = append(out, conv(v))
	}
	return out
}
