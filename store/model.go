package store

import (
	"cmp"
	"time"

	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/token"
)

// Org is a Rill organization. Its name is its slug.
type Org struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// Project belongs to one org. The runtime fields describe its prod deployment, as Rill's
// deployments table does (imported from it); empty ones fall back to the daemon's flags.
type Project struct {
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

// User is a person. ProjectRoles is keyed by "org/project".
type User struct {
	ID           string                 `json:"id"`
	Email        string                 `json:"email"`
	DisplayName  string                 `json:"display_name,omitempty"`
	OrgRoles     map[string]policy.Role `json:"org_roles,omitempty"`
	ProjectRoles map[string]policy.Role `json:"project_roles,omitempty"`
	Groups       []string               `json:"groups,omitempty"`
	Attributes   map[string]any         `json:"attributes,omitempty"`
	Superuser    bool                   `json:"superuser,omitempty"`
	CreatedAt    time.Time              `json:"created_at"`
	UpdatedAt    time.Time              `json:"updated_at"`
	// CreatedBy says what made the record when that matters later: "rill-import" for a user
	// an import brought from Rill (and may prune again).
	CreatedBy string `json:"created_by,omitempty"`
}

// ProjectKey is the key of User.ProjectRoles for a project.
func ProjectKey(org, project string) string { return org + "/" + project }

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
	ID          string     `json:"id"`
	Kind        token.Kind `json:"kind"`
	OwnerID     string     `json:"owner_id"`
	DisplayName string     `json:"display_name,omitempty"`
	Prefix      string     `json:"prefix"`
	Hash        token.Hash `json:"hash"`
	CreatedBy   string     `json:"created_by,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   time.Time  `json:"expires_at,omitzero"`
	LastUsedAt  time.Time  `json:"last_used_at,omitzero"`
}

// Expired reports whether the token has an expiry at or before now.
func (t *Token) Expired(now time.Time) bool { return !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt) }

// SigningKey is an RSA key that signs JWTs. PrivateKey is PKCS#8 DER.
type SigningKey struct {
	KID        string    `json:"kid"`
	PrivateKey []byte    `json:"private_key"`
	CreatedAt  time.Time `json:"created_at"`
	RetiredAt  time.Time `json:"retired_at,omitzero"`
}

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
	t := Token{ID: tok.ID.String(), Kind: tok.Kind, OwnerID: owner, DisplayName: displayName, Prefix: tok.Display(),
		Hash: tok.Hash(), CreatedBy: createdBy, CreatedAt: now.UTC()}
	if ttl > 0 {
		t.ExpiresAt = t.CreatedAt.Add(ttl)
	}
	return t
}
