// Package store keeps rill-authd's records (orgs, projects, users, services, tokens, signing
// keys, audit events) in embedded Badger, behind the one Store interface the rest of the code
// depends on. Secondary indexes are written in the same transaction as their record, and every
// write that can change an auth decision notifies subscribers before it returns, so caches are
// invalidated before a write is acknowledged.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/rill-authd/rill-authd/token"
)

// Errors callers can test for with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("already exists")
	ErrClosed   = errors.New("store is closed")
	// ErrRevoked is returned by GetToken for a token that was revoked (or whose owner was
	// deleted) within the tombstone period, so callers can say why it no longer works.
	ErrRevoked = errors.New("revoked")
)

// Store is everything the daemon needs from persistence.
type Store interface {
	CreateOrg(ctx context.Context, o Org) error
	GetOrg(ctx context.Context, name string) (Org, error)
	ListOrgs(ctx context.Context) ([]Org, error)

	CreateProject(ctx context.Context, p Project) error
	GetProject(ctx context.Context, org, name string) (Project, error)
	ListProjects(ctx context.Context, org string) ([]Project, error)

	CreateUser(ctx context.Context, u User) error
	GetUser(ctx context.Context, id string) (User, error)
	GetUserByEmail(ctx context.Context, email string) (User, error)
	ListUsers(ctx context.Context) ([]User, error)
	// UpdateUser applies fn to the stored user in one transaction.
	UpdateUser(ctx context.Context, id string, fn func(*User) error) (User, error)
	// DeleteUser deletes the user and all their tokens, and says how many tokens that revoked.
	DeleteUser(ctx context.Context, id string) (int, error)

	CreateService(ctx context.Context, s Service) error
	GetService(ctx context.Context, id string) (Service, error)
	GetServiceByName(ctx context.Context, org, name string) (Service, error)
	ListServices(ctx context.Context, org string) ([]Service, error)
	// UpdateService applies fn in one transaction; a rename keeps the (org, name) index unique.
	UpdateService(ctx context.Context, id string, fn func(*Service) error) (Service, error)
	// DeleteService deletes the service and all its tokens, and says how many tokens that revoked.
	DeleteService(ctx context.Context, id string) (int, error)

	// CreateToken stores a token record; its owner must exist.
	CreateToken(ctx context.Context, t Token) error
	// ImportTokens bulk-loads token records whose owners exist, in atomic batches.
	ImportTokens(ctx context.Context, ts []Token) error
	GetToken(ctx context.Context, id string) (Token, error)
	// TokenAuth is the hot-path read of a check: a live token's kind, owner, hash and expiry,
	// from memory. It fails as GetToken does for a revoked or unknown token.
	TokenAuth(ctx context.Context, id token.ID) (TokenAuth, error)
	ListTokens(ctx context.Context, ownerID string) ([]Token, error)
	DeleteToken(ctx context.Context, id string) error
	// CountTokens is the number of live tokens of each kind, read from counts kept in the
	// transactions that create and delete tokens.
	CountTokens(ctx context.Context) (map[token.Kind]uint64, error)
	// TouchTokens records last-used times; it changes no decision and notifies no one.
	TouchTokens(ctx context.Context, used map[string]time.Time) error

	PutSigningKey(ctx context.Context, k SigningKey) error
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)

	AppendAudit(ctx context.Context, e AuditEvent) error
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error)

	// Bootstrap runs fn once in the store's life: the first call on an empty store. It reports
	// whether fn ran.
	Bootstrap(ctx context.Context, fn func(ctx context.Context) error) (bool, error)

	// Subscribe registers fn to be called after every committed write that can change an
	// auth decision, before that write returns to its caller.
	Subscribe(fn func(Change))

	Close() error
}

// ChangeKind names what a Change touched.
type ChangeKind string

const (
	ChangeUser    ChangeKind = "user"
	ChangeService ChangeKind = "service"
	ChangeToken   ChangeKind = "token"
	ChangeKey     ChangeKind = "signing_key"
)

// Change describes a committed write that may change auth decisions.
type Change struct {
	Kind ChangeKind
	ID   string
}
