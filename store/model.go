package store

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/token"
)

// Org is a Rill organization. Its name is its slug.
type Org struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	// TokenPolicy bounds the lifetimes of tokens issued for the org (see TokenPolicy); the
	// zero policy bounds nothing. It lives in the org record so copy-store and backups keep it.
	TokenPolicy TokenPolicy `json:"token_policy,omitzero"`
	// SigninRules say who may sign in with an identity provider and join the org (see
	// SigninRules); the zero rules admit no one.
	SigninRules SigninRules `json:"signin_rules,omitzero"`
}

// Project belongs to one org. The runtime fields describe its prod deployment, as Rill's
// deployments table does (imported from it); empty ones fall back to the daemon's flags.
type Project struct {
	// ID is the project's UUID: Rill's for an imported project, one of ours for a project made
	// here; empty for a project made before projects had one. It is part of the subject of
	// runtime JWTs for external users (ExternalSubject).
	ID        string    `json:"id,omitempty"`
	Org       string    `json:"org"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	// RuntimeHost is the URL clients reach the runtime at (deployments.runtime_host).
	RuntimeHost string `json:"runtime_host,omitempty"`
	// InstanceID is the runtime instance of the prod deployment (deployments.runtime_instance_id):
	// the key of the ins claim of runtime JWTs.
	InstanceID string `json:"instance_id,omitempty"`
	// RuntimeAudience is the aud the runtime expects (deployments.runtime_audience).
	RuntimeAudience string `json:"runtime_audience,omitempty"`
	// ProdBranch is the prod deployment's branch (deployments.branch): the credentials endpoint
	// refuses any other.
	ProdBranch string `json:"prod_branch,omitempty"`
}

// Runtime returns the project's runtime host, instance id and audience, each the default given
// when the project has none of its own.
func (p Project) Runtime(host, instance, audience string) (string, string, string) {
	return cmp.Or(p.RuntimeHost, host), cmp.Or(p.InstanceID, instance), cmp.Or(p.RuntimeAudience, audience)
}

// User is a person. Identity (id, email, display name, superuser) is global; everything else is
// per org, set by that org and seen only by it: OrgRoles is keyed by org, ProjectRoles by
// "org/project", Orgs (groups and custom attributes) by org. A user in two orgs is two slices.
//
// Records written before Orgs existed held one global "groups" and "attributes": they read as
// belonging to every org the user was a member of in that record (see UnmarshalJSON).
type User struct {
	ID           string                 `json:"id"`
	Email        string                 `json:"email"`
	DisplayName  string                 `json:"display_name,omitempty"`
	OrgRoles     map[string]policy.Role `json:"org_roles,omitempty"`
	ProjectRoles map[string]policy.Role `json:"project_roles,omitempty"`
	Orgs         map[string]UserOrg     `json:"orgs,omitempty"`
	// Restricted limits some of ProjectRoles (same keys) to resources: see Restricted.
	Restricted map[string]Restricted `json:"restricted,omitempty"`
	Superuser  bool                  `json:"superuser,omitempty"`
	CreatedAt  time.Time             `json:"created_at"`
	UpdatedAt  time.Time             `json:"updated_at"`
	// CreatedBy says what made the record when that matters later: "rill-import" for a user
	// an import brought from Rill (and may prune again).
	CreatedBy string `json:"created_by,omitempty"`
}

// UserOrg is what one org set for a user: the groups and custom attributes its security
// policies see.
type UserOrg struct {
	Groups     []string       `json:"groups,omitempty"`
	Attributes map[string]any `json:"attributes,omitempty"`
	// Provisioned is what the org's sign-in rules gave the user at their last sign-in (nil:
	// the membership is not the rules'): see Provisioned.
	Provisioned *Provisioned `json:"provisioned,omitempty"`
}

// ProjectKey is the key of User.ProjectRoles for a project.
func ProjectKey(org, project string) string { return org + "/" + project }

// Member reports whether u holds a role in org, directly or on one of its projects.
func (u *User) Member(org string) bool {
	if org == "" {
		return false
	}
	if u.OrgRoles[org] != "" {
		return true
	}
	for k := range u.ProjectRoles {
		if strings.HasPrefix(k, org+"/") {
			return true
		}
	}
	return false
}

// MemberOrgs lists the orgs u is a member of, sorted.
func (u *User) MemberOrgs() []string {
	var out []string
	for o, r := range u.OrgRoles {
		if r != "" {
			out = append(out, o)
		}
	}
	for k := range u.ProjectRoles {
		if o, _, ok := strings.Cut(k, "/"); ok && !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	slices.Sort(out)
	return out
}

// Only is u as org sees it: its identity and org's slice, nothing of any other org. Its maps
// and slices are its own (attribute values are shared).
func (u *User) Only(org string) User {
	out := User{ID: u.ID, Email: u.Email, DisplayName: u.DisplayName, Superuser: u.Superuser, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
	if r := u.OrgRoles[org]; r != "" {
		out.OrgRoles = map[string]policy.Role{org: r}
	}
	for k, r := range u.ProjectRoles {
		if strings.HasPrefix(k, org+"/") {
			if out.ProjectRoles == nil {
				out.ProjectRoles = map[string]policy.Role{}
			}
			out.ProjectRoles[k] = r
		}
	}
	out.Restricted = u.restrictedIn(org)
	if s, ok := u.Orgs[org]; ok {
		out.Orgs = map[string]UserOrg{org: {Groups: slices.Clone(s.Groups), Attributes: maps.Clone(s.Attributes), Provisioned: s.Provisioned.clone()}}
	}
	return out
}

// UnmarshalJSON reads a user record, also in the shape written before per-org groups and
// attributes: its global "groups" and "attributes" were set by some org we can no longer tell,
// and every org the user was in saw them, so each of those orgs keeps its own copy (nothing new
// is shown to anyone, and no policy loses a fact it relied on). A user in no org keeps none. The
// next write of the record stores the new shape, so later membership changes copy nothing.
func (u *User) UnmarshalJSON(b []byte) error {
	type plain User // without this method
	var v struct {
		plain
		Groups     json.RawMessage `json:"groups"`
		Attributes json.RawMessage `json:"attributes"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("user record: %w", err)
	}
	*u = User(v.plain)
	var legacy UserOrg
	if err := legacy.decode(v.Groups, v.Attributes); err != nil {
		return err
	}
	if len(legacy.Groups) == 0 && len(legacy.Attributes) == 0 {
		return nil
	}
	for _, org := range u.MemberOrgs() {
		if _, set := u.Orgs[org]; set {
			continue // written in the new shape already: it wins
		}
		var s UserOrg // decoded again: each org's copy is its own, nested values too
		if err := s.decode(v.Groups, v.Attributes); err != nil {
			return err
		}
		if u.Orgs == nil {
			u.Orgs = map[string]UserOrg{}
		}
		u.Orgs[org] = s
	}
	return nil
}

