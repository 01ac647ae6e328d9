// Package store is rill-authd's persistence contract: the model (orgs, projects, users,
// services, tokens, signing keys, audit events), the Store interface every engine implements,
// and the narrow CheckReader the check path depends on. It holds no engine code: the embedded
// engine is store/badger, and store/storetest is the conformance suite every engine passes.
//
// Every write that changes a record appends a Change to a feed with a monotonic sequence, in
// the same transaction as the record, and subscribers hear of it before the write returns, so
// caches drop what it names before a write is acknowledged.
package store

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/rill-authd/rill-authd/token"
)

// Errors callers can test for with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("already exists")
	ErrClosed   = errors.New("store is closed")
	// ErrRevoked is returned by GetToken and TokenAuth for a token that was revoked (or whose
	// owner was deleted) within the tombstone period, so callers can say why it no longer works:
	// the error's message says "revoked", "service deleted" or "user deleted".
	ErrRevoked = errors.New("revoked")
	// ErrFeedTruncated is returned by ChangesSince for a point older than the feed keeps: the
	// caller must reload everything instead of replaying.
	ErrFeedTruncated = errors.New("change feed truncated")
	// ErrUnavailable wraps errors of an engine whose server cannot be reached (PostgreSQL
	// down, a connection lost): the request may succeed if retried. A write that fails so at
	// its commit may still have been applied.
	ErrUnavailable = errors.New("store unavailable")
	// ErrTooManyTokens is returned by CreateTokenCapped when the owner already holds the most
	// live tokens it may.
	ErrTooManyTokens = errors.New("too many live tokens")
	// ErrProjectFull is returned by CreateMagicTokenCapped when the project already holds the
	// most live public URLs allowed to one project.
	ErrProjectFull = errors.New("too many live public URLs in the project")
)

// Store is everything the daemon needs from persistence.
type Store interface {
	CheckReader

	CreateOrg(ctx context.Context, o Org) error
	GetOrg(ctx context.Context, name string) (Org, error)
	// ListOrgs returns every org, by name.
	ListOrgs(ctx context.Context) ([]Org, error)

	CreateProject(ctx context.Context, p Project) error
	GetProject(ctx context.Context, org, name string) (Project, error)
	// ListProjects returns org's projects, by name.
	ListProjects(ctx context.Context, org string) ([]Project, error)

	CreateUser(ctx context.Context, u User) error
	GetUserByEmail(ctx context.Context, email string) (User, error)
	// ListUsers returns every user, in no particular order.
	ListUsers(ctx context.Context) ([]User, error)
	// UpdateUser applies fn to the stored user in one transaction; a changed email keeps the
	// email index unique.
	UpdateUser(ctx context.Context, id string, fn func(*User) error) (User, error)
	// DeleteUser deletes the user and all their tokens, and says how many tokens that revoked
	// (the tokens the user issued to act as others, Token.IssuedBy, are revoked too, each
	// with its own change, and not counted).
	// It is one change in the feed (the user's delete): every token of theirs is revoked with
	// it ("user deleted"), however many there are.
	DeleteUser(ctx context.Context, id string) (int, error)

	CreateService(ctx context.Context, s Service) error
	GetServiceByName(ctx context.Context, org, name string) (Service, error)
	// ListServices returns org's services, by name.
	ListServices(ctx context.Context, org string) ([]Service, error)
	// UpdateService applies fn in one transaction; a rename keeps the (org, name) index unique.
	// fn cannot change the service's ID or Org.
	UpdateService(ctx context.Context, id string, fn func(*Service) error) (Service, error)
	// DeleteService deletes the service and all its tokens, and says how many tokens that revoked.
	// Like DeleteUser, it is one change: the service's delete revokes all its tokens.
	DeleteService(ctx context.Context, id string) (int, error)

	// CreateToken stores a token record; its owner must exist.
	CreateToken(ctx context.Context, t Token) error
	// CreateTokenCapped is CreateToken refusing with ErrTooManyTokens when the owner already
	// holds max live tokens (max <= 0: no cap). The count and the insert are one write,
	// serialized with every other (across replicas too), so issues at once never pass the cap.
	CreateTokenCapped(ctx context.Context, t Token, max int) error
	// CreateMagicTokenCapped stores a public URL (t.Kind token.Magic, owned by its project),
	// refusing with ErrTooManyTokens when its creator (Token.CreatedBy) already holds
	// perCreator live public URLs of the project, and with ErrProjectFull when the project holds
	// perProject (<= 0: no such cap). A public URL counts against who made it, so one member
	// cannot use up a project's; the project's own cap is a much higher backstop. One write,
	// serialized like CreateTokenCapped's.
	CreateMagicTokenCapped(ctx context.Context, t Token, perCreator, perProject int) error
	// ImportTokens bulk-loads token records whose owners exist, in atomic batches. An unknown
	// owner refuses the whole import before anything is written; a failing batch (a taken id)
	// stops it, leaving the batches before it in place.
	ImportTokens(ctx context.Context, ts []Token) error
	GetToken(ctx context.Context, id token.ID) (Token, error)
	// ListTokens returns the owner's live tokens, oldest (CreatedAt) first.
	ListTokens(ctx context.Context, ownerID string) ([]Token, error)
	// ListIssuedTokens returns the live tokens issuer issued to act as other users
	// (Token.IssuedBy), oldest first. Deleting the issuer (DeleteUser) revokes them.
	ListIssuedTokens(ctx context.Context, issuer string) ([]Token, error)
	// DeleteToken revokes a token: it is gone, and reads of it say ErrRevoked. Deleting it
	// again is ErrNotFound.
	DeleteToken(ctx context.Context, id token.ID) error
	// SetTokenLimits replaces a live token's constraints on where it may be used
	// (Token.AllowedNetworks and AllowedOrigins; empty: none), and returns the record. It is a
	// put of the token in the feed, so every cache drops the token and reads it again. The
	// constraints must pass CheckFields (canonical: NormalizeNetworks, NormalizeOrigins).
	SetTokenLimits(ctx context.Context, id token.ID, networks, origins []string) (Token, error)
	// CountTokens is the number of live tokens of each kind, read from counts kept in the
	// transactions that create and delete tokens.
	CountTokens(ctx context.Context) (map[token.Kind]uint64, error)

	PutSigningKey(ctx context.Context, k SigningKey) error

	// GetIssuer returns the issuer recorded in the store (a zero URL: none yet).
	GetIssuer(ctx context.Context) (Issuer, error)
	// SwapIssuer records next if the recorded issuer is the Same as old (zero: none recorded),
	// atomically across replicas, and returns the issuer recorded after the call: next, or
	// what another writer recorded first. It is not in the feed: replicas read it at start.
	SwapIssuer(ctx context.Context, old, next Issuer) (Issuer, error)

	// Bootstrap runs fn once in the store's life: the first call on an empty store. It reports
	// whether fn ran.
	Bootstrap(ctx context.Context, fn func(ctx context.Context) error) (bool, error)

	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error)

	TokenLifetimes
	Outbox
	SigninRulesStore
	DeviceCodes

	Close() error
}

