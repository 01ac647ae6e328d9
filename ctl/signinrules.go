package ctl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/adminapi/client"
)

// OrgSigninRulesCmd is `rillctl org signin-rules` (issue 28): who may sign in with an identity
// provider and join the org.
type OrgSigninRulesCmd struct {
	Show OrgSigninRulesShowCmd `cmd:"" help:"Show the org's sign-in rules (org admins, superusers)."`
	Set  OrgSigninRulesSetCmd  `cmd:"" help:"Replace the org's sign-in rules with those given by flags or a JSON file (org admins, superusers)."`
}

// OrgSigninRulesShowCmd is `rillctl org signin-rules show`.
type OrgSigninRulesShowCmd struct{ OrgFlag }

// Run shows the rules.
func (c *OrgSigninRulesShowCmd) Run(g *Globals) error {
	return call(g, func(cl *client.Client) (apiv1.SigninRules, error) { return cl.GetSigninRules(g.ctx, c.Org) }, func(r apiv1.SigninRules) {
		printSigninRules(g, c.Org, r)
	})
}

// OrgSigninRulesSetCmd is `rillctl org signin-rules set`. The rules are one set, replaced as a
// whole (as the API does): what is not given is removed, so a run says the whole set.
type OrgSigninRulesSetCmd struct {
	OrgFlag
	Domain []string `name:"domain" sep:"none" placeholder:"DOMAIN=ROLE" help:"Admit new users whose verified email is at DOMAIN, as org role ROLE (admin, editor, viewer or guest), as Rill's whitelisted domains do: --domain acme.io=viewer. A domain not in the rules before also adds the existing users there who are not members yet. Repeat for more domains. A domain other than your own email's needs a superuser."`
	Group  []string `name:"group" sep:"none" placeholder:"GROUP=ROLE[:ATTR,...]" help:"Give users the identity provider puts in GROUP the org role ROLE, and the groups ATTR,... that the org's security policies see: --group eng=editor:engineering,data. Applied at every sign-in, so a user moved between groups gets the new role. Repeat for more groups. The role follows the last =, so a group named CN=eng,OU=groups works; an attribute group holding a comma goes in --file."`
	File   string   `name:"file" placeholder:"FILE" help:"Read the rules from a JSON file ('-': stdin) in the API's shape: {\"domains\":[{\"domain\":\"acme.io\",\"org_role\":\"viewer\"}],\"groups\":[{\"group\":\"eng\",\"org_role\":\"editor\",\"attribute_groups\":[\"engineering\"]}]}. Not with --domain or --group."`
	Clear  bool     `name:"clear" help:"Remove every rule: only users who already exist can sign in."`
}

// Run replaces the rules.
func (c *OrgSigninRulesSetCmd) Run(g *Globals) error {
	flags := len(c.Domain) > 0 || len(c.Group) > 0
	switch {
	case !flags && c.File == "" && !c.Clear:
		return errors.New("nothing to set: give --domain and --group rules, --file with the rules, or --clear to remove them all (set replaces the whole set; see --help)")
	case c.Clear && (flags || c.File != ""):
		return errors.New("--clear removes every rule: give it alone")
	case c.File != "" && flags:
		return errors.New("give the rules either in --file or as --domain and --group flags, not both")
	}
	var rules apiv1.SigninRules
	var err error
	switch {
	case c.File != "":
		rules, err = readSigninRules(g, c.File)
	case flags:
		rules, err = signinRulesFromFlags(c.Domain, c.Group)
	}
	if err != nil {
		return err
	}
	return call(g, func(cl *client.Client) (apiv1.SigninRules, error) { return cl.SetSigninRules(g.ctx, c.Org, rules) }, func(r apiv1.SigninRules) {
		fmt.Fprintf(g.out, "Updated the sign-in rules of org %q.\n", c.Org)
		if n := len(r.JoinedUsers); n > 0 {
			fmt.Fprintf(g.out, "%d existing user(s) at the new domains joined the org: %s\n", n, strings.Join(r.JoinedUsers, ", "))
		}
		printSigninRules(g, c.Org, r)
	})
}

// signinRulesFromFlags reads --domain DOMAIN=ROLE and --group GROUP=ROLE[:ATTR,...] flags.
func signinRulesFromFlags(domains, groups []string) (apiv1.SigninRules, error) {
	r := apiv1.SigninRules{Domains: []apiv1.SigninDomainRule{}, Groups: []apiv1.SigninGroupRule{}}
	for _, d := range domains {
		name, role, ok := strings.Cut(d, "=")
		if !ok || strings.TrimSpace(name) == "" || strings.TrimSpace(role) == "" {
			return r, fmt.Errorf("--domain %q: want DOMAIN=ROLE, as acme.io=viewer", d)
		}
		r.Domains = append(r.Domains, apiv1.SigninDomainRule{Domain: strings.TrimSpace(name), OrgRole: strings.TrimSpace(role)})
	}
	for _, g := range groups {
		i := strings.LastIndex(g, "=")
		if i <= 0 || i == len(g)-1 {
			return r, fmt.Errorf("--group %q: want GROUP=ROLE or GROUP=ROLE:ATTR,..., as eng=editor:engineering,data", g)
		}
		name, rest := g[:i], g[i+1:]
		role, attrs, _ := strings.Cut(rest, ":")
		rule := apiv1.SigninGroupRule{Group: name, OrgRole: strings.TrimSpace(role), AttributeGroups: []string{}}
		for _, a := range strings.Split(attrs, ",") {
			if a = strings.TrimSpace(a); a != "" {
				rule.AttributeGroups = append(rule.AttributeGroups, a)
			}
		}
		r.Groups = append(r.Groups, rule)
	}
	return r, nil
}

// readSigninRules reads the API's JSON shape from path ("-": stdin), refusing unknown fields
// (a misspelt key would otherwise drop a rule without a word).
func readSigninRules(g *Globals, path string) (apiv1.SigninRules, error) {
	var r apiv1.SigninRules
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(g.in)
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return r, fmt.Errorf("read the sign-in rules: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return r, fmt.Errorf("read the sign-in rules from %s: %w (want {\"domains\":[{\"domain\",\"org_role\"}],\"groups\":[{\"group\",\"org_role\",\"attribute_groups\"}]})", path, err)
	}
	return r, nil
}

func printSigninRules(g *Globals, org string, r apiv1.SigninRules) {
	if len(r.Domains) == 0 && len(r.Groups) == 0 {
		fmt.Fprintf(g.out, "No sign-in rules: only users who already exist can sign in to org %q with an identity provider.\n", org)
		return
	}
	if len(r.Domains) > 0 {
		rows := [][]string{}
		for _, d := range r.Domains {
			rows = append(rows, []string{d.Domain, d.OrgRole})
		}
		g.table("DOMAIN\tORG ROLE", rows)
	}
	if len(r.Groups) > 0 {
		if len(r.Domains) > 0 {
			fmt.Fprintln(g.out)
		}
		rows := [][]string{}
		for _, gr := range r.Groups {
			attrs := strings.Join(gr.AttributeGroups, ",")
			if attrs == "" {
				attrs = "-"
			}
			rows = append(rows, []string{gr.Group, gr.OrgRole, attrs})
		}
		g.table("GROUP\tORG ROLE\tATTRIBUTE GROUPS", rows)
	}
}
