package extauthz

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rill-authd/rill-authd/keys"
	"github.com/rill-authd/rill-authd/policy"
)

// Exchange configures token exchange: on an allowed check the upstream's authorization header is
// replaced by a short-lived RS256 JWT in the Rill runtime's claim layout, so an unmodified
// runtime that trusts our issuer and JWKS accepts it.
type Exchange struct {
	Issuer     string        // iss (the runtime's configured issuer: our JWKS is at /.well-known/jwks.json)
	Audience   string        // aud the runtime expects
	InstanceID string        // default instance id when the route sets no instance_id extension
	TTL        time.Duration // life of a minted token (default 5m); reused until 1/5 of it is left
	Keys       func(ctx context.Context) (*keys.Keyset, error)
}

// Rill runtime permissions (runtime.Permission), as numbered in the runtime's JWT "ins" claim.
const (
	RuntimeReadObjects  = 0x15
	RuntimeReadMetrics  = 0x17
	RuntimeReadAPI      = 0x19
	RuntimeUseAI        = 0x1B
	RuntimeEditTrigger  = 0x20
	defaultExchangeTTL  = 5 * time.Minute
	exchangeRenewFactor = 5
)

// runtimeClaims is the Rill runtime's JWT layout.
type runtimeClaims struct {
	jwt.RegisteredClaims
	Instances map[string][]int `json:"ins"`
	Attrs     map[string]any   `json:"attr,omitempty"`
}

// runtimePerms maps project permissions to the runtime's: readers get objects, metrics, APIs
// and AI; project admins also triggers.
func runtimePerms(p policy.Perm) []int {
	out := []int{}
	if p.Has(policy.ReadProd) {
		out = append(out, RuntimeReadObjects, RuntimeReadMetrics, RuntimeReadAPI, RuntimeUseAI)
	}
	if p.Has(policy.ManageProject) {
		out = append(out, RuntimeEditTrigger)
	}
	return out
}

// exchanged is one minted runtime token.
type exchanged struct {
	renewAt time.Time
	bearer  string
	grpc    atomic.Pointer[grpcResponse] // the gRPC transport's rendering, made on first use
}

// exchangeState is an outcome's minted token, shared by its checks until it nears expiry.
type exchangeState struct {
	cur atomic.Pointer[exchanged]
	mu  sync.Mutex
}

// exchange returns the outcome's current runtime token, minting one when there is none or it
// is close to expiry. A failure to mint fails the check closed.
func (s *Server) exchange(ctx context.Context, o *outcome) (*exchanged, error) {
	now := s.now()
	if x := o.minted.cur.Load(); x != nil && now.Before(x.renewAt) {
		return x, nil
	}
	o.minted.mu.Lock()
	defer o.minted.mu.Unlock()
	if x := o.minted.cur.Load(); x != nil && now.Before(x.renewAt) {
		return x, nil
	}
	ks, err := s.cfg.Exchange.Keys(ctx)
	if err != nil {
		return nil, err
	}
	ttl := s.cfg.Exchange.TTL
	at := now.Truncate(time.Second)
	raw, err := ks.Sign(&runtimeClaims{
		RegisteredClaims: jwt.RegisteredClaims{Issuer: s.cfg.Exchange.Issuer, Audience: jwt.ClaimStrings{s.cfg.Exchange.Audience},
			Subject: o.grant.sub, IssuedAt: jwt.NewNumericDate(at), NotBefore: jwt.NewNumericDate(at), ExpiresAt: jwt.NewNumericDate(at.Add(ttl))},
		Instances: map[string][]int{o.grant.instance: o.grant.perms},
		Attrs:     o.grant.attrs,
	})
	if err != nil {
		return nil, err
	}
	x := &exchanged{renewAt: at.Add(ttl - ttl/exchangeRenewFactor), bearer: "Bearer " + raw}
	o.minted.cur.Store(x)
	return x, nil
}
