package adminapi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// issueLimiter is a token bucket per principal for token issue: each holds up to perMinute
// issues and refills at perMinute a minute, so a principal issues perMinute at once and then
// one every 60/perMinute seconds. It is per replica (N replicas allow N times the rate); the
// per-owner cap (the store's, across replicas) is what bounds the tokens an owner holds.
type issueLimiter struct {
	perMinute int
	now       func() time.Time
	mu        sync.Mutex
	buckets   map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// maxBuckets bounds the principals remembered; past it, full buckets (principals that have
// not issued for a minute) are forgotten, which changes nothing they may do.
const maxBuckets = 10_000

func newIssueLimiter(perMinute int, now func() time.Time) *issueLimiter {
	if perMinute <= 0 {
		return nil
	}
	return &issueLimiter{perMinute: perMinute, now: now, buckets: map[string]*bucket{}}
}

// take spends one issue of who's bucket, or says how long until one is available.
func (l *issueLimiter) take(who string) (ok bool, retryAfter time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now, capacity, perSec := l.now(), float64(l.perMinute), float64(l.perMinute)/60
	b, found := l.buckets[who]
	if !found {
		if len(l.buckets) >= maxBuckets {
			l.sweep(now)
		}
		b = &bucket{tokens: capacity, at: now}
		l.buckets[who] = b
	}
	if el := now.Sub(b.at).Seconds(); el > 0 {
		b.tokens = math.Min(capacity, b.tokens+el*perSec)
		b.at = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration(math.Ceil((1-b.tokens)/perSec*1000)) * time.Millisecond
}

// sweep forgets the principals whose bucket has refilled. The caller holds mu.
func (l *issueLimiter) sweep(now time.Time) {
	full := time.Minute
	for who, b := range l.buckets {
		if now.Sub(b.at) >= full {
			delete(l.buckets, who)
		}
	}
}

// chargeIssue spends one of the caller's token issues, or refuses with 429 and Retry-After.
// A request that issues a token after another write (service create) is charged before that
// write, once. Superusers (operators, who can do anything anyway) are not limited.
func (a *API) chargeIssue(c *caller) error {
	if c.issueCharged || c.p.Superuser {
		return nil
	}
	lim := a.issues.Load()
	ok, wait := lim.take(c.p.ID)
	if !ok {
		secs := int(math.Ceil(wait.Seconds()))
		return &Error{Status: http.StatusTooManyRequests, Code: int(codes.ResourceExhausted), retryAfter: secs,
			Message: fmt.Sprintf("%s issued tokens faster than %d a minute (--token-issue-rate): retry in %d s", c.actor, lim.perMinute, secs)}
	}
	c.issueCharged = true
	return nil
}

// chargeOrg spends one of org's issues (--org-token-issue-rate), after the caller's own
// (chargeIssue), for what makes or is done by a service: a service create, a service token, an
// issue by a service. A principal's own rate does not bound these, as every service is a new
// principal with a bucket of its own (third red team: services that create services multiplied
// an admin's rate). Superusers are not limited, as by chargeIssue.
func (a *API) chargeOrg(c *caller, org string) error {
	if c.orgCharged || c.p.Superuser {
		return nil
	}
	ok, wait := a.orgIssues.take(org)
	if !ok {
		secs := int(math.Ceil(wait.Seconds()))
		return &Error{Status: http.StatusTooManyRequests, Code: int(codes.ResourceExhausted), retryAfter: secs,
			Message: fmt.Sprintf("org %q created services and issued service tokens faster than %d a minute in all (--org-token-issue-rate): retry in %d s", org, a.orgIssues.perMinute, secs)}
	}
	c.orgCharged = true
	return nil
}

// tooManyTokens is the refusal of a token past --max-tokens-per-owner, naming the owner, the
// cap and how to make room: for a user's tokens issued by someone else (a superuser), the
// commands name the owner with --user.
func (a *API) tooManyTokens(ctx context.Context, c *caller, k token.Kind, owner string, err error) error {
	if errors.Is(err, store.ErrProjectFull) {
		org, project, _ := strings.Cut(owner, "/")
		return &Error{Status: http.StatusConflict, Code: int(codes.FailedPrecondition),
			Message: fmt.Sprintf("project %s already holds %d live public URLs, the most one project may hold (--max-public-urls-per-project): list them with `rillctl public-url list --org %s %s` and delete unused ones with `rillctl public-url delete ID`, then issue again",
				owner, a.maxMagicPerProject, org, project)}
	}
	if !errors.Is(err, store.ErrTooManyTokens) {
		return err
	}
	how := "list them with `rillctl token list` and revoke unused ones with `rillctl token revoke`"
	who := "user " + owner
	if k == token.Magic {
		// A public URL counts against who made it (store.CreateMagicTokenCapped).
		org, project, _ := strings.Cut(owner, "/")
		return &Error{Status: http.StatusConflict, Code: int(codes.FailedPrecondition),
			Message: fmt.Sprintf("%s already holds %d live public URLs of project %s, the most one member may hold (--max-tokens-per-owner): list them with `rillctl public-url list --org %s %s` and delete unused ones with `rillctl public-url delete ID`, then issue again",
				c.actor, a.perOwner(), owner, org, project)}
	} else if k == token.Service {
		who = "service " + owner
		if s, gerr := a.st.GetService(ctx, owner); gerr == nil {
			who = fmt.Sprintf("service %q in org %q", s.Name, s.Org)
			how = fmt.Sprintf("list them with `rillctl service token list %s` and revoke unused ones with `rillctl service token revoke %s TOKEN_ID`", s.Name, s.Name)
		}
	} else {
		email := "EMAIL"
		if u, gerr := a.st.GetUser(ctx, owner); gerr == nil {
			who, email = "user "+u.Email, u.Email
		}
		if owner != c.p.ID {
			how = fmt.Sprintf("list them with `rillctl token list --user %s` and revoke unused ones with `rillctl token revoke --user %s`", email, email)
		}
	}
	return &Error{Status: http.StatusConflict, Code: int(codes.FailedPrecondition),
		Message: fmt.Sprintf("%s already holds %d live tokens, the most one owner may hold (--max-tokens-per-owner): %s, then issue again",
			who, a.perOwner(), how)}
}
