package resolver

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/rill-authd/rill-authd/keys"
	"github.com/rill-authd/rill-authd/metrics"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/token"
)

// TrustedIssuer is an external issuer (Rill Cloud's admin service, say) whose RS256 JWTs are
// accepted: signed by a key of its JWKS, for Audience, and granting viewer-level reads on Org
// and on Project (or, when Project is empty, on the project named in the token's claims).
type TrustedIssuer struct {
	Issuer, JWKSURL, Audience string
	Org, Project              string
}

// ErrJWTScope refuses an external JWT that names an org or project its issuer may not grant.
var ErrJWTScope = errors.New("JWT names an org or project its issuer may not grant")

// ErrJWKSUnavailable means an issuer's keys could not be fetched: a failure of ours (503), not
// a refusal of the token.
var ErrJWKSUnavailable = errors.New("trusted issuer's JWKS is unavailable")

// remoteKeys is a trusted issuer's JWKS, fetched on first use and refetched when a token names
// an unknown kid, at most once per minRefresh.
type remoteKeys struct {
	ti         TrustedIssuer
	client     *http.Client
	minRefresh time.Duration
	now        func() time.Time
	metrics    *metrics.Metrics

	mu      sync.Mutex
	keys    map[string]*rsa.PublicKey
	fetched time.Time
	fetches int
}

func (rk *remoteKeys) key(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	rk.mu.Lock()
	defer rk.mu.Unlock()
	if k := rk.keys[kid]; k != nil {
		return k, nil
	}
	if !rk.fetched.IsZero() && rk.now().Sub(rk.fetched) < rk.minRefresh {
		return nil, token.ErrJWTUnknownKey
	}
	rk.fetched = rk.now()
	rk.fetches++
	keys, err := rk.fetch(ctx)
	rk.metrics.JWKSRefresh(err)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrJWKSUnavailable, err)
	}
	rk.keys = keys
	if k := keys[kid]; k != nil {
		return k, nil
	}
	return nil, token.ErrJWTUnknownKey
}

func (rk *remoteKeys) fetch(ctx context.Context) (map[string]*rsa.PublicKey, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", rk.ti.JWKSURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := rk.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP %d", rk.ti.JWKSURL, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	return keys.ParseJWKS(body)
}

// verifyExternal checks a JWT of a trusted issuer and builds its principal.
func (r *Resolver) verifyExternal(ctx context.Context, rk *remoteKeys, raw string) (*token.Claims, *policy.Principal, error) {
	var c token.Claims
	keyErr := error(nil)
	err := token.VerifyRS256(raw, &c, func(kid string) (*rsa.PublicKey, error) {
		k, err := rk.key(ctx, kid)
		if errors.Is(err, ErrJWKSUnavailable) {
			keyErr = err
		}
		return k, err
	}, rk.ti.Issuer, rk.ti.Audience, r.now())
	if keyErr != nil {
		r.log.Warn("fetching a trusted issuer's keys failed", "issuer", rk.ti.Issuer, "err", keyErr)
		return nil, nil, keyErr
	}
	if err != nil {
		return nil, nil, err
	}
	org, project := rk.ti.Org, rk.ti.Project
	if c.Org != "" && c.Org != org || rk.ti.Project != "" && c.Project != "" && c.Project != rk.ti.Project {
		return nil, nil, ErrJWTScope
	}
	if project == "" {
		project = c.Project
	}
	p := ephemeral(&c, org, project, parsePerms(c.Permissions, EphemeralPerms))
	p.Issuer = rk.ti.Issuer
	return &c, p, nil
}
