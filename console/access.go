package console

import (
	"net/http"
	"slices"

	"github.com/rill-authd/rill-authd/adminapi"
	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/policy"
)

// pageNeeds is what each org page's list asks of the caller on the org: the admin API's own
// requirements (the constants its handlers check), so that the menu and the org picker offer a
// page exactly to whom the API would answer it. Pages not here are for everyone (My tokens) or
// for superusers (Overview, Audit log: the API's audit list asks a superuser).
var pageNeeds = map[string]policy.Perm{
	"services": adminapi.NeedServices,
	"hygiene":  adminapi.NeedServices,
	"members":  adminapi.NeedMembers,
	// settings: the sign-in rules and token policy, which the API gives manage_org.
	"settings": policy.ManageOrg,
	// Public URLs: an org admin's (manage_org holds manage_magic_auth_tokens on every project).
	"publicurls": adminapi.NeedServices,
}

// principal is the signed-in user as policy sees them, from the roles whoami answered: the
// permissions come from policy's role tables, the same as the API's checks.
func (v *view) principal() *policy.Principal {
	p := &policy.Principal{Kind: policy.KindUser, Superuser: v.Who.Superuser, OrgRoles: map[string]policy.Role{}}
	for org, r := range v.Who.OrgRoles {
		p.OrgRoles[org] = policy.Role(r)
	}
	return p
}

// mayIn reports whether the user may open page on org.
func (v *view) mayIn(page, org string) bool {
	need, ok := pageNeeds[page]
	if !ok {
		return v.May(page)
	}
	return v.principal().AccessTo(org, "").Perms.Has(need)
}

// May reports whether the menu offers page: for an org page, whether some org of the user's
// allows it (a superuser's allow every one).
func (v *view) May(page string) bool {
	switch page {
	case "tokens":
		return true
	case "overview", "audit":
		return v.Who.Superuser
	}
	need, ok := pageNeeds[page]
	if !ok {
		return false
	}
	if v.Who.Superuser {
		return true
	}
	p := v.principal()
	for org := range p.OrgRoles {
		if p.AccessTo(org, "").Perms.Has(need) {
			return true
		}
	}
	return false
}

// MenuItem is one entry of the navigation.
type MenuItem struct{ Page, Label string }

var menu = []MenuItem{{"overview", "Overview"}, {"tokens", "My tokens"}, {"services", "Services"},
	{"publicurls", "Public URLs"}, {"members", "Members"}, {"hygiene", "Token hygiene"}, {"settings", "Org settings"},
	{"audit", "Audit log"}}

// Menu is the navigation the user may follow: no entry leads to a 403.
func (v *view) Menu() []MenuItem {
	out := make([]MenuItem, 0, len(menu))
	for _, m := range menu {
		if v.May(m.Page) {
			out = append(out, m)
		}
	}
	return out
}

// useOrg picks the org page is about: ?org= (or the form's org) when the caller can see it,
// else the first org that allows the page. Orgs lists, for the page's org picker, the orgs
// where the page may be opened.
func (v *view) useOrg(page string) error {
	var orgs []apiv1.Org
	if err := v.call("GET", "/v1/orgs", nil, nil, &orgs); err != nil {
		return err
	}
	visible := make([]string, 0, len(orgs))
	v.Orgs = v.Orgs[:0]
	for _, o := range orgs {
		visible = append(visible, o.Name)
		if v.mayIn(page, o.Name) {
			v.Orgs = append(v.Orgs, o.Name)
		}
	}
	want := v.r.FormValue("org")
	switch {
	case slices.Contains(visible, want):
		v.Org = want // the API says 403 if the role here does not allow the page
	case want != "":
		return &apiError{Status: http.StatusNotFound, Message: "org " + want + " not found, or not visible to you"}
	case len(v.Orgs) > 0:
		v.Org = v.Orgs[0]
	case len(visible) == 0:
		return &apiError{Status: http.StatusForbidden, Message: "you are a member of no org"}
	default:
		v.Org = visible[0] // no org allows the page: the API's 403 says what it lacks
	}
	return nil
}
