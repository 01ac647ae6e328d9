package adminapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
)

// Sign-in rules (issue 28): an org's admins (manage_org) and superusers read and replace the
// rules that say who may sign in with an identity provider and join the org (store.SigninRules;
// signin.Admit applies them).
//
// As Rill's CreateWhitelistedDomain (rilldata/rill admin/server/organizations.go) does, a
// caller who is not a superuser may add only a domain rule for the domain of their own email,
// and never one for a public email domain (gmail.com): otherwise an org admin could let
// strangers in, or claim a domain their company does not own. Rules already in place (a
// superuser's) may be kept, lowered or removed by any org admin, not raised. As there too, a domain the PUT adds
// brings the existing users at it into the org (joinAtNewDomains).
func (a *API) registerSigninRules(mux *http.ServeMux) {
	a.handle(mux, "GET /v1/orgs/{org}/signin-rules", a.getSigninRules)
	a.mutation(mux, "PUT /v1/orgs/{org}/signin-rules", "org.signin_rules", a.setSigninRules)
}

// WireSigninRules is r as the API shows it (lists never null).
func WireSigninRules(r store.SigninRules) apiv1.SigninRules {
	out := apiv1.SigninRules{Domains: []apiv1.SigninDomainRule{}, Groups: []apiv1.SigninGroupRule{}}
	for _, d := range r.Domains {
		out.Domains = append(out.Domains, apiv1.SigninDomainRule{Domain: d.Domain, OrgRole: string(d.OrgRole)})
	}
	for _, g := range r.Groups {
		out.Groups = append(out.Groups, apiv1.SigninGroupRule{Group: g.Group, OrgRole: string(g.OrgRole), AttributeGroups: append([]string{}, g.AttributeGroups...)})
	}
	return out
}

// StoreSigninRules is w as stored, normalized (domains in lower case); Validate it.
func StoreSigninRules(w apiv1.SigninRules) store.SigninRules {
	var r store.SigninRules
	for _, d := range w.Domains {
		r.Domains = append(r.Domains, store.DomainRule{Domain: d.Domain, OrgRole: policy.Role(d.OrgRole)})
	}
	for _, g := range w.Groups {
		r.Groups = append(r.Groups, store.GroupRule{Group: g.Group, OrgRole: policy.Role(g.OrgRole), AttributeGroups: g.AttributeGroups})
	}
	return r.Normalize()
}

func (a *API) getSigninRules(w http.ResponseWriter, r *http.Request, c *caller) error {
	org, err := a.org(r, c, policy.ManageOrg)
	if err != nil {
		return err
	}
	o, err := a.st.GetOrg(r.Context(), org)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, WireSigninRules(o.SigninRules))
	return nil
}