// CheckReader is what the check path (the resolver) needs: a live token's check facts, its
// owner, the signing keys, and the change feed that tells it when any of these changed. The
// last three methods are its only writes: last uses (times, and where from) and use
// summaries, all off the hot path and none in the feed.
type CheckReader interface {
	// TokenAuth is the hot-path read of a check: a live token's kind, owner, hash and expiry.
	// It fails as GetToken does for a revoked or unknown token.
	TokenAuth(ctx context.Context, id token.ID) (TokenAuth, error)
	GetUser(ctx context.Context, id string) (User, error)
	GetService(ctx context.Context, id string) (Service, error)
	// ListSigningKeys returns every signing key, oldest first.
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)

	Feed

	// TouchTokens records last-used times; it changes no decision and is not in the feed.
	TouchTokens(ctx context.Context, used map[token.ID]time.Time) error
	// RecordUses is TouchTokens with where each use came from (TokenUse): a use newer than the
	// recorded one replaces its time and, when it says where, its address and user agent,
	// kept as TokenUse.Clean makes them. A token gone since is skipped.
	RecordUses(ctx context.Context, uses map[token.ID]TokenUse) error
	AppendAudit(ctx context.Context, e AuditEvent) error
}

// Feed is the ordered log of committed changes.
type Feed interface {
	// Subscribe registers fn to be called once per committed write with that write's changes,
	// in sequence order, before the write returns to its caller; besides, fn may hear notices
	// outside the sequence (Seq 0, see Change). fn must not call back into the store's writes.
	Subscribe(fn func([]Change))
	// ChangesSince returns up to limit committed changes with Seq > after, in order (limit <= 0:
	// all). A point older than the feed keeps gives ErrFeedTruncated.
	ChangesSince(ctx context.Context, after uint64, limit int) ([]Change, error)
	// LastSeq is the sequence of the newest committed change (0 for none).
	LastSeq(ctx context.Context) (uint64, error)
}

