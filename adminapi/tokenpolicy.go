package adminapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// Token lifetime policies (issue 27, after GitHub's organization policy for personal access
// tokens): an org's admins (manage_org) and superusers read and set how long the org's tokens
// may live. Issuing beyond the policy is refused 400 naming the limit; tokens issued before it
// are marked in lists (TokenInfo.BeyondPolicy) and in the console's Token hygiene.
//
// Which policy binds which token:
//   - a service token and a public URL: their org's;
//   - a user token, which is not tied to one org: every org its user is a member of (an org
//     role or a project role there), so the strictest of them; a user in no org has none;
//   - a runtime JWT of the credentials and iframe endpoints (ttl_seconds): the project's org's
//     service-token limit when a service asks, its user-token limit when a user does. Absent
//     ttl_seconds (86400) is capped to the limit; an explicit one beyond it is refused.
func (a *API) registerTokenPolicy(mux *http.ServeMux) {
	a.handle(mux, "GET /v1/orgs/{org}/token-policy", a.getTokenPolicy)
	a.mutation(mux, "PUT /v1/orgs/{org}/token-policy", "org.token_policy.set", a.setTokenPolicy)
}

func wireTokenPolicy(p store.TokenPolicy) apiv1.TokenPolicy {
	return apiv1.TokenPolicy{MaxUserTokenTTLMinutes: p.MaxUserTokenTTLMinutes, MaxServiceTokenTTLMinutes: p.MaxServiceTokenTTLMinutes,
		MaxMagicTokenTTLMinutes: p.MaxMagicTokenTTLMinutes, RequireExpiry: p.RequireExpiry}
}

func (a *API) getTokenPolicy(w http.ResponseWriter, r *http.Request, c *caller) error {
	org, err := a.org(r, c, policy.ManageOrg)
	if err != nil {
		return err
	}
	o, err := a.st.GetOrg(r.Context(), org)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wireTokenPolicy(o.TokenPolicy))
	return nil
}

func (a *API) setTokenPolicy(w http.ResponseWriter, r *http.Request, c *caller) error {
	org, err := a.org(r, c, policy.ManageOrg)
	if err != nil {
		return err
	}
	var req apiv1.TokenPolicy
	if err := decode(r, &req); err != nil {
		return err
	}
	p := store.TokenPolicy{MaxUserTokenTTLMinutes: req.MaxUserTokenTTLMinutes, MaxServiceTokenTTLMinutes: req.MaxServiceTokenTTLMinutes,
		MaxMagicTokenTTLMinutes: req.MaxMagicTokenTTLMinutes, RequireExpiry: req.RequireExpiry}
	if err := p.Validate(); err != nil {
		return errf(http.StatusBadRequest, "%v", err)
	}
	o, err := a.st.SetTokenPolicy(r.Context(), org, p)
	if err != nil {
		return err
	}
	return a.audited(w, r, c, "org.token_policy.set", fmt.Sprintf("org:%s %s", org, policyWords(p)), http.StatusOK, wireTokenPolicy(o.TokenPolicy))
}

// policyWords is a policy in one line for the audit log: "user:43200m service:0m magic:10080m
// require_expiry:true" (0m: no limit).
func policyWords(p store.TokenPolicy) string {
	return fmt.Sprintf("user:%dm service:%dm magic:%dm require_expiry:%t", p.MaxUserTokenTTLMinutes, p.MaxServiceTokenTTLMinutes,
		p.MaxMagicTokenTTLMinutes, p.RequireExpiry)
}

// boundOrgs are the orgs whose policies bind a token of kind k owned by owner (a user's or
// service's id, or a public URL's "org/project").
func (a *API) boundOrgs(ctx context.Context, k token.Kind, owner string) ([]string, error) {
	switch k {
	case token.Service:
		s, err := a.st.GetService(ctx, owner)
		if err != nil {
			return nil, err
		}
		return []string{s.Org}, nil
	case token.Magic:
		org, _, _ := strings.Cut(owner, "/")
		return []string{org}, nil
	}
	u, err := a.st.GetUser(ctx, owner)
	if err != nil {
		return nil, err
	}
	return store.MemberOrgs(u), nil
}