func (a *API) setSigninRules(w http.ResponseWriter, r *http.Request, c *caller) error {
	org, err := a.org(r, c, policy.ManageOrg)
	if err != nil {
		return err
	}
	c.aim("org:" + org)
	var req apiv1.SigninRules
	if err := decode(r, &req); err != nil {
		return err
	}
	rules := StoreSigninRules(req)
	if err := rules.Validate(); err != nil {
		return errf(http.StatusBadRequest, "sign-in rules: %v", err)
	}
	old, err := a.st.GetOrg(r.Context(), org)
	if err != nil {
		return err
	}
	if err := c.mayWhitelist(old.SigninRules, rules); err != nil {
		return err
	}
	o, err := a.st.SetSigninRules(r.Context(), org, rules)
	if err != nil {
		return err
	}
	if err := a.audit(r.Context(), c, "org.signin_rules", "org:"+org+" "+RulesWords(o.SigninRules)); err != nil {
		return err
	}
	out := WireSigninRules(o.SigninRules)
	if out.JoinedUsers, err = a.joinAtNewDomains(r.Context(), c, org, old.SigninRules, o.SigninRules); err != nil {
		return fmt.Errorf("the sign-in rules of org %s are saved, but adding the existing users at their new domains failed after %d (%v): %w",
			org, len(out.JoinedUsers), out.JoinedUsers, err)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// joinAtNewDomains adds to org, with the rule's role, the existing users whose email is at a
// domain next has and prev had not, and who are not members of org yet, as Rill's
// CreateWhitelistedDomain does: a domain rule then means the same for everyone at the domain,
// whether their account is older than the rule or not. Each join is audited user.provision.
// A domain kept from prev adds no one, so a member an admin removed stays removed.
func (a *API) joinAtNewDomains(ctx context.Context, c *caller, org string, prev, next store.SigninRules) ([]string, error) {
	added := map[string]policy.Role{}
	for _, d := range next.Domains {
		if prev.DomainGrant(d.Domain) == "" {
			added[d.Domain] = d.OrgRole
		}
	}
	if len(added) == 0 {
		return nil, nil
	}
	users, err := a.st.ListUsers(ctx)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	slices.SortFunc(users, func(x, y store.User) int { return strings.Compare(x.Email, y.Email) })
	var joined []string
	for _, u := range users {
		domain := store.EmailDomain(u.Email)
		role := added[domain]
		if role == "" || u.Member(org) {
			continue
		}
		changed := false
		_, err := a.st.UpdateUser(ctx, u.ID, func(cur *store.User) error {
			if cur.Member(org) || store.EmailDomain(cur.Email) != domain {
				return nil // joined (or moved) since the list was read
			}
			if cur.OrgRoles == nil {
				cur.OrgRoles = map[string]policy.Role{}
			}
			cur.OrgRoles[org] = role
			cur.UpdatedAt = a.now().UTC()
			changed = true
			return nil
		})
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted since
		}
		if err != nil {
			return joined, fmt.Errorf("add %s: %w", u.Email, err)
		}
		if !changed {
			continue
		}
		joined = append(joined, u.Email)
		detail := strings.TrimSuffix(fmt.Sprintf("domain rule %s: joined org %s as %s; %s", domain, org, role, a.auditDetail(ctx, c)), "; ")
		if err := a.st.AppendAudit(ctx, store.AuditEvent{Time: a.now().UTC(), Actor: c.actor, Action: "user.provision",
			Target: "user:" + u.Email, Outcome: "ok", Detail: detail}); err != nil {
			return joined, fmt.Errorf("write audit event: %w", err)
		}
	}
	return joined, nil
}

// mayWhitelist refuses (403) a domain rule new in next that c may not add: a non-superuser
// may add their own email's domain only, and no public email domain.
func (c *caller) mayWhitelist(prev, next store.SigninRules) error {
	if c.p.Superuser {
		return nil
	}
	for _, d := range next.Domains {
		// A rule kept, or kept with a lower role, stands on the consent of whoever added it.
		// One whose role goes up is a new grant (Rill has no edit: remove and add again): else
		// a superuser's "gmail.com as guest" could become "every gmail.com address is an admin".
		if i := slices.IndexFunc(prev.Domains, func(p store.DomainRule) bool { return p.Domain == d.Domain }); i >= 0 && d.OrgRole.AtMost(prev.Domains[i].OrgRole) {
			continue
		}
		if publicEmailDomains[d.Domain] {
			return errf(http.StatusForbidden, "domain %s is a public email domain: anyone can have an address there, so only a superuser may add it or raise its role", d.Domain)
		}
		if !c.isUser() || store.EmailDomain(c.p.Email) != d.Domain {
			return errf(http.StatusForbidden, "%s may add a domain rule (or raise its role) only for the domain of their own email (as in Rill); ask a superuser to add %s as %s", c.actor, d.Domain, d.OrgRole)
		}
	}
	return nil
}

// publicEmailDomains are domains where anyone can get an address (the largest of those Rill's
// publicemail package lists): a rule for one would admit the world.
var publicEmailDomains = map[string]bool{
	"gmail.com": true, "googlemail.com": true, "outlook.com": true, "hotmail.com": true, "live.com": true,
	"msn.com": true, "yahoo.com": true, "ymail.com": true, "icloud.com": true, "me.com": true, "mac.com": true,
	"aol.com": true, "proton.me": true, "protonmail.com": true, "pm.me": true, "gmx.com": true, "gmx.de": true,
	"gmx.net": true, "web.de": true, "mail.com": true, "yandex.com": true, "yandex.ru": true, "mail.ru": true,
	"qq.com": true, "163.com": true, "126.com": true, "zoho.com": true, "fastmail.com": true, "tutanota.com": true,
	// The same providers' national domains, and other large free providers: an org admin whose
	// own address is at one of them would otherwise admit everyone there.
	"hotmail.co.uk": true, "hotmail.fr": true, "hotmail.de": true, "hotmail.it": true, "hotmail.es": true,
	"outlook.fr": true, "outlook.de": true, "outlook.es": true, "outlook.it": true, "outlook.jp": true,
	"live.co.uk": true, "live.fr": true, "live.de": true, "live.it": true, "live.nl": true, "live.ca": true,
	"yahoo.co.uk": true, "yahoo.fr": true, "yahoo.de": true, "yahoo.it": true, "yahoo.es": true,
	"yahoo.co.jp": true, "yahoo.co.in": true, "yahoo.com.br": true, "yahoo.ca": true, "aol.co.uk": true,
	"gmx.at": true, "gmx.ch": true, "gmx.fr": true, "yandex.ua": true, "ya.ru": true, "rambler.ru": true,
	"protonmail.ch": true, "tuta.io": true, "zohomail.com": true, "hey.com": true, "duck.com": true,
	"naver.com": true, "daum.net": true, "hanmail.net": true, "sina.com": true, "foxmail.com": true,
	"rediffmail.com": true, "t-online.de": true, "freenet.de": true, "orange.fr": true, "wanadoo.fr": true,
	"free.fr": true, "laposte.net": true, "libero.it": true, "virgilio.it": true, "seznam.cz": true,
	"wp.pl": true, "o2.pl": true, "onet.pl": true, "interia.pl": true, "uol.com.br": true, "bol.com.br": true,
	"comcast.net": true, "verizon.net": true, "att.net": true, "sbcglobal.net": true, "btinternet.com": true,
}

// RulesWords is r in one line for the audit log: "domains:acme.io=viewer
// groups:eng=editor(engineering,data)".
func RulesWords(r store.SigninRules) string {
	var d, g []string
	for _, x := range r.Domains {
		d = append(d, x.Domain+"="+string(x.OrgRole))
	}
	for _, x := range r.Groups {
		s := x.Group + "=" + string(x.OrgRole)
		if len(x.AttributeGroups) > 0 {
			s += "(" + strings.Join(x.AttributeGroups, ",") + ")"
		}
		g = append(g, s)
	}
	return fmt.Sprintf("domains:%s groups:%s", strings.Join(d, ","), strings.Join(g, ","))
}
