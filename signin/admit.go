package signin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// ErrNotAdmitted is Admit's refusal of an identity: an unverified email, or an email that is
// none of our users and that no org's sign-in rules admit. The error wrapping it says which.
var ErrNotAdmitted = errors.New("not a user of rill-authd")

// CreatedBy is store.User.CreatedBy of a user sign-in rules created, before the provider's
// name ("signin:okta").
const CreatedBy = "signin:"

// Admit says which user id is, after the orgs' sign-in rules (store.SigninRules):
//
//   - an email the provider has not verified is refused, whoever it is;
//   - an existing user (by email, in any case) is that user;
//   - a new email is refused unless some org's rules admit it: a domain rule for its domain
//     (Rill's whitelisted domains: rilldata/rill admin/users.go CreateOrUpdateUser adds a new
//     user to every org that whitelists their domain, with the domain's role) or a group rule
//     for one of id.Groups. The user is then created (never a superuser) and joins each org
//     that admits them, with the highest role its rules give;
//   - at every sign-in, an org's group rules are applied again to the memberships they manage
//     (see store.Provisioned): a user whose groups at the provider changed gets the new role
//     and attribute groups, joins an org a group rule now admits them to, and leaves one whose
//     rules no longer do. A membership an admin made or changed is never touched.
//
// Every sign-in is audited (user.signin, with the provider), a refused one too, and so is
// every change the rules made (user.provision: created, joined, role, groups, left).
func Admit(ctx context.Context, st store.Store, id Identity) (store.User, error) {
	now := time.Now().UTC()
	email := strings.ToLower(strings.TrimSpace(id.Email))
	ev := store.AuditEvent{Time: now, Actor: "user:" + email, Action: "user.signin",
		Target: "user:" + email, Outcome: "ok", Detail: "provider " + id.Provider}
	refuse := func(why string) (store.User, error) {
		ev.Outcome = "denied: " + why
		_ = st.AppendAudit(ctx, ev) // best effort: the refusal stands either way
		return store.User{}, fmt.Errorf("%w: %s", ErrNotAdmitted, why)
	}
	domain := store.EmailDomain(email)
	switch {
	case email == "":
		return refuse("the provider gave no email address")
	case !usableEmail(strings.TrimSpace(id.Email)): // as given: lower-casing hides broken UTF-8
		// Named quoted in the audit: the store refuses NULs and broken UTF-8 (store.CheckText).
		// As given: lower-cased, "root@İnitech.example" would be named as root@initech.example.
		given := strings.TrimSpace(id.Email)
		quoted := strings.Trim(fmt.Sprintf("%+q", given), `"`)
		ev.Actor, ev.Target = "user:"+quoted, "user:"+quoted
		return refuse(fmt.Sprintf("the provider gave %+q, which is not an email address rill-authd can use", given))
	case !id.EmailVerified:
		return refuse(fmt.Sprintf("provider %s has not verified the email %s", id.Provider, email))
	}
	orgs, err := st.ListOrgs(ctx)
	if err != nil {
		return store.User{}, fmt.Errorf("admit %s: read the sign-in rules: %w", email, err)
	}
	u, err := userByEmail(ctx, st, email, id.Email)
	created := false
	var changes []string
	switch {
	case errors.Is(err, store.ErrNotFound):
		u = store.User{ID: token.NewID(), Email: email, CreatedAt: now, UpdatedAt: now, CreatedBy: CreatedBy + id.Provider}
		changes, _ = apply(&u, orgs, id, domain, true, now)
		if len(changes) == 0 {
			return refuse(fmt.Sprintf("no org's sign-in rules admit %s (domain %s, %d groups)", email, domain, len(id.Groups)))
		}
		err = st.CreateUser(ctx, u)
		if err == nil {
			created = true
			break
		}
		if !errors.Is(err, store.ErrConflict) {
			return store.User{}, fmt.Errorf("admit %s: create the user: %w", email, err)
		}
		// Made at the same moment by another sign-in (or replica): that user is this one.
		changes = nil
		if u, err = userByEmail(ctx, st, email, id.Email); err != nil {
			return store.User{}, fmt.Errorf("admit %s: %w", email, err)
		}
		fallthrough
	case err == nil:
		// Applied to the record as read first, so an unchanged user costs no write; then
		// again inside the update, to the record as it is then.
		probe := cloneUser(u)
		if _, dirty := apply(&probe, orgs, id, domain, false, now); !dirty {
			break
		}
		u, err = st.UpdateUser(ctx, u.ID, func(cur *store.User) error {
			var dirty bool
			if changes, dirty = apply(cur, orgs, id, domain, false, now); dirty {
				cur.UpdatedAt = now
			}
			return nil
		})
		if err != nil {
			return store.User{}, fmt.Errorf("admit %s: apply the sign-in rules: %w", email, err)
		}
	default:
		return store.User{}, fmt.Errorf("admit %s: look up the user: %w", email, err)
	}
	if err := st.AppendAudit(ctx, ev); err != nil {
		return store.User{}, fmt.Errorf("write audit event: %w", err)
	}
	if created || len(changes) > 0 {
		what := "provider " + id.Provider
		if created {
			what += "; created"
		}
		if len(changes) > 0 {
			what += "; " + strings.Join(changes, "; ")
		}
		pe := store.AuditEvent{Time: now, Actor: "user:" + email, Action: "user.provision", Target: "user:" + email, Outcome: "ok", Detail: what}
		if err := st.AppendAudit(ctx, pe); err != nil {
			return store.User{}, fmt.Errorf("write audit event: %w", err)
		}
	}
	return u, nil
}

