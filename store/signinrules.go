package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rill-authd/rill-authd/policy"
)

// SigninRules are an org's provisioning rules (issue 28): who may sign in with an identity
// provider without an account made for them first, and what the org grants them. A domain rule
// is Rill's whitelisted domain (rilldata/rill admin/server/organizations.go
// CreateWhitelistedDomain, admin/users.go CreateOrUpdateUser): a new user whose verified email
// is at the domain joins the org with the rule's role. A group rule maps a group the provider
// says the user is in to an org role and to groups (attributes) the org's security policies
// see; it is applied at every sign-in, so a changed mapping at the provider is a changed role
// at the next one. The zero value admits no one.
//
// They live in the org record, so copy-store, backups and restores keep them, and setting them
// is an org change in the feed.
type SigninRules struct {
	Domains []DomainRule `json:"domains,omitempty"`
	Groups  []GroupRule  `json:"groups,omitempty"`
}

// DomainRule admits new users whose email is at Domain (lower case, no "@") as OrgRole.
type DomainRule struct {
	Domain  string      `json:"domain"`
	OrgRole policy.Role `json:"org_role"`
}

// GroupRule gives users in the provider's group Group the org role OrgRole and the groups
// AttributeGroups (the "groups" attribute the org's security policies see).
type GroupRule struct {
	Group           string      `json:"group"`
	OrgRole         policy.Role `json:"org_role"`
	AttributeGroups []string    `json:"attribute_groups,omitempty"`
}

// Limits of a rule set: far above any real org's, low enough that a sign-in reading every
// org's rules stays cheap.
const (
	MaxDomainRules = 100
	MaxGroupRules  = 500
	// MaxGroupName bounds a group name, of the provider's or an attribute group.
	MaxGroupName = 256
	// MaxAttributeGroups bounds the attribute groups of one group rule.
	MaxAttributeGroups = 50
)

// IsZero says whether r admits no one.
func (r SigninRules) IsZero() bool { return len(r.Domains) == 0 && len(r.Groups) == 0 }

// Validate says what is wrong with r, if anything, naming the rule: a domain that is not a
// lower-case DNS name with a dot (no "@", no wildcard), a role that is not an org role, an
// empty or overlong group, a domain or group named twice; and the stored-text checks
// (CheckFields) every record passes.
func (r SigninRules) Validate() error {
	if len(r.Domains) > MaxDomainRules {
		return fmt.Errorf("domains: %d rules, at most %d", len(r.Domains), MaxDomainRules)
	}
	if len(r.Groups) > MaxGroupRules {
		return fmt.Errorf("groups: %d rules, at most %d", len(r.Groups), MaxGroupRules)
	}
	seen := map[string]bool{}
	for i, d := range r.Domains {
		if p := domainProblem(d.Domain); p != "" {
			return fmt.Errorf("domains[%d]: domain %+q %s", i, d.Domain, p)
		}
		if seen[d.Domain] {
			return fmt.Errorf("domains[%d]: domain %q is named twice", i, d.Domain)
		}
		seen[d.Domain] = true
		if !policy.ValidOrgRole(d.OrgRole) {
			return fmt.Errorf("domains[%d] (%s): org_role %+q is not an org role (admin, editor, viewer or guest)", i, d.Domain, d.OrgRole)
		}
	}
	clear(seen)
	for i, g := range r.Groups {
		if p := groupProblem(g.Group); p != "" {
			return fmt.Errorf("groups[%d]: group %+q %s", i, g.Group, p)
		}
		if seen[g.Group] {
			return fmt.Errorf("groups[%d]: group %q is named twice", i, g.Group)
		}
		seen[g.Group] = true
		if !policy.ValidOrgRole(g.OrgRole) {
			return fmt.Errorf("groups[%d] (%s): org_role %+q is not an org role (admin, editor, viewer or guest)", i, g.Group, g.OrgRole)
		}
		if len(g.AttributeGroups) > MaxAttributeGroups {
			return fmt.Errorf("groups[%d] (%s): %d attribute groups, at most %d", i, g.Group, len(g.AttributeGroups), MaxAttributeGroups)
		}
		for _, a := range g.AttributeGroups {
			if p := groupProblem(a); p != "" {
				return fmt.Errorf("groups[%d] (%s): attribute group %+q %s", i, g.Group, a, p)
			}
		}
	}
	// And what every stored text passes (the one validator).
	return CheckFields("sign-in rules", r)
}