// TokenAuth is the part of a token record a check needs: whose it is, what its secret hashes
// to, and when it expires.
type TokenAuth struct {
	Kind      token.Kind
	OwnerID   string
	Hash      token.Hash
	ExpiresAt time.Time
	// Limits are the token's constraints on where it may be used, parsed (nil: none).
	Limits *Limits
}

// ChangeKind names what a Change touched.
type ChangeKind string

const (
	ChangeOrg     ChangeKind = "org"
	ChangeProject ChangeKind = "project"
	ChangeUser    ChangeKind = "user"
	ChangeService ChangeKind = "service"
	ChangeToken   ChangeKind = "token"
	ChangeKey     ChangeKind = "signing_key"
	// ChangeReset is never in the feed: it is ResetNotice's kind.
	ChangeReset ChangeKind = "reset"
)

// ChangeOp says whether a record was written or deleted.
type ChangeOp string

const (
	OpPut    ChangeOp = "put"
	OpDelete ChangeOp = "delete"
)

// Change is one record a committed write touched. Seq is assigned by the store: it grows by
// one per change, with no gaps, in commit order. Deleting a user or service gives one change,
// the owner's delete (Kind user or service, ID the owner's id), which revokes every token the
// owner held: a reader of the feed drops all of that owner's tokens on it (there is no token
// delete per token, so a cascade costs the feed one change however many tokens it revokes). An
// import gives a token put per token.
//
// What a change names is what a cache must drop for it, and nothing more: a token change names
// the token (its id), a user or service change the owner (its id: every token it holds and
// every JWT it issued), a project change the project ("org/name": decisions about it), a
// signing-key change the key (its kid: JWT verification only). An org change affects no
// decision: orgs are created, and their token policy and sign-in rules set, which no check
// reads (an issue or a sign-in reads them from the store, on any replica).
//
// A change with Seq 0 is a notice outside the sequence, never in ChangesSince: ResetNotice, or
// a change of a write told to this replica's subscribers ahead of its turn (the write
// committed here but the changes before it could not be read yet); the same change comes again,
// with its Seq and in order, later.
type Change struct {
	Seq  uint64     `json:"seq"`
	Kind ChangeKind `json:"kind"`
	Op   ChangeOp   `json:"op"`
	// ID is the record's key: a name for orgs, "org/name" for projects, a kid for signing keys,
	// an id otherwise.
	ID   string    `json:"id"`
	Time time.Time `json:"time"`
}

// OwnerChange is the change kind of a token owner of kind k.
func OwnerChange(k token.Kind) ChangeKind {
	if k == token.Service {
		return ChangeService
	}
	return ChangeUser
}

// OwnerDelete says whether c deletes a token owner (which revokes all its tokens), and the
// owner's token kind.
func (c Change) OwnerDelete() (token.Kind, bool) {
	switch {
	case c.Op != OpDelete:
		return "", false
	case c.Kind == ChangeUser:
		return token.User, true
	case c.Kind == ChangeService:
		return token.Service, true
	}
	return "", false
}

// ResetNotice is a change outside the sequence (Seq 0, kind ChangeReset) that tells a
// subscriber anything may have changed, signing keys included. An engine sends it when it
// replaced its in-memory state wholesale (a replica reloading after falling behind the pruned
// feed), so the changes in between will never be told one by one. A cache re-checks what it
// holds rather than dropping it: the store may be unreachable the moment after.
func ResetNotice(at time.Time) Change {
	return Change{Seq: 0, Kind: ChangeReset, Op: OpDelete, ID: "*", Time: at}
}

// IsReset reports whether c is a ResetNotice.
func (c Change) IsReset() bool { return c.Kind == ChangeReset }

// AffectsDecisions reports whether c can change an auth decision already made: everything but an
// org (orgs are only created, and no decision reads them). A token put counts: it may be new
// constraints on a cached token (SetTokenLimits); a new token is in no cache, so dropping it
// costs nothing. A project write counts: its runtime audience and instance are part of cached
// JWT and exchange decisions. What it affects is only what it names (see Change).
func (c Change) AffectsDecisions() bool {
	return c.Op == OpDelete || c.Kind != ChangeOrg
}

// ProjectOf splits a project change's ID into org and project name.
func (c Change) ProjectOf() (org, project string, ok bool) {
	if c.Kind != ChangeProject {
		return "", "", false
	}
	return strings.Cut(c.ID, "/")
}