// orgPolicies reads the token policies of orgs (an org that is gone binds nothing).
func (a *API) orgPolicies(ctx context.Context, orgs []string) (map[string]store.TokenPolicy, error) {
	out := make(map[string]store.TokenPolicy, len(orgs))
	for _, org := range orgs {
		o, err := a.st.GetOrg(ctx, org)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read the token policy of org %s: %w", org, err)
		}
		out[org] = o.TokenPolicy
	}
	return out, nil
}

// checkLifetime refuses (400, naming the org and its limit) a token of kind k for owner that
// would live ttl (0: never expire) beyond a policy that binds it.
func (a *API) checkLifetime(ctx context.Context, k token.Kind, owner string, ttl time.Duration) error {
	orgs, err := a.boundOrgs(ctx, k, owner)
	if err != nil {
		return fmt.Errorf("token policy: %w", err)
	}
	return a.checkLifetimeIn(ctx, k, orgs, ttl)
}

// checkLifetimeIn is checkLifetime for a token bound by orgs' policies.
func (a *API) checkLifetimeIn(ctx context.Context, k token.Kind, orgs []string, ttl time.Duration) error {
	ps, err := a.orgPolicies(ctx, orgs)
	if err != nil {
		return err
	}
	for _, org := range orgs { // sorted: the same org is named every time
		if err := ps[org].Check(k, ttl, "the token policy of org "+org); err != nil {
			return errf(http.StatusBadRequest, "%v", err)
		}
	}
	return nil
}

// runtimeTTL applies the token policy of org to a runtime JWT asked for by c: the service-token
// limit for a service, the user-token limit otherwise. asked is the ttl the request named (0:
// none), ttl the one it will get; it returns ttl capped to the limit when none was asked, or a
// 400 when the one asked is beyond it.
func (a *API) runtimeTTL(ctx context.Context, c *caller, org string, asked, ttl time.Duration) (time.Duration, error) {
	o, err := a.st.GetOrg(ctx, org)
	if err != nil {
		return 0, fmt.Errorf("read the token policy of org %s: %w", org, err)
	}
	k := token.User
	if c.p.Kind == policy.KindService {
		k = token.Service
	}
	max := o.TokenPolicy.Max(k)
	if max <= 0 {
		return ttl, nil
	}
	if asked == 0 {
		return min(ttl, max), nil
	}
	if asked > max {
		return 0, errf(http.StatusBadRequest, "ttl_seconds must be at most %d: %v", int64(max/time.Second),
			o.TokenPolicy.Check(k, asked, "the token policy of org "+org))
	}
	return ttl, nil
}

// markBeyond sets BeyondPolicy on the tokens of kind k of owner that outlive a policy binding
// them.
func (a *API) markBeyond(ctx context.Context, k token.Kind, owner string, ts []apiv1.TokenInfo) error {
	if len(ts) == 0 {
		return nil
	}
	orgs, err := a.boundOrgs(ctx, k, owner)
	if err != nil {
		return fmt.Errorf("token policy: %w", err)
	}
	ps, err := a.orgPolicies(ctx, orgs)
	if err != nil {
		return err
	}
	for i := range ts {
		ts[i].BeyondPolicy = BeyondWords(k, ts[i].CreatedAt, ts[i].ExpiresAt, orgs, ps)
	}
	return nil
}

// BeyondWords says how a token of kind k outlives the first of orgs' policies it does ("never
// expires; org acme requires expiry", "lives 90 days; org acme allows 30 days"), or "" when it
// keeps within all of them. The console's Token hygiene uses it too.
func BeyondWords(k token.Kind, created, expires time.Time, orgs []string, ps map[string]store.TokenPolicy) string {
	for _, org := range orgs {
		p := ps[org]
		if !p.Beyond(k, created, expires) {
			continue
		}
		if max := p.Max(k); max > 0 {
			life := "never expires"
			if !expires.IsZero() {
				life = "lives " + store.FormatMinutes(expires.Sub(created).Round(time.Minute))
			}
			return fmt.Sprintf("%s; org %s allows %s", life, org, store.FormatMinutes(max))
		}
		return fmt.Sprintf("never expires; org %s requires expiry", org)
	}
	return ""
}

// ttlMinutes checks a ttl_minutes of an issue body (0: never expires).
func ttlMinutes(m int) (time.Duration, error) {
	if m < 0 || m > 100*365*24*60 {
		return 0, errf(http.StatusBadRequest, "ttl_minutes must be 0 (never expires) or a positive number of minutes up to 100 years, not %d", m)
	}
	return time.Duration(m) * time.Minute, nil
}