// domainProblem says what keeps s from being a domain of a rule, or "".
func domainProblem(s string) string {
	switch {
	case s == "":
		return "is empty"
	case len(s) > 253:
		return "is longer than 253 characters"
	case strings.ContainsRune(s, '@'):
		return "holds an @: give the domain only (acme.io, not ann@acme.io)"
	case !strings.Contains(s, "."):
		return "is not a domain name with a dot (acme.io)"
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "is not a domain name: labels of 1-63 of a-z, 0-9 and -, not starting or ending with -"
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				if c >= 'A' && c <= 'Z' {
					return "is not in lower case"
				}
				return "is not a domain name: labels of 1-63 of a-z, 0-9 and -, not starting or ending with -"
			}
		}
	}
	return ""
}

// groupProblem says what keeps s from being a group name, or "": group names are the
// provider's, so anything printable goes.
func groupProblem(s string) string {
	switch {
	case strings.TrimSpace(s) == "":
		return "is empty"
	case len(s) > MaxGroupName:
		return fmt.Sprintf("is longer than %d bytes", MaxGroupName)
	case strings.TrimSpace(s) != s:
		return "starts or ends with a space"
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			return "holds a control character"
		}
	}
	return ""
}

// Normalize is r as it is stored: domains in lower case, without a leading "@" or trailing
// dot, attribute groups sorted without repeats. Validate the result.
func (r SigninRules) Normalize() SigninRules {
	var out SigninRules
	for _, d := range r.Domains {
		d.Domain = strings.TrimSuffix(strings.TrimPrefix(strings.ToLower(strings.TrimSpace(d.Domain)), "@"), ".")
		d.OrgRole = policy.Role(strings.ToLower(strings.TrimSpace(string(d.OrgRole))))
		out.Domains = append(out.Domains, d)
	}
	for _, g := range r.Groups {
		g.OrgRole = policy.Role(strings.ToLower(strings.TrimSpace(string(g.OrgRole))))
		g.AttributeGroups = slices.Compact(slices.Sorted(slices.Values(g.AttributeGroups)))
		if len(g.AttributeGroups) == 0 {
			g.AttributeGroups = nil
		}
		out.Groups = append(out.Groups, g)
	}
	return out
}

// EmailDomain is the domain of an email address, lower case ("" when it has no "@"): the part
// after the last "@", as Rill's CreateOrUpdateUser reads it.
func EmailDomain(email string) string {
	i := strings.LastIndexByte(email, '@')
	if i < 0 {
		return ""
	}
	return strings.ToLower(email[i+1:])
}

// Grant is what an org's rules give one identity: an org role (none: the rules do not admit
// it) and, from group rules, the groups its security policies see.
type Grant struct {
	Role policy.Role
	// ByGroup says a group rule matched (the grant is re-applied at every sign-in).
	ByGroup bool
	Groups  []string
}

// DomainGrant is the role r gives a user whose email is at domain ("": none).
func (r SigninRules) DomainGrant(domain string) policy.Role {
	for _, d := range r.Domains {
		if d.Domain == domain {
			return d.OrgRole
		}
	}
	return ""
}

// GroupGrant is what r's group rules give a user in groups: the highest role among the rules
// that match, and the union of their attribute groups, sorted. A group matches by exact name,
// as providers spell them.
func (r SigninRules) GroupGrant(groups []string) Grant {
	var g Grant
	for _, rule := range r.Groups {
		if !slices.Contains(groups, rule.Group) {
			continue
		}
		g.ByGroup = true
		if !rule.OrgRole.AtMost(g.Role) {
			g.Role = rule.OrgRole
		}
		g.Groups = append(g.Groups, rule.AttributeGroups...)
	}
	g.Groups = slices.Compact(slices.Sorted(slices.Values(g.Groups)))
	if len(g.Groups) == 0 {
		g.Groups = nil
	}
	return g
}

// Provisioned records what an org's sign-in rules gave a user at their last sign-in: the org
// role and attribute groups, from which provider, when. It tells a membership the rules manage
// from one an admin made: while the user's org role is still Role, the rules own it and the
// next sign-in sets it to the current mapping; once an admin changed it, it is theirs and no
// sign-in touches it again. Groups are the attribute groups the rules added, so the next
// sign-in replaces those and keeps any an admin added.
type Provisioned struct {
	Role     policy.Role `json:"role"`
	Groups   []string    `json:"groups,omitempty"`
	Provider string      `json:"provider,omitempty"`
	At       time.Time   `json:"at"`
}

// SigninRulesStore is the part of Store that keeps orgs' sign-in rules.
type SigninRulesStore interface {
	// SetSigninRules records org's sign-in rules (the zero rules: none) and returns the org.
	// The rules must pass Validate. It is an org change in the feed: no check reads the rules
	// (only a sign-in does, from the store), so replicas' caches drop nothing for it.
	SetSigninRules(ctx context.Context, org string, r SigninRules) (Org, error)
}