// usableEmail says whether email is one address: one "@" with text on both sides, at most 254
// bytes, no spaces or control characters. A provider may send anything in a claim; a rule
// must never match the domain of something that only looks like an address ("a@b@acme.io").
func usableEmail(email string) bool {
	at := strings.IndexByte(email, '@')
	if at <= 0 || at != strings.LastIndexByte(email, '@') || at == len(email)-1 || len(email) > 254 || !utf8.ValidString(email) {
		return false
	}
	for _, r := range email {
		if r <= ' ' || r == 0x7f || unicode.IsSpace(r) || unicode.IsControl(r) {
			return false
		}
	}
	return !lowersToASCII(email)
}

// lowersToASCII says whether s holds a letter beyond ASCII that lower-casing turns into an
// ASCII one (U+0130 İ into i, U+212A the Kelvin sign into k). Emails are matched lower-cased,
// so "ceo@acmİ.io", an address at another domain (IDNA maps İ to "i̇", not "i"), would be
// the user ceo@acmi.io and match a domain rule for acmi.io: an address that only looks like
// one of ours once lower-cased is refused.
func lowersToASCII(s string) bool {
	for _, r := range s {
		if r >= utf8.RuneSelf && unicode.ToLower(r) < utf8.RuneSelf {
			return true
		}
	}
	return false
}

// userByEmail finds the user with email (lower case), or, for a record made before emails
// were lower-cased (an import), with the provider's spelling.
func userByEmail(ctx context.Context, st store.Store, email, asGiven string) (store.User, error) {
	u, err := st.GetUserByEmail(ctx, email)
	if errors.Is(err, store.ErrNotFound) && asGiven != email && strings.TrimSpace(asGiven) != "" {
		return st.GetUserByEmail(ctx, strings.TrimSpace(asGiven))
	}
	return u, err
}

