package resolver

import (
	"context"
	"crypto/sha256"
	"errors"
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
	if e := r.cache.get(key); e != nil && e.kind == kindJWT && e.hash.Equal(h) {
		if !r.now().Before(e.expires.Add(token.Leeway)) {
			return Result{}, token.ErrJWTExpired
		}
		return Result{Principal: e.principal, TokenID: e.id, entry: e}, nil
	}
	gen := r.cache.gen.Load()
	iss, err := token.UnverifiedIssuer(raw)
	if err != nil {
		return Result{}, err
	}
	var c *token.Claims
	var p *policy.Principal
	if rk := r.trusted[iss]; rk != nil && iss != r.opts.Issuer {
		if c, p, err = r.verifyExternal(ctx, rk, raw); err != nil {
			return Result{}, err
		}
	} else {
		if iss != r.opts.Issuer {
			return Result{}, token.ErrJWTIssuer
		}
		ks, err := r.keys.Keyset(ctx)
		if err != nil {
			return Result{}, err
		}
		if c, err = ks.Verify(raw, r.opts.Issuer, r.opts.Audience, r.now()); err != nil {
			return Result{}, err
		}
		if p, err = r.ephemeralPrincipal(ctx, c); err != nil {
			return Result{}, err
		}
	}
	id, _ := token.ParseID(c.ID)
	e := &entry{hash: h, kind: kindJWT, expires: c.ExpiresAt.Time, principal: p, id: id}
	r.cache.put(key, e, gen)
	return Result{Principal: p, TokenID: id, entry: e}, nil
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
	return ephemeral(c, c.Org, c.Project, parsePerms(c.Permissions, 0)), nil
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
	p := &policy.Principal{Kind: policy.KindEphemeral, ID: c.ID, Subject: c.Subject, Name: c.Subject,
		OrgRoles: map[string]policy.Role{}, ProjectRoles: map[string]policy.Role{}, Attributes: c.Attr}
	if email, ok := c.Attr["email"].(string); ok {
		p.Email = email
	}
	if project != "" && perms != 0 {
		p.ProjectRoles[store.ProjectKey(org, project)] = policy.Viewer
		p.Limit = perms
	}
	return p
}
