package resolver

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unsafe"

	"github.com/rill-authd/rill-authd/keys"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// kindJWT marks cache entries of verified JWTs; they are keyed by the first 16 bytes of the
// JWT's SHA-256 and compared on all 32.
const kindJWT token.Kind = "jwt"

// EphemeralPerms is the most an ephemeral token may hold: viewer-level reads.
const EphemeralPerms = policy.ReadProd | policy.ReadProject | policy.ReadDev

// Keys is the ring of signing keys that verifies this daemon's JWTs.
func (r *Resolver) Keys() *keys.Ring { return r.keys }

// resolveJWT authenticates an ephemeral JWT minted by this daemon. A verified token is cached
// until its exp; a cache hit costs one SHA-256.
func (r *Resolver) resolveJWT(ctx context.Context, raw string) (Result, error) {
	if len(raw) > 16<<10 {
		return Result{}, token.ErrJWTMalformed
	}
	// Hash the string's bytes in place: a copy would be the hit path's only allocation.
	h := token.Hash(sha256.Sum256(unsafe.Slice(unsafe.StringData(raw), len(raw))))
	var key token.ID
	copy(key[:], h[:16])
	var old *entry // one cached before a reset, to re-check
	if e := r.cache.get(key); e != nil && e.kind == kindJWT && e.hash.Equal(h) {
		if !r.now().Before(e.expires.Add(token.Leeway)) {
			return Result{}, token.ErrJWTExpired
		}
		if !r.cache.stale(e) {
			return Result{Principal: e.principal, TokenID: e.id, entry: e}, nil
		}
		old = e
		if now := r.now(); r.mayServeStale(now) && now.UnixNano() < old.retry.Load() {
			r.cache.staleServed.Add(1)
			return Result{Principal: old.principal, TokenID: old.id, entry: old}, nil
		}
		r.cache.rechecks.Add(1)
	}
	e, err := r.verifyJWT(ctx, raw, h, key)
	if err != nil && old != nil {
		if IsAuthError(err) {
			r.cache.drop(key)
		} else if now := r.now(); r.mayServeStale(now) {
			// The store (or a trusted issuer's JWKS) cannot be reached: answer as before.
			old.retry.Store(now.Add(r.opts.RecheckInterval).UnixNano())
			r.log.Warn("re-checking a cached JWT after a store reset failed; answering as before", "err", err)
			r.cache.staleServed.Add(1)
			return Result{Principal: old.principal, TokenID: old.id, entry: old}, nil
		}
	}
	if err != nil {
		return Result{}, err
	}
	return Result{Principal: e.principal, TokenID: e.id, entry: e}, nil
}

// verifyJWT verifies a JWT whose SHA-256 is h and caches its principal under key.
func (r *Resolver) verifyJWT(ctx context.Context, raw string, h token.Hash, key token.ID) (*entry, error) {
	gen, epoch := r.cache.gen.Load(), r.cache.epoch.Load()
	peek, err := token.Unverified(raw)
	if err != nil {
		return nil, err
	}
	iss := peek.Issuer
	var c *token.Claims
	var p *policy.Principal
	var deps []dep
	var limits *store.Limits
	if rk := (*r.trusted.Load())[iss]; rk != nil && iss != r.opts.Issuer {
		// Nothing of the store: only a reset re-checks it.
		if c, p, err = r.verifyExternal(ctx, rk, raw); err != nil {
			return nil, err
		}
	} else {
		if iss != r.opts.Issuer {
			return nil, token.ErrJWTIssuer
		}
		// The audience depends on the project the token names; a forged name fails the
		// signature below, which covers it.
		aud, err := r.audienceOf(ctx, peek.Org, peek.Project)
		if err != nil {
			return nil, err
		}
		if r.keys == nil {
			return nil, token.ErrJWTUnknownKey
		}
		ks, err := r.keys.Keyset(ctx)
		if err != nil {
			return nil, err
		}
		if c, err = ks.Verify(raw, r.opts.Issuer, aud, r.now()); err != nil {
			return nil, err
		}
		if p, err = r.ephemeralPrincipal(ctx, c); err != nil {
			return nil, err
		}
		_, issuer, _ := strings.Cut(c.IssuedBy, ":")
		deps = []dep{{depOwner, issuer}, {depProject, c.Org + "/" + c.Project}, {kind: depKeys}}
		// Our own claim of where the token may be used (an iframe for a customer's site), parsed
		// once here so a check compares origins without allocating, as for a stored token's. We
		// signed it canonical; anything else (no key of ours signs that) works nowhere.
		if len(c.AllowedOrigins) > 0 {
			if o, err := store.NormalizeOrigins(c.AllowedOrigins); err != nil || !slices.Equal(o, c.AllowedOrigins) {
				return nil, token.ErrJWTMalformed
			}
			if limits, err = store.LimitsOf(nil, c.AllowedOrigins); err != nil {
				return nil, token.ErrJWTMalformed
			}
		}
	}
	id, _ := token.ParseID(c.ID)
	e := &entry{hash: h, kind: kindJWT, expires: c.ExpiresAt.Time, limits: limits, principal: p, id: id, deps: deps, epoch: epoch}
	r.cache.put(key, e, gen)
	return e, nil
}

