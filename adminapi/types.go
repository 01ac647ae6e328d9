package adminapi

import (
	"time"

	"github.com/rill-authd/rill-authd/store"
)

// Request and response bodies of the API, shared with the client.

// NameRequest creates an org or a project.
type NameRequest struct {
	Name string `json:"name"`
}

// UserRequest creates a user, optionally with roles in one org.
type UserRequest struct {
	Email       string         `json:"email"`
	DisplayName string         `json:"display_name,omitempty"`
	Org         string         `json:"org,omitempty"`
	OrgRole     string         `json:"org_role,omitempty"`
	Project     string         `json:"project,omitempty"`
	ProjectRole string         `json:"project_role,omitempty"`
	Groups      []string       `json:"groups,omitempty"`
	Attributes  map[string]any `json:"attributes,omitempty"`
}

// RoleRequest sets or removes a role: the org role (no Project), or a project role.
type RoleRequest struct {
	Org         string `json:"org,omitempty"` // users only; a service's org is in the path
	OrgRole     string `json:"org_role,omitempty"`
	Project     string `json:"project,omitempty"`
	ProjectRole string `json:"project_role,omitempty"`
	Remove      bool   `json:"remove,omitempty"`
}

// ServiceRequest creates a service.
type ServiceRequest struct {
	Name        string         `json:"name"`
	OrgRole     string         `json:"org_role,omitempty"`
	Project     string         `json:"project,omitempty"`
	ProjectRole string         `json:"project_role,omitempty"`
	Attributes  map[string]any `json:"attributes,omitempty"`
}

// ServiceEdit renames a service or replaces its attributes; absent fields stay as they are.
type ServiceEdit struct {
	NewName    string          `json:"new_name,omitempty"`
	Attributes *map[string]any `json:"attributes,omitempty"`
}

// TokenRequest issues a user token; UserEmail (superusers only) issues one for someone else.
type TokenRequest struct {
	DisplayName string `json:"display_name"`
	TTLMinutes  int    `json:"ttl_minutes,omitempty"`
	UserEmail   string `json:"user_email,omitempty"`
}

// TokenInfo describes a token without its secret.
type TokenInfo struct {
	ID          string    `json:"id"`
	Prefix      string    `json:"prefix"`
	Kind        string    `json:"kind"`
	DisplayName string    `json:"display_name,omitempty"`
	CreatedBy   string    `json:"created_by,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	ExpiresAt   time.Time `json:"expires_at,omitzero"`
	LastUsedAt  time.Time `json:"last_used_at,omitzero"`
}

// IssuedToken is a new token: the only time its secret is shown.
type IssuedToken struct {
	Token string `json:"token"`
	TokenInfo
}

// ServiceCreated is the answer to creating a service.
type ServiceCreated struct {
	Service store.Service `json:"service"`
	Token   IssuedToken   `json:"token"`
}

// ServiceDetail is a service with its tokens.
type ServiceDetail struct {
	store.Service
	Tokens []TokenInfo `json:"tokens"`
}

// Whoami is the caller as the API sees them.
type Whoami struct {
	Kind         string            `json:"kind"`
	Subject      string            `json:"subject"`
	ID           string            `json:"id"`
	Superuser    bool              `json:"superuser,omitempty"`
	OrgRoles     map[string]string `json:"org_roles,omitempty"`
	ProjectRoles map[string]string `json:"project_roles,omitempty"`
	TokenID      string            `json:"token_id"`
}

// Revoked names a revoked token.
type Revoked struct {
	Revoked []TokenInfo `json:"revoked"`
}

func tokenInfo(t store.Token) TokenInfo {
	return TokenInfo{ID: t.ID, Prefix: t.Prefix, Kind: string(t.Kind), DisplayName: t.DisplayName, CreatedBy: t.CreatedBy,
		CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, LastUsedAt: t.LastUsedAt}
}