// apply makes u's memberships what orgs' rules say for id, and says what it changed, in words
// for the audit log, org by org. dirty is true when anything in the record changed, the
// bookkeeping of store.Provisioned included. A new user (isNew) joins every org whose domain or
// group rules admit them; an existing one only those a group rule admits them to.
//
// A membership is the rules' when UserOrg.Provisioned is set and the org role is still the one
// it records. One an admin changed (another role, or removed) is the admin's: the record is
// dropped and the rules leave it alone.
func apply(u *store.User, orgs []store.Org, id Identity, domain string, isNew bool, now time.Time) (changes []string, dirty bool) {
	for _, o := range orgs { // by name: the audit names orgs in one order
		r := o.SigninRules
		uo := u.Orgs[o.Name]
		cur := u.OrgRoles[o.Name]
		pv := uo.Provisioned
		if pv != nil && (cur == "" || cur != pv.Role) {
			// An admin changed or ended the membership since: it is not the rules' any more.
			uo.Provisioned, pv = nil, nil
			setOrg(u, o.Name, uo)
			dirty = true
		}
		dom := r.DomainGrant(domain)
		g := r.GroupGrant(id.Groups)
		var want policy.Role
		switch {
		case isNew:
			want = higher(dom, g.Role)
		case pv != nil || (cur == "" && g.ByGroup):
			// The rules' membership follows the mapping; a group rule now admits an existing
			// user to an org they are not in.
			want = g.Role
			if g.ByGroup {
				want = higher(g.Role, dom)
			}
		default:
			continue // not the rules' (an admin's membership, or none the rules ask for)
		}
		if pv != nil && !g.ByGroup && dom != "" {
			// No group rule matches any more, but the domain still admits the user: they keep
			// the domain's role as an ordinary member (as a new user at the domain would be).
			uo.Groups = without(uo.Groups, pv.Groups)
			uo.Provisioned = nil
			setOrg(u, o.Name, uo)
			if cur != dom {
				u.OrgRoles[o.Name] = dom
				changes = append(changes, fmt.Sprintf("org %s: role %s -> %s (domain %s; no group rule matches)", o.Name, cur, dom, domain))
			}
			if len(pv.Groups) > 0 {
				changes = append(changes, fmt.Sprintf("org %s: groups %s removed (no group rule matches)", o.Name, strings.Join(pv.Groups, ",")))
			}
			dirty = true
			continue
		}
		if want == "" {
			if pv == nil {
				continue
			}
			// Leave: the org role and the attribute groups the rules gave go; project roles
			// and groups an admin gave stay.
			delete(u.OrgRoles, o.Name)
			uo.Groups = without(uo.Groups, pv.Groups)
			uo.Provisioned = nil
			setOrg(u, o.Name, uo)
			changes = append(changes, fmt.Sprintf("org %s: left (was %s; no group rule matches)", o.Name, cur))
			dirty = true
			continue
		}
		how := "domain " + domain
		if g.ByGroup {
			how = "groups"
		}
		if cur != want {
			if u.OrgRoles == nil {
				u.OrgRoles = map[string]policy.Role{}
			}
			u.OrgRoles[o.Name] = want
			if cur == "" {
				changes = append(changes, fmt.Sprintf("org %s: joined as %s (%s)", o.Name, want, how))
			} else {
				changes = append(changes, fmt.Sprintf("org %s: role %s -> %s (%s)", o.Name, cur, want, how))
			}
			dirty = true
		}
		if !g.ByGroup {
			continue // a domain membership is an ordinary one: no record, no groups
		}
		var old []string
		if pv != nil {
			old = pv.Groups
		}
		groups := union(without(uo.Groups, old), g.Groups)
		if !slices.Equal(groups, sorted(uo.Groups)) {
			changes = append(changes, fmt.Sprintf("org %s: groups [%s] -> [%s]", o.Name, strings.Join(sorted(uo.Groups), ","), strings.Join(groups, ",")))
		}
		if pv == nil || pv.Role != want || !slices.Equal(pv.Groups, g.Groups) || pv.Provider != id.Provider || !slices.Equal(groups, uo.Groups) {
			dirty = true
			uo.Groups = groups
			uo.Provisioned = &store.Provisioned{Role: want, Groups: g.Groups, Provider: id.Provider, At: now}
			setOrg(u, o.Name, uo)
		}
	}
	return changes, dirty
}

func setOrg(u *store.User, org string, uo store.UserOrg) {
	if len(uo.Groups) == 0 {
		uo.Groups = nil
	}
	if len(uo.Groups) == 0 && len(uo.Attributes) == 0 && uo.Provisioned == nil {
		delete(u.Orgs, org)
		return
	}
	if u.Orgs == nil {
		u.Orgs = map[string]store.UserOrg{}
	}
	u.Orgs[org] = uo
}

// higher is the higher of two org roles.
func higher(a, b policy.Role) policy.Role {
	if a.AtMost(b) {
		return b
	}
	return a
}

func without(s, drop []string) []string {
	return slices.DeleteFunc(slices.Clone(s), func(x string) bool { return slices.Contains(drop, x) })
}

func union(a, b []string) []string {
	out := slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(a), b...))))
	if len(out) == 0 {
		return nil
	}
	return out
}

func sorted(s []string) []string {
	out := slices.Sorted(slices.Values(s))
	if len(out) == 0 {
		return nil
	}
	return out
}

// cloneUser copies the parts of u apply writes, so a probe leaves u as it is.
func cloneUser(u store.User) store.User {
	c := u
	c.OrgRoles = make(map[string]policy.Role, len(u.OrgRoles))
	for k, v := range u.OrgRoles {
		c.OrgRoles[k] = v
	}
	c.Orgs = make(map[string]store.UserOrg, len(u.Orgs))
	for k, v := range u.Orgs {
		v.Groups = slices.Clone(v.Groups)
		c.Orgs[k] = v
	}
	return c
}