// projectReader is the store's project lookup; both engines have it (store.Store), but the check
// path's store.CheckReader does not promise it, so without it every project gets the default.
type projectReader interface {
	GetProject(ctx context.Context, org, name string) (store.Project, error)
}

// audienceOf is the aud of this daemon's JWTs for org/project: the project's runtime audience
// (imported from its Rill deployment), else Options.Audience.
func (r *Resolver) audienceOf(ctx context.Context, org, project string) (string, error) {
	pr, ok := r.st.(projectReader)
	if !ok || org == "" || project == "" {
		return r.opts.Audience, nil
	}
	p, err := pr.GetProject(ctx, org, project)
	if errors.Is(err, store.ErrNotFound) {
		return r.opts.Audience, nil
	} else if err != nil {
		return "", fmt.Errorf("resolve JWT audience of project %s/%s: %w", org, project, err)
	}
	_, _, aud := p.Runtime("", "", r.opts.Audience)
	return aud, nil
}

// ephemeralPrincipal checks that the token's issuer still exists and still holds manage_prod on
// the project, and builds the end user's principal: the token's attributes and at most
// viewer-level reads on that one project.
func (r *Resolver) ephemeralPrincipal(ctx context.Context, c *token.Claims) (*policy.Principal, error) {
	kind, id, _ := strings.Cut(c.IssuedBy, ":")
	var k token.Kind
	switch policy.Kind(kind) {
	case policy.KindService:
		k = token.Service
	case policy.KindUser:
		k = token.User
	default:
		return nil, token.ErrJWTMalformed
	}
	issuer, err := r.Principal(ctx, k, id)
	if errors.Is(err, ErrOwnerGone) {
		return nil, ErrIssuerGone
	} else if err != nil {
		return nil, err
	}
	if !issuer.AccessTo(c.Org, c.Project).Perms.Has(policy.ManageProd) {
		return nil, ErrIssuerAccess
	}
	p := ephemeral(c, c.Org, c.Project, parsePerms(c.Permissions, 0))
	if p.Email != "" {
		// Our sub is a user id, or none: the upstream's x-rill-subject is the end user's email.
		p.Subject, p.Name = p.Email, p.Email
	}
	return p, nil
}

// parsePerms reads a permissions claim, keeping viewer-level reads only; an absent claim gives
// def.
func parsePerms(names []string, def policy.Perm) policy.Perm {
	if len(names) == 0 {
		return def
	}
	var perms policy.Perm
	for _, n := range names {
		if p, err := policy.ParsePerm(n); err == nil {
			perms |= p
		}
	}
	return perms & EphemeralPerms
}

// ephemeral is the principal of a verified JWT: its attributes, and perms on org/project only.
func ephemeral(c *token.Claims, org, project string, perms policy.Perm) *policy.Principal {
	p := &policy.Principal{Kind: policy.KindEphemeral, ID: c.ID, Subject: c.Subject, Name: c.Subject, SubjectID: c.Subject,
		OrgRoles: map[string]policy.Role{}, ProjectRoles: map[string]policy.Role{}, Attributes: c.Attr, Security: c.Security}
	if email, ok := c.Attr["email"].(string); ok {
		p.Email = email
	}
	if project != "" && perms != 0 {
		p.ProjectRoles[store.ProjectKey(org, project)] = policy.Viewer
		p.Limit = perms
	}
	return p
}
