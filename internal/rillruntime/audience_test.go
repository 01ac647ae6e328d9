// Package rillruntime_test checks the JWTs a real rill-authd process mints the way the Rill
// runtime checks them, with nothing of ours: golang-jwt v4 (the runtime's), and the signing keys
// fetched over HTTP from <iss>/.well-known/jwks.json, as rilldata/rill's
// runtime/server/auth/jwt.go (OpenAudience, ParseAndValidate) and claims.go (jwtClaims) do.
// This file is that verifier; it imports only the standard library and golang-jwt v4.
package rillruntime_test

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v4"
)

// jwtClaims is the runtime's claim layout (runtime/server/auth/claims.go).
type jwtClaims struct {
	jwt.RegisteredClaims
	System    []int             `json:"sys,omitempty"`
	Instances map[string][]int  `json:"ins,omitempty"`
	Attrs     map[string]any    `json:"attr,omitempty"`
	Security  []json.RawMessage `json:"sec,omitempty"`
}

// securityClaims is what the runtime makes of the claims for one instance (jwtClaims.Claims):
// the user id is sub, also put in the attributes as "id"; the permissions are sys and the
// instance's ins.
type securityClaims struct {
	UserID      string
	Attributes  map[string]any
	Permissions []int
}

func (c *jwtClaims) claims(instanceID string) securityClaims {
	attrs := c.Attrs
	if attrs == nil {
		attrs = map[string]any{}
	}
	attrs["id"] = c.Subject
	perms := append([]int{}, c.System...)
	perms = append(perms, c.Instances[instanceID]...)
	return securityClaims{UserID: c.Subject, Attributes: attrs, Permissions: perms}
}

// audience is the runtime's Audience: an issuer URL and its own audience URL, and the issuer's
// keys fetched from <issuer>/.well-known/jwks.json, refetched on an unknown kid (keyfunc's
// RefreshUnknownKID) at most once per minRefetch (keyfunc's RefreshRateLimit, 5 minutes in the
// runtime; 0 here unless a test sets it). Within the limit keyfunc answers an unknown kid with
// ErrKIDNotFound at once and queues one refresh for later; this verifier refuses it and queues
// nothing, which is stricter.
type audience struct {
	issuerURL, audienceURL string
	jwksURL                string
	minRefetch             time.Duration
	mu                     sync.Mutex
	keys                   map[string]jwk
	fetched                time.Time // the last fetch
	fetches                int
}

// jwk is one key of the issuer's JWKS, as keyfunc reads it.
type jwk struct {
	Kty, Kid, Alg, Use, N, E string
	pub                      *rsa.PublicKey
}

func openAudience(ctx context.Context, issuerURL, audienceURL string) (*audience, error) {
	if issuerURL == "" || audienceURL == "" {
		return nil, errors.New("issuerURL and audienceURL are required")
	}
	jwksURL, err := url.JoinPath(issuerURL, ".well-known/jwks.json")
	if err != nil {
		return nil, err
	}
	a := &audience{issuerURL: issuerURL, audienceURL: audienceURL, jwksURL: jwksURL}
	return a, a.refresh(ctx)
}

func (a *audience) refresh(ctx context.Context) error {
	a.mu.Lock()
	a.fetched = time.Now()
	a.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.jwksURL, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("fetch JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetch JWKS %s: HTTP %d", a.jwksURL, resp.StatusCode)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var set struct {
		Keys []struct{ Kty, Kid, Alg, Use, N, E string }
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return fmt.Errorf("parse JWKS: %w", err)
	}
	keys := map[string]jwk{}
	for _, k := range set.Keys {
		if k.Kty != "RSA" {
			continue
		}
		n, err1 := base64.RawURLEncoding.DecodeString(k.N)
		e, err2 := base64.RawURLEncoding.DecodeString(k.E)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("JWKS key %q: bad n or e", k.Kid)
		}
		keys[k.Kid] = jwk{Kty: k.Kty, Kid: k.Kid, Alg: k.Alg, Use: k.Use, N: k.N, E: k.E,
			pub: &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}}
	}
	a.mu.Lock()
	a.keys = keys
	a.fetches++
	a.mu.Unlock()
	return nil
}

// errRateLimited refuses an unknown kid met within minRefetch of the last fetch.
var errRateLimited = errors.New("not in the cached JWKS, and the last fetch is too recent to fetch again")

// keyfunc finds the token's kid in the JWKS (refetching once if it is not there) and, like
// keyfunc, refuses a token whose alg differs from the key's.
func (a *audience) keyfunc(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	if kid == "" {
		return nil, errors.New("the JWT header has no kid")
	}
	a.mu.Lock()
	k, ok := a.keys[kid]
	limited := a.minRefetch > 0 && time.Since(a.fetched) < a.minRefetch
	a.mu.Unlock()
	if !ok {
		if limited {
			return nil, fmt.Errorf("kid %q: %w (refetches at most every %s)", kid, errRateLimited, a.minRefetch)
		}
		if err := a.refresh(context.Background()); err != nil {
			return nil, err
		}
		a.mu.Lock()
		k, ok = a.keys[kid]
		a.mu.Unlock()
		if !ok {
			return nil, fmt.Errorf("kid %q is not in the JWKS", kid)
		}
	}
	if k.Alg != "" && k.Alg != t.Method.Alg() {
		return nil, fmt.Errorf("JWT alg %q is not the key's %q", t.Method.Alg(), k.Alg)
	}
	return k.pub, nil
}

// parseAndValidate is the runtime's Audience.ParseAndValidate: golang-jwt v4 checks the
// signature and exp, iat and nbf (no leeway), then iss and aud are required to match.
func (a *audience) parseAndValidate(tokenStr string) (*jwtClaims, error) {
	claims := &jwtClaims{}
	if _, err := jwt.ParseWithClaims(tokenStr, claims, a.keyfunc); err != nil {
		return nil, err
	}
	if !claims.VerifyIssuer(a.issuerURL, true) {
		return nil, fmt.Errorf("invalid token issuer %q (expected %q)", claims.Issuer, a.issuerURL)
	}
	if !claims.VerifyAudience(a.audienceURL, true) {
		return nil, fmt.Errorf("invalid token audience %q (expected %q)", claims.Audience, a.audienceURL)
	}
	return claims, nil
}