func (s *UserOrg) decode(groups, attrs json.RawMessage) error {
	if len(groups) > 0 {
		if err := json.Unmarshal(groups, &s.Groups); err != nil {
			return fmt.Errorf("user record: groups: %w", err)
		}
	}
	if len(attrs) > 0 {
		if err := json.Unmarshal(attrs, &s.Attributes); err != nil {
			return fmt.Errorf("user record: attributes: %w", err)
		}
	}
	return nil
}

// Service is a service account of an org. ProjectRoles is keyed by project name.
type Service struct {
	ID           string                 `json:"id"`
	Org          string                 `json:"org"`
	Name         string                 `json:"name"`
	OrgRole      policy.Role            `json:"org_role,omitempty"`
	ProjectRoles map[string]policy.Role `json:"project_roles,omitempty"`
	Attributes   map[string]any         `json:"attributes,omitempty"`
	CreatedBy    string                 `json:"created_by,omitempty"`
	CreatedAt    time.Time              `json:"created_at"`
	UpdatedAt    time.Time              `json:"updated_at"`
}

// Token is the stored record of a user or service token. It never holds the secret, only its
// SHA-256.
type Token struct {
	ID          token.ID   `json:"id"`
	Kind        token.Kind `json:"kind"`
	OwnerID     string     `json:"owner_id"`
	DisplayName string     `json:"display_name,omitempty"`
	Prefix      string     `json:"prefix"`
	Hash        token.Hash `json:"hash"`
	CreatedBy   string     `json:"created_by,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   time.Time  `json:"expires_at,omitzero"`
	LastUsedAt  time.Time  `json:"last_used_at,omitzero"`
	// LastUsedIP and LastUsedUserAgent are where the last use that said so came from: the
	// client address (canonical IP text) and its User-Agent (CleanUserAgent), written with
	// LastUsedAt by RecordUses, off the check path.
	LastUsedIP        string `json:"last_used_ip,omitempty"`
	LastUsedUserAgent string `json:"last_used_user_agent,omitempty"`
	// AllowedNetworks, when set, are the only networks (CIDRs, canonical: see
	// NormalizeNetworks) a check may present the token from; AllowedOrigins the only web
	// origins (scheme://host[:port]) of the page it is used on. Empty: anywhere.
	AllowedNetworks []string `json:"allowed_networks,omitempty"`
	AllowedOrigins  []string `json:"allowed_origins,omitempty"`
	// Magic is what a magic token (Kind token.Magic: a public URL) grants; nil for every
	// other kind. A magic token's owner is its project: OwnerID is ProjectKey(org, project).
	Magic *Magic `json:"magic,omitempty"`
	// IssuedBy, set only on a user token that represents its owner (Rill's
	// representing_user_id: a superuser acting as another user, rilldata/rill
	// admin/server/auth_tokens.go IssueRepresentativeAuthToken), is the superuser who issued it.
	// The owner stays the user the token acts as, as an import of Rill's representing tokens
	// records them (rillimport/read_tokens.go): the check path resolves the owner alone, and
	// every cascade and cache drop keyed by the owner holds for it unchanged. Deleting the
	// issuer revokes the token too (both engines keep an index by issuer).
	IssuedBy string `json:"issued_by,omitempty"`
}

// Represents says whether t is a token a superuser issued to act as its owner.
func (t *Token) Represents() bool { return t.IssuedBy != "" }

// Magic is a public URL: the part of a magic token record that says what it opens, after
// Rill's magic_auth_tokens table (rilldata/rill admin/database/database.go MagicAuthToken;
// admin/database/postgres/migrations: resources, metrics_view_filter_jsons, fields, state,
// display_name, internal, attributes, created_by_user_id). The token's display name is
// Token.DisplayName, its ttl Token.ExpiresAt (zero: never expires).
type Magic struct {
	Org     string `json:"org"`
	Project string `json:"project"`
	// Resources are the resources it opens, each with what it needs (one transitive access
	// each); none: nothing (deny-all).
	Resources []token.ResourceName `json:"resources,omitempty"`
	// Filters maps a metrics view name to a row filter on it: a rill.runtime.v1.Expression in
	// protojson, as Rill stores it (at most MaxMagicFilters bytes in all). "*" is every
	// metrics view (Rill's older single filter).
	Filters map[string]string `json:"metrics_view_filters,omitempty"`
	// Fields, when set, are the only fields (dimensions and measures) it sees.
	Fields []string `json:"fields,omitempty"`
	// State is the dashboard state the URL opens with (opaque to us, as to Rill's admin).
	State string `json:"state,omitempty"`
	// Attributes are its creator's attributes when it was made: the runtime sees them as the
	// URL's, even after the creator's own change.
	Attributes map[string]any `json:"attributes,omitempty"`
	// CreatedByUserID and CreatedByEmail name the user who made it ("" for a service).
	CreatedByUserID string `json:"created_by_user_id,omitempty"`
	CreatedByEmail  string `json:"created_by_email,omitempty"`
	// Internal marks a token Rill made for itself (reports): never listed.
	Internal bool `json:"internal,omitempty"`
}

// MaxMagicFilters is the most bytes a magic token's filters may take in all (Rill's
// magicAuthTokenMetricsViewFilterMaxSize in admin/server/magic_tokens.go).
const MaxMagicFilters = 1024

// FiltersSize is the bytes m's filters take.
func (m *Magic) FiltersSize() int {
	n := 0
	for _, f := range m.Filters {
		n += len(f)
	}
	return n
}

// MagicOwner is the OwnerID of the magic tokens of a project.
func MagicOwner(org, project string) string { return ProjectKey(org, project) }

// Expired reports whether the token has an expiry at or before now.
func (t *Token) Expired(now time.Time) bool { return !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt) }

// SigningKey is an RSA key that signs JWTs. PrivateKey is PKCS#8 DER. A key is in the JWKS from
// CreatedAt, signs from ActivatesAt until a key with a later activation takes over (keys/ decides
// which signs from these times alone, so every replica picks the same one), then verifies until
// every token it signed has expired. RetiredAt takes it out at once.
type SigningKey struct {
	KID        string    `json:"kid"`
	PrivateKey []byte    `json:"private_key"`
	CreatedAt  time.Time `json:"created_at"`
	// ActivatesAt is when it starts to sign; zero: at CreatedAt (keys made before activation
	// times existed, and emergency rotations).
	ActivatesAt time.Time `json:"activates_at,omitzero"`
	// SignedUntil is when it stopped signing, as rotations recorded it before keys had
	// activation times (stored as retired_at): it then verifies until its tokens expired, like
	// a key that a later one took over from. New writes leave it zero.
	SignedUntil time.Time `json:"retired_at,omitzero"`
	// RetiredAt is when an operator retired it (a compromised key): it left the JWKS then, and
	// verifies and signs nothing from then on.
	RetiredAt time.Time `json:"withdrawn_at,omitzero"`
}

// Issuer is the iss every replica's runtime JWTs carry, recorded in the store so that replicas
// agree on it.
type Issuer struct {
	URL string `json:"url"`
	// Default says URL was the default of the daemon that recorded it (no --issuer or
	// --public-url), so a daemon given one may replace it.
	Default    bool      `json:"default,omitempty"`
	RecordedAt time.Time `json:"recorded_at"`
}

// Same reports whether i and o name the same issuer the same way (their times aside).
func (i Issuer) Same(o Issuer) bool { return i.URL == o.URL && i.Default == o.Default }

// AuditEvent records one admin mutation or notable use.
type AuditEvent struct {
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`
	Action  string    `json:"action"`
	Target  string    `json:"target"`
	Outcome string    `json:"outcome"`
	Detail  string    `json:"detail,omitempty"`
}

// AuditFilter selects audit events; zero fields match everything.
type AuditFilter struct {
	Since time.Time
	Actor string
	Limit int
}

// NewToken is the record of a freshly issued tok: the one place a token record is built, so
// every issuer stores the same fields (the hash, never the secret). A zero ttl never expires.
func NewToken(tok token.Token, owner, displayName, createdBy string, now time.Time, ttl time.Duration) Token {
	t := Token{ID: tok.ID, Kind: tok.Kind, OwnerID: owner, DisplayName: displayName, Prefix: tok.Display(),
		Hash: tok.Hash(), CreatedBy: createdBy, CreatedAt: now.UTC()}
	if ttl > 0 {
		t.ExpiresAt = t.CreatedAt.Add(ttl)
	}
	return t
}

func (p *Provisioned) clone() *Provisioned {
	if p == nil {
		return nil
	}
	c := *p
	c.Groups = slices.Clone(p.Groups)
	return &c
}
