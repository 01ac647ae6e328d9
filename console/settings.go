package console

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
)

// The org's settings page: its sign-in rules (issue 28), edited here by the org's admins
// through the API's PUT /v1/orgs/{org}/signin-rules, and its token policy (shown; set with
// rillctl org token-policy set). The rules are edited as text, one rule a line, in the shape
// rillctl's flags take (acme.io = viewer; eng = editor : engineering, data), so the page works
// without script and reads like the CLI.

type settingsData struct {
	Rules       apiv1.SigninRules
	DomainsText string
	GroupsText  string
	// NotAsText is set when the text cannot say the rules exactly: the form is then not
	// offered, since saving it unchanged would split, garble or drop a rule.
	NotAsText bool
	Policy    apiv1.TokenPolicy
}

func (v *view) orgAPIPath(rest string) string { return "/v1/orgs/" + url.PathEscape(v.Org) + rest }

func (c *Console) settings(w http.ResponseWriter, v *view) error {
	v.Nav, v.Title = "settings", "Org settings"
	if err := v.useOrg("settings"); err != nil {
		return err
	}
	d := settingsData{}
	if err := v.call("GET", v.orgAPIPath("/signin-rules"), nil, nil, &d.Rules); err != nil {
		return err
	}
	if err := v.call("GET", v.orgAPIPath("/token-policy"), nil, nil, &d.Policy); err != nil {
		return err
	}
	d.DomainsText, d.GroupsText = rulesText(d.Rules)
	d.NotAsText = !sameRules(d.Rules, d.DomainsText, d.GroupsText)
	if v.Flash != nil && v.Flash.Form != nil { // a refused save: what was typed, to fix
		d.DomainsText, d.GroupsText = v.Flash.Form.Get("domains"), v.Flash.Form.Get("groups")
	}
	v.Data = d
	c.render(w, v, "settings", http.StatusOK)
	return nil
}

func (c *Console) setSigninRules(w http.ResponseWriter, v *view) error {
	if err := v.useOrg("settings"); err != nil {
		return err
	}
	back := v.orgPath(Prefix + "/settings")
	f := v.r.PostForm
	rules, field, err := parseRules(f.Get("domains"), f.Get("groups"))
	if err != nil {
		return v.back(w, back, &flash{Error: err.Error(), Field: field, Form: f})
	}
	var out apiv1.SigninRules
	if err := v.call("PUT", v.orgAPIPath("/signin-rules"), nil, rules, &out); err != nil {
		msg := ""
		if e, ok := err.(*apiError); ok {
			msg = e.Message
		}
		field := "domains"
		if strings.HasPrefix(msg, "sign-in rules: groups") {
			field = "groups"
		}
		if statusOf(err) == http.StatusForbidden && strings.Contains(msg, "domain") && !strings.Contains(msg, "lacks") {
			// A domain this admin may not add (not their own, or public): said on the field.
			return v.back(w, back, &flash{Error: msg, Field: field, Form: f})
		}
		return v.refused(w, back, field, err)
	}
	notice := fmt.Sprintf("Sign-in rules of %s saved: %d domain and %d group rule(s).", v.Org, len(out.Domains), len(out.Groups))
	if len(out.JoinedUsers) > 0 {
		notice += fmt.Sprintf(" %d existing user(s) at the new domains joined: %s.", len(out.JoinedUsers), strings.Join(out.JoinedUsers, ", "))
	}
	return v.back(w, back, &flash{Notice: notice})
}

// rulesText is r as the form's two fields show it.
func rulesText(r apiv1.SigninRules) (domains, groups string) {
	var d, g strings.Builder
	for _, x := range r.Domains {
		fmt.Fprintf(&d, "%s = %s\n", x.Domain, x.OrgRole)
	}
	for _, x := range r.Groups {
		fmt.Fprintf(&g, "%s = %s", x.Group, x.OrgRole)
		if len(x.AttributeGroups) > 0 {
			fmt.Fprintf(&g, " : %s", strings.Join(x.AttributeGroups, ", "))
		}
		g.WriteByte('\n')
	}
	return d.String(), g.String()
}

// sameRules says whether the text of r (rulesText) reads back as r. It does not when a name
// holds what the text uses as syntax: an attribute group with a comma or an = (the API and
// rillctl --file take them), a group starting with # (a comment line).
func sameRules(r apiv1.SigninRules, domains, groups string) bool {
	back, _, err := parseRules(domains, groups)
	if err != nil || len(back.Domains) != len(r.Domains) || len(back.Groups) != len(r.Groups) {
		return false
	}
	for i, d := range r.Domains {
		if back.Domains[i] != d {
			return false
		}
	}
	for i, g := range r.Groups {
		b := back.Groups[i]
		if b.Group != g.Group || b.OrgRole != g.OrgRole || !slices.Equal(b.AttributeGroups, g.AttributeGroups) {
			return false
		}
	}
	return true
}

// parseRules reads the form's fields: a domain rule a line (DOMAIN = ROLE), a group rule a
// line (GROUP = ROLE [: ATTR, ...]; the role follows the last =, so a group named
// CN=eng,OU=groups works); empty lines and lines starting with # are skipped. A malformed line
// is named with its field, for the form to show it there; the API judges the rest.
func parseRules(domains, groups string) (apiv1.SigninRules, string, error) {
	r := apiv1.SigninRules{Domains: []apiv1.SigninDomainRule{}, Groups: []apiv1.SigninGroupRule{}}
	for i, l := range strings.Split(domains, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		name, role, ok := strings.Cut(l, "=")
		if !ok || strings.TrimSpace(name) == "" || strings.TrimSpace(role) == "" {
			return r, "domains", fmt.Errorf("domain rules, line %d (%q): want DOMAIN = ROLE, as acme.io = viewer", i+1, l)
		}
		r.Domains = append(r.Domains, apiv1.SigninDomainRule{Domain: strings.TrimSpace(name), OrgRole: strings.TrimSpace(role)})
	}
	for i, l := range strings.Split(groups, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		eq := strings.LastIndex(l, "=")
		if eq <= 0 || strings.TrimSpace(l[:eq]) == "" || strings.TrimSpace(l[eq+1:]) == "" {
			return r, "groups", fmt.Errorf("group rules, line %d (%q): want GROUP = ROLE or GROUP = ROLE : ATTRIBUTE GROUP, ..., as eng = editor : engineering, data", i+1, l)
		}
		role, attrs, _ := strings.Cut(l[eq+1:], ":")
		rule := apiv1.SigninGroupRule{Group: strings.TrimSpace(l[:eq]), OrgRole: strings.TrimSpace(role), AttributeGroups: []string{}}
		for _, a := range strings.Split(attrs, ",") {
			if a = strings.TrimSpace(a); a != "" {
				rule.AttributeGroups = append(rule.AttributeGroups, a)
			}
		}
		r.Groups = append(r.Groups, rule)
	}
	return r, "", nil
}
