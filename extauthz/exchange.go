package extauthz

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rill-authd/rill-authd/keys"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// Exchange configures token exchange: on an allowed check the upstream's authorization header is
// replaced by a short-lived RS256 JWT in the Rill runtime's claim layout, so an unmodified
// runtime that trusts our issuer and JWKS accepts it.
type Exchange struct {
	// Issuer is iss: the URL the runtime is configured with, under which /.well-known/jwks.json
	// serves our keys (rilldata/rill runtime/server/auth/jwt.go, OpenAudience).
	Issuer string
	// Audience and InstanceID are aud and the ins key for a project that has no runtime audience
	// or instance of its own (and a route that sets no instance_id context extension).
	Audience   string
	InstanceID string
	TTL        time.Duration // life of a minted token (default 5m); reused until 1/5 of it is left
	Keys       func(ctx context.Context) (*keys.Keyset, error)
	// Projects, when set, looks up a project's runtime audience and instance (the store).
	Projects interface {
		GetProject(ctx context.Context, org, name string) (store.Project, error)
	}
}

const (
	defaultExchangeTTL  = 5 * time.Minute
	exchangeRenewFactor = 5
)

// exchanged is one minted runtime token.
type exchanged struct {
	renewAt time.Time
	kid     string // of the key that signed it
	bearer  string
	grpc    atomic.Pointer[grpcResponse] // the gRPC transport's rendering, made on first use
}

// exchangeState is an outcome's minted token, shared by its checks until it nears expiry.
type exchangeState struct {
	cur atomic.Pointer[exchanged]
	mu  sync.Mutex
}

// exchange returns the outcome's current runtime token, minting one when there is none, it is
// close to expiry, or another key signs now (a rotation's activation, or a key retired after
// an emergency rotation: the runtime would refuse tokens of a retired key once it refetches).
// A failure to mint fails the check closed.
func (s *Server) exchange(ctx context.Context, o *outcome) (*exchanged, error) {
	now := s.now()
	cfg := s.cfg.Exchange
	ks, kerr := cfg.Keys(ctx) // a cached keyset: an atomic load and a time compare
	fresh := func(x *exchanged) bool {
		return x != nil && now.Before(x.renewAt) && (kerr != nil || x.kid == ks.SignerKID())
	}
	if x := o.minted.cur.Load(); fresh(x) {
		return x, nil
	}
	o.minted.mu.Lock()
	defer o.minted.mu.Unlock()
	if x := o.minted.cur.Load(); fresh(x) {
		return x, nil
	}
	if kerr != nil {
		return nil, kerr
	}
	audience, instance, err := cfg.runtimeOf(ctx, o.grant.org, o.grant.project)
	if err != nil {
		return nil, err
	}
	if o.grant.instance != "" {
		instance = o.grant.instance
	}
	// The layout of rilldata/rill runtime/server/auth/jwt.go (Issuer.NewToken), with iat and nbf
	// set back: the runtime checks them with no leeway.
	at := now.Truncate(time.Second)
	raw, err := ks.Sign(&token.Claims{
		RegisteredClaims: jwt.RegisteredClaims{Issuer: cfg.Issuer, Audience: jwt.ClaimStrings{audience}, Subject: o.grant.sub,
			IssuedAt: jwt.NewNumericDate(at.Add(-token.IssuedAtSkew)), NotBefore: jwt.NewNumericDate(at.Add(-token.IssuedAtSkew)),
			ExpiresAt: jwt.NewNumericDate(at.Add(cfg.TTL))},
		Instances: map[string][]int{instance: o.grant.perms},
		Attr:      o.grant.attrs,
		Security:  o.grant.sec,
	})
	if err != nil {
		return nil, err
	}
	x := &exchanged{renewAt: at.Add(cfg.TTL - cfg.TTL/exchangeRenewFactor), kid: ks.SignerKID(), bearer: "Bearer " + raw}
	o.minted.cur.Store(x)
	return x, nil
}

// runtimeOf is the aud and instance id of org/project's runtime: the project's own, else the
// configured defaults.
func (x *Exchange) runtimeOf(ctx context.Context, org, project string) (audience, instance string, err error) {
	var p store.Project
	if x.Projects != nil && project != "" {
		p, err = x.Projects.GetProject(ctx, org, project)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return "", "", fmt.Errorf("runtime of project %s/%s: %w", org, project, err)
		}
	}
	_, instance, audience = p.Runtime("", x.InstanceID, x.Audience)
	return audience, instance, nil
}
