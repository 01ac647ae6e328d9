// Package apiv1 holds the request and response bodies of rill-authd's admin API, version 1: the
// contract with every client. It imports only the standard library, so that a client links no
// server code; the server converts its own types to these at the edge.
//
// Field names, omitempty/omitzero and types here are the wire format: changing one changes the
// API.
package apiv1

import "time"

// Error is the body of every failed request: {"code": <gRPC code>, "message": "..."}, the shape
// of the check's denials and of Rill's own API.
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// Org is an org.
type Org struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// Project belongs to one org.
type Project struct {
	Org       string    `json:"org"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// User is a person as the caller may see them: roles, groups and attributes are set per org,
// and a response shows only the org the request is about (superusers: every org).
// ProjectRoles is keyed by "org/project"; Orgs holds each shown org's groups and attributes;
// Groups and Attributes repeat those of the org the request names, if it names one.
type User struct {
	ID           string             `json:"id"`
	Email        string             `json:"email"`
	DisplayName  string             `json:"display_name,omitempty"`
	OrgRoles     map[string]string  `json:"org_roles,omitempty"`
	ProjectRoles map[string]string  `json:"project_roles,omitempty"`
	Groups       []string           `json:"groups,omitempty"`
	Attributes   map[string]any     `json:"attributes,omitempty"`
	Orgs         map[string]UserOrg `json:"orgs,omitempty"`
	// Restricted lists, by "org/project", the project roles limited to some resources (an
	// empty list: to none); see ResourcesRequest.
	Restricted map[string][]ResourceName `json:"restricted,omitempty"`
	Superuser  bool                      `json:"superuser,omitempty"`
	CreatedAt  time.Time                 `json:"created_at"`
	UpdatedAt  time.Time                 `json:"updated_at"`
}

// UserOrg is what one org set for a user: the groups and custom attributes its security
// policies see.
type UserOrg struct {
	Groups     []string       `json:"groups,omitempty"`
	Attributes map[string]any `json:"attributes,omitempty"`
	// Provisioned, when set, says the org role is the org's sign-in rules' (a group rule gave
	// it at the user's last sign-in, and no admin changed it since): the next sign-in sets it
	// to the rules' mapping again. Absent: the membership is an admin's, and no rule changes it.
	Provisioned *Provisioned `json:"provisioned,omitempty"`
}

// Provisioned is what an org's group rules gave a user at their last sign-in.
type Provisioned struct {
	Role string `json:"role"`
	// Groups are the attribute groups the rules gave (others in UserOrg.Groups are an admin's).
	Groups   []string  `json:"groups,omitempty"`
	Provider string    `json:"provider,omitempty"`
	At       time.Time `json:"at"`
}

// Service is a service account of an org. ProjectRoles is keyed by project name.
type Service struct {
	ID           string            `json:"id"`
	Org          string            `json:"org"`
	Name         string            `json:"name"`
	OrgRole      string            `json:"org_role,omitempty"`
	ProjectRoles map[string]string `json:"project_roles,omitempty"`
	Attributes   map[string]any    `json:"attributes,omitempty"`
	CreatedBy    string            `json:"created_by,omitempty"`
	CreatedAt    time.Time         `json:"created_at"`
	UpdatedAt    time.Time         `json:"updated_at"`
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

// PluginStatus is an attribute plugin's state.
type PluginStatus struct {
	Name      string `json:"name"`
	Command   string `json:"command"`
	Healthy   bool   `json:"healthy"`
	PID       int    `json:"pid,omitempty"`
	Restarts  int64  `json:"restarts"`
	Calls     int64  `json:"calls"`
	Errors    int64  `json:"errors"`
	LastError string `json:"last_error,omitempty"`
}

// NameRequest creates an org or a project.
type NameRequest struct {
	Name string `json:"name"`
}

// UserRequest creates a user, or adds one who exists to Org (as guest unless a role is given);
// Groups and Attributes are that org's.
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
	// TTLMinutes is the lifetime of the token the service is created with (0: never expires).
	TTLMinutes int `json:"ttl_minutes,omitempty"`
	// AllowedNetworks bind the service's first token to these networks (CIDRs).
	AllowedNetworks []string `json:"allowed_networks,omitempty"`
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
	// AllowedNetworks, when set, are the only networks (IPv4/IPv6 CIDRs, or single addresses)
	// the token may be used from; a check from elsewhere is refused 403 network_not_allowed.
	AllowedNetworks []string `json:"allowed_networks,omitempty"`
}

// ServiceTokenRequest is the optional body of issuing a service token.
type ServiceTokenRequest struct {
	// TTLMinutes is the token's lifetime (0: never expires; the org's token policy may cap it).
	TTLMinutes int `json:"ttl_minutes,omitempty"`
	// AllowedNetworks bind the token to these networks (CIDRs).
	AllowedNetworks []string `json:"allowed_networks,omitempty"`
}

// TokenLimitsEdit changes where a token may be used (PATCH /v1/tokens/{id}, PATCH
// /v1/orgs/{org}/services/{name}/tokens/{id}): an absent field stays as it is, an empty list
// removes the constraint. AllowedOrigins only for public URLs.
type TokenLimitsEdit struct {
	AllowedNetworks *[]string `json:"allowed_networks,omitempty"`
	AllowedOrigins  *[]string `json:"allowed_origins,omitempty"`
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
	// LastUsedIP and LastUsedUserAgent are where the last use that said so came from: the
	// client's address (Envoy's source address, the connection's in HTTP mode) and its
	// User-Agent (cleaned, at most 256 bytes). Written with LastUsedAt, about once a minute.
	LastUsedIP        string `json:"last_used_ip,omitempty"`
	LastUsedUserAgent string `json:"last_used_user_agent,omitempty"`
	// BeyondPolicy, when set, says how the token outlives its org's token policy (it was
	// issued before the policy, or under a looser one): it still works until it expires or is
	// revoked.
	BeyondPolicy string `json:"beyond_policy,omitempty"`
	// AllowedNetworks and AllowedOrigins are where it may be used (none: anywhere).
	AllowedNetworks []string `json:"allowed_networks,omitempty"`
	AllowedOrigins  []string `json:"allowed_origins,omitempty"`
	// RepresentingUserID and RepresentingEmail, on a user token a superuser issued to act as
	// another user (rillctl sudo user assume; Rill's representing_user_id), name the user it
	// acts as (its owner), and IssuedBy the superuser's email. Empty on every other token.
	RepresentingUserID string `json:"representing_user_id,omitempty"`
	RepresentingEmail  string `json:"representing_email,omitempty"`
	IssuedBy           string `json:"issued_by,omitempty"`
}

// RepresentRequest is Rill's IssueRepresentativeAuthTokenRequest (POST /v1/tokens/represent):
// a superuser asks for a short-lived token that acts as the user with Email. TTLMinutes
// absent or 0 is 60, as Rill's CLI asks; at most MaxRepresentMinutes.
type RepresentRequest struct {
	Email      string `json:"email"`
	TTLMinutes int64  `json:"ttl_minutes,omitempty"`
}

// DefaultRepresentMinutes and MaxRepresentMinutes bound an assumed token's life.
const (
	DefaultRepresentMinutes = 60
	MaxRepresentMinutes     = 24 * 60
)

// RillRepresented is Rill's IssueRepresentativeAuthTokenResponse.
type RillRepresented struct {
	Token string `json:"token"`
}

// TokenPolicy is an org's limit on token lifetimes (GET/PUT /v1/orgs/{org}/token-policy):
// the most minutes a user token, a service token or a public URL may live (0 or absent: no
// limit), and whether every token must expire. A user token answers to the policies of every
// org its user is a member of; a runtime JWT from the credentials endpoint to the project's
// org's service-token limit when a service asks, its user-token limit when a user does.
type TokenPolicy struct {
	MaxUserTokenTTLMinutes    int64 `json:"max_user_token_ttl_minutes"`
	MaxServiceTokenTTLMinutes int64 `json:"max_service_token_ttl_minutes"`
	MaxMagicTokenTTLMinutes   int64 `json:"max_magic_token_ttl_minutes"`
	RequireExpiry             bool  `json:"require_expiry"`
}

// IssuedToken is a new token: the only time its secret is shown.
type IssuedToken struct {
	Token string `json:"token"`
	TokenInfo
}

// ServiceCreated is the answer to creating a service.
type ServiceCreated struct {
	Service Service     `json:"service"`
	Token   IssuedToken `json:"token"`
}

// ServiceDetail is a service with its tokens.
type ServiceDetail struct {
	Service
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
	// AssumedBy, when the token is one a superuser issued to act as this user (rillctl sudo
	// user assume), is that superuser's email.
	AssumedBy string `json:"assumed_by,omitempty"`
}

// Revoked names a revoked token.
type Revoked struct {
	Revoked []TokenInfo `json:"revoked"`
}

// RillRevokedAll is Rill's RevokeAllUserAuthTokensResponse.
type RillRevokedAll struct {
	TokensRevoked int `json:"tokensRevoked"`
}

// CredentialsRequest is Rill's GetDeploymentCredentialsRequest: a runtime token for an end user
// named by UserID, UserEmail or Attributes (at most one; none: the caller). The server also reads
// the proto names (user_id, user_email, ttl_seconds), ignores unknown fields, and takes a
// TTLSeconds of 0 as 86400. Branch, when set, must be the project's prod branch.
type CredentialsRequest struct {
	UserID     string         `json:"userId,omitempty"`
	UserEmail  string         `json:"userEmail,omitempty"`
	Attributes map[string]any `json:"attributes,omitempty"`
	TTLSeconds uint32         `json:"ttlSeconds,omitempty"`
	Branch     string         `json:"branch,omitempty"`
	// ExternalUserID names an end user who is no user of rill-authd (Rill's external_user_id):
	// the token's sub is "ext_" + hex(sha256(id + project id)). Not with UserID.
	ExternalUserID string `json:"externalUserId,omitempty"`
	// AllowedOrigins (https://shop.example.com; ours, not Rill's: also read as allowedOrigins)
	// are the only pages that may present the token at rill-authd's check; others are refused
	// 403 origin_not_allowed. The Rill runtime does not check them.
	AllowedOrigins []string `json:"allowed_origins,omitempty"`
}

// CredentialsResponse is Rill's GetDeploymentCredentialsResponse as its JSON transcoder writes
// it: camelCase, every field present. AccessToken is a JWT the project's runtime accepts.
type CredentialsResponse struct {
	RuntimeHost string `json:"runtimeHost"`
	InstanceID  string `json:"instanceId"`
	AccessToken string `json:"accessToken"`
	TTLSeconds  uint32 `json:"ttlSeconds"`
}

// RotateRequest is the optional body of POST /v1/admin/signing-keys/rotate. Now makes the new
// key sign at once (an emergency: the key that signs must stop) instead of after the daemon's
// --signing-key-activation-delay.
type RotateRequest struct {
	Now bool `json:"now,omitempty"`
}

// RotateResult names the new signing key, when it signs, the key it takes over from, and the
// scheduled keys an immediate rotation retired (they had signed nothing).
type RotateResult struct {
	KID         string    `json:"kid"`
	ActivatesAt time.Time `json:"activates_at"`
	Replaces    string    `json:"replaces,omitempty"`
	Retired     []string  `json:"retired"`
}

// SigningKey is one signing key and where it is in its life (GET /v1/admin/signing-keys).
// State is next (published, signs from ActivatesAt), signing, verifying (a later key took over
// at SignsUntil; published until VerifiesUntil, when its last token has expired), expired, or
// retired (out of the JWKS since RetiredAt). InJWKS and Description are worked out by the
// server with State, so every client shows the same reading of a key (rillctl and the console
// print them as sent).
type SigningKey struct {
	KID           string    `json:"kid"`
	State         string    `json:"state"`
	InJWKS        bool      `json:"in_jwks"`
	Description   string    `json:"description"`
	CreatedAt     time.Time `json:"created_at"`
	ActivatesAt   time.Time `json:"activates_at"`
	SignsUntil    time.Time `json:"signs_until,omitzero"`
	VerifiesUntil time.Time `json:"verifies_until,omitzero"`
	RetiredAt     time.Time `json:"retired_at,omitzero"`
}

// IntrospectRequest names the token to introspect (JSON, or RFC 7662's form encoding).
type IntrospectRequest struct {
	Token string `json:"token"`
}

// Introspection is RFC 7662's response, plus rill's roles and attributes.
type Introspection struct {
	Active       bool              `json:"active"`
	Sub          string            `json:"sub,omitempty"`
	Exp          int64             `json:"exp,omitempty"`
	TokenType    string            `json:"token_type,omitempty"`
	Scope        string            `json:"scope,omitempty"`
	Kind         string            `json:"kind,omitempty"`
	Org          string            `json:"org,omitempty"`
	Project      string            `json:"project,omitempty"`
	OrgRoles     map[string]string `json:"org_roles,omitempty"`
	ProjectRoles map[string]string `json:"project_roles,omitempty"`
	// Attributes are a service's or an ephemeral token's; a user's are per org, in Orgs (of the
	// orgs the caller manages).
	Attributes map[string]any     `json:"attributes,omitempty"`
	Orgs       map[string]UserOrg `json:"orgs,omitempty"`
	// AllowedNetworks and AllowedOrigins are where the token may be used (none: anywhere).
	AllowedNetworks []string `json:"allowed_networks,omitempty"`
	AllowedOrigins  []string `json:"allowed_origins,omitempty"`
}

// SigninRules are an org's provisioning rules (GET/PUT /v1/orgs/{org}/signin-rules): who may
// sign in with an identity provider and join the org without an account made for them first.
// A domain rule admits a new user whose verified email is at the domain, with the rule's org
// role (Rill's whitelisted domains); a group rule gives users the provider puts in the group
// an org role and the groups the org's security policies see, applied again at every sign-in.
// Lists are always present ([] for none). PUT replaces the whole set.
type SigninRules struct {
	Domains []SigninDomainRule `json:"domains"`
	Groups  []SigninGroupRule  `json:"groups"`
	// JoinedUsers, in a PUT's answer only, are the existing users at a domain the PUT added
	// who joined the org with its role (as Rill's CreateWhitelistedDomain adds them).
	JoinedUsers []string `json:"joined_users,omitempty"`
}

// SigninDomainRule admits new users at Domain ("acme.io") with org role OrgRole (admin,
// editor, viewer or guest).
type SigninDomainRule struct {
	Domain  string `json:"domain"`
	OrgRole string `json:"org_role"`
}

// SigninGroupRule gives users in the provider's group Group (its exact name) the org role
// OrgRole and the attribute groups AttributeGroups.
type SigninGroupRule struct {
	Group           string   `json:"group"`
	OrgRole         string   `json:"org_role"`
	AttributeGroups []string `json:"attribute_groups"`
}
