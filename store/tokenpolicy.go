package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rill-authd/rill-authd/token"
)

// TokenPolicy is an org's rule for how long its tokens may live, after GitHub's organization
// policy for personal access tokens: a maximum lifetime per kind of token (0: no limit) and
// whether a token must expire at all. It is checked when a token is issued; tokens issued
// before a policy existed are only reported (Beyond), never changed.
type TokenPolicy struct {
	MaxUserTokenTTLMinutes    int64 `json:"max_user_token_ttl_minutes,omitempty"`
	MaxServiceTokenTTLMinutes int64 `json:"max_service_token_ttl_minutes,omitempty"`
	MaxMagicTokenTTLMinutes   int64 `json:"max_magic_token_ttl_minutes,omitempty"`
	RequireExpiry             bool  `json:"require_expiry,omitempty"`
}

// MaxPolicyMinutes bounds a policy's limits (100 years): larger numbers are typos, and
// minutes times time.Minute must not overflow.
const MaxPolicyMinutes = 100 * 366 * 24 * 60

// Validate says what is wrong with p, if anything.
func (p TokenPolicy) Validate() error {
	for _, f := range []struct {
		name string
		v    int64
	}{{"max_user_token_ttl_minutes", p.MaxUserTokenTTLMinutes},
		{"max_service_token_ttl_minutes", p.MaxServiceTokenTTLMinutes},
		{"max_magic_token_ttl_minutes", p.MaxMagicTokenTTLMinutes}} {
		if f.v < 0 || f.v > MaxPolicyMinutes {
			return fmt.Errorf("%s: %d is out of range (0 for no limit, at most %d)", f.name, f.v, MaxPolicyMinutes)
		}
	}
	return nil
}

// Max is the longest lifetime p allows a token of kind k (0: no limit).
func (p TokenPolicy) Max(k token.Kind) time.Duration {
	var m int64
	switch k {
	case token.User:
		m = p.MaxUserTokenTTLMinutes
	case token.Service:
		m = p.MaxServiceTokenTTLMinutes
	case token.Magic:
		m = p.MaxMagicTokenTTLMinutes
	}
	return time.Duration(m) * time.Minute
}

// Expiry says whether p requires a token of kind k to expire: it does when expiry is required
// or a maximum lifetime is set (a token that never expires lives longer than any maximum).
func (p TokenPolicy) Expiry(k token.Kind) bool { return p.RequireExpiry || p.Max(k) > 0 }

// Check says why a token of kind k living ttl (0: never expires) may not be issued under p,
// naming the limit; nil when it may. where names the policy ("the token policy of org acme").
func (p TokenPolicy) Check(k token.Kind, ttl time.Duration, where string) error {
	max := p.Max(k)
	limit := func() string {
		if w := FormatMinutes(max); !strings.HasSuffix(w, "minutes") && !strings.HasSuffix(w, "minute") {
			return fmt.Sprintf("%s (%d minutes)", w, int64(max/time.Minute))
		}
		return FormatMinutes(max)
	}
	switch {
	case ttl <= 0 && max > 0:
		return fmt.Errorf("%s: %s must expire within %s; give a ttl of at most that", where, kindWords(k), limit())
	case ttl <= 0 && p.RequireExpiry:
		return fmt.Errorf("%s: %s must expire; give a ttl", where, kindWords(k))
	case max > 0 && ttl > max:
		return fmt.Errorf("%s: %s may live at most %s, not %s", where, kindWords(k), limit(), FormatMinutes(ttl))
	}
	return nil
}

// Beyond says whether a token of kind k created at created and expiring at expires (zero:
// never) lives longer than p allows: a token issued before the policy, kept but reported.
func (p TokenPolicy) Beyond(k token.Kind, created, expires time.Time) bool {
	if expires.IsZero() {
		return p.Expiry(k)
	}
	max := p.Max(k)
	return max > 0 && expires.Sub(created) > max
}

// IsZero says whether p bounds nothing.
func (p TokenPolicy) IsZero() bool { return p == TokenPolicy{} }

// MemberOrgs returns the orgs u is a member of (an org role, or a project role in one of its
// projects), sorted: the orgs whose token policies bound u's tokens. A user token is not tied to
// one org, so every one of them applies, which makes the strictest bind.
func MemberOrgs(u User) []string {
	var out []string
	for org := range u.OrgRoles {
		out = append(out, org)
	}
	for key := range u.ProjectRoles {
		if org, _, ok := strings.Cut(key, "/"); ok {
			out = append(out, org)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// FormatMinutes says d in the largest whole unit: "90 days", "12 hours", "45 minutes".
func FormatMinutes(d time.Duration) string {
	if d%time.Minute != 0 {
		return d.String()
	}
	m := int64(d / time.Minute)
	unit := func(n int64, one string) string {
		if n == 1 {
			return "1 " + one
		}
		return fmt.Sprintf("%d %ss", n, one)
	}
	switch {
	case m > 0 && m%(24*60) == 0:
		return unit(m/(24*60), "day")
	case m > 0 && m%60 == 0:
		return unit(m/60, "hour")
	}
	return unit(m, "minute")
}

func kindWords(k token.Kind) string {
	switch k {
	case token.Service:
		return "service tokens"
	case token.Magic:
		return "public URLs"
	}
	return "user tokens"
}

// TokenLifetimes is the part of Store that keeps org token policies and drops expired tokens.
type TokenLifetimes interface {
	// SetTokenPolicy records org's token policy (the zero policy: none) and returns the org.
	// It is an org change in the feed (a notice for other replicas; no check reads it).
	SetTokenPolicy(ctx context.Context, org string, p TokenPolicy) (Org, error)
	// PurgeExpiredTokens deletes up to limit tokens that expired before before (limit <= 0:
	// all), each leaving a tombstone "expired" (so an import keeps it revoked: see
	// ImportLedger) and a token delete in the feed, in bounded batches. Tokens of an owner
	// being deleted are left to that owner's purge. It returns how many it deleted.
	PurgeExpiredTokens(ctx context.Context, before time.Time, limit int) (int, error)
}

// ExpiredWhy is the tombstone reason of a token purged after it expired.
const ExpiredWhy = "expired"

// PurgeBatch bounds the tokens one transaction of PurgeExpiredTokens deletes.
const PurgeBatch = 1000
