// Package extauthz answers Envoy ext_authz v3 checks, over gRPC and in the HTTP (forward-auth)
// mode that nginx auth_request, Traefik ForwardAuth and Caddy forward_auth also speak. A check
// goes request -> bearer -> principal (resolver and its cache) -> decision (decide.go, policy)
// -> the transport's rendering of it (grpc.go, http.go).
package extauthz

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rill-authd/rill-authd/metrics"
	"github.com/rill-authd/rill-authd/plugins"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/resolver"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// Config is what the check needs beyond the resolver.
type Config struct {
	// DefaultOrg and DefaultProject are checked when neither the route's context_extensions nor
	// the path name an org.
	DefaultOrg, DefaultProject string
	Logger                     *slog.Logger
	// Exchange, when set, replaces the upstream's authorization with a runtime JWT.
	Exchange *Exchange
	// Plugins, when set, add attributes from attribute-source plugins.
	Plugins *plugins.Host
	// Metrics, when set, counts and times checks.
	Metrics *metrics.Metrics
	// LogAllowedEvery logs one allowed check in this many at info level (0: allowed checks are
	// logged at debug level only).
	LogAllowedEvery int
	Now             func() time.Time
}

// Server decides checks. It serves the gRPC Authorization service (Check) and the HTTP mode
// (ServeHTTP); both share one decision function and cache.
type Server struct {
	res     *resolver.Resolver
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	allowed atomic.Uint64 // allowed checks, for log sampling
}

// New returns a Server that resolves credentials with res.
func New(res *resolver.Resolver, cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Exchange != nil && cfg.Exchange.TTL == 0 {
		cfg.Exchange.TTL = defaultExchangeTTL
	}
	return &Server{res: res, cfg: cfg, log: cfg.Logger, now: cfg.Now}
}

// request is the part of a check request the decision reads, whichever mode it came in.
type request struct {
	authorization string
	method, path  string
	id            string            // x-request-id, for logs
	ext           map[string]string // Envoy context_extensions
	kind          string            // credential kind, for metrics
}

// outcome is a decision with what is derived from it for the transports: made once per token
// and target (memoized in the resolver's entry, so it goes with the next invalidation), or once
// for good for the fixed denials, and shared by every check that reaches it.
type outcome struct {
	*decision
	grpc   atomic.Pointer[grpcResponse] // the gRPC transport's rendering, made on first use
	minted exchangeState                // the runtime token exchanged for it, when exchange is on
}

func newOutcome(d *decision) *outcome { return &outcome{decision: d} }

// unauthenticatedOutcomes are the 401s, one per reason a credential is refused, made once so
// a flood of bad tokens costs no allocation.
var unauthenticatedOutcomes = func() map[error]*outcome {
	m := map[error]*outcome{}
	for _, e := range resolver.AuthErrors {
		m[e] = newOutcome(refusal(e))
	}
	return m
}()

var unavailableOutcome = newOutcome(storeUnavailable())

// evaluate runs one check up to its outcome.
func (s *Server) evaluate(ctx context.Context, req *request) *outcome {
	req.kind = metrics.KindNone
	bearer, err := resolver.BearerFromHeader(req.authorization)
	if err != nil {
		return s.refuse(req, err)
	}
	req.kind = bearerKind(bearer)
	res, err := s.res.Resolve(ctx, bearer)
	if err != nil {
		return s.refuse(req, err)
	}
	req.kind = principalKind(res.Principal)
	t, terr := s.target(req)
	if terr != "" {
		return s.logged(req, newOutcome(misconfigured(terr)), res.TokenID)
	}
	if s.cfg.Exchange != nil {
		t.instance = req.ext["instance_id"] // else the project's, found when minting
	}
	memo := resolver.MemoOf[target, *outcome](res)
	o, ok := memo.Load(t)
	if !ok {
		o = memo.LoadOrStore(t, s.outcomeOf(ctx, res, t))
	}
	if !o.validUntil.IsZero() && !s.now().Before(o.validUntil) { // plugin attributes went stale
		o = s.outcomeOf(ctx, res, t)
		memo.Store(t, o)
	}
	if o.verdict != allow {
		return s.logged(req, o, res.TokenID)
	}
	level := slog.LevelDebug
	if n := s.cfg.LogAllowedEvery; n > 0 && s.allowed.Add(1)%uint64(n) == 0 {
		level = slog.LevelInfo
	}
	if s.log.Enabled(context.Background(), level) {
		s.log.Log(context.Background(), level, "check allowed", "request_id", req.id, "method", req.method, "path", pathOnly(req.path),
			"kind", res.Principal.Kind, "subject", res.Principal.Subject, "org", t.org, "project", t.project, "token_id", o.tokenID)
	}
	return o
}

// outcomeOf decides a resolved principal's access to t, asking the plugins for attributes.
func (s *Server) outcomeOf(ctx context.Context, res resolver.Result, t target) *outcome {
	var extra attributeSource
	if s.cfg.Plugins != nil {
		extra = func(p *policy.Principal, a policy.Access, t target, attrs map[string]any) (map[string]any, time.Time, error) {
			added, until, err := s.cfg.Plugins.Attributes(ctx, plugins.Principal{Kind: string(p.Kind), ID: p.ID, Subject: p.Subject, Email: p.Email,
				Org: t.org, Project: t.project, OrgRole: string(a.OrgRole), ProjectRole: string(a.ProjectRole), Groups: p.Groups, Attributes: attrs})
			if err != nil {
				return nil, s.now(), err // ask again on the next check
			}
			return added, until, nil
		}
	}
	return newOutcome(decide(res.Principal, res.TokenID, t, extra))
}

// target works out the org, project and permission of a request: the route's
// context_extensions first, then the path, then the configured defaults. A non-empty string
// is a configuration error to report.
func (s *Server) target(req *request) (target, string) {
	var t target
	if org := req.ext["org"]; org != "" {
		t.org, t.project = org, req.ext["project"]
	} else if org, project, ok := fromPath(req.path); ok {
		t.org, t.project = org, project
	} else {
		t.org, t.project = s.cfg.DefaultOrg, s.cfg.DefaultProject
	}
	if t.org == "" {
		return t, "the request names no org: set context_extensions org/project on the route, use a /v1/orgs/{org}/projects/{project}/ path, or start rill-authd with --default-org"
	}
	if name := req.ext["permission"]; name != "" {
		p, err := policy.ParsePerm(name)
		if err != nil {
			return t, "the route requires " + err.Error()
		}
		t.perm = p
	} else if t.project != "" {
		t.perm = policy.ReadProd
	} else {
		t.perm = policy.ReadOrg
	}
	if t.perm.Project() && t.project == "" {
		return t, "the route requires project permission " + t.perm.String() + " but names no project"
	}
	return t, ""
}

// fromPath reads org and project from /v1/{orgs|organizations}/{org}/projects/{project}/...;
// project is empty for org-level paths.
func fromPath(p string) (org, project string, ok bool) {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	rest, found := strings.CutPrefix(p, "/v1/orgs/")
	if !found {
		if rest, found = strings.CutPrefix(p, "/v1/organizations/"); !found {
			return "", "", false
		}
	}
	org, rest, _ = strings.Cut(rest, "/")
	if org = unescape(org); org == "" {
		return "", "", false
	}
	if rest, found = strings.CutPrefix(rest, "projects/"); found {
		project, _, _ = strings.Cut(rest, "/")
		project = unescape(project)
	}
	return org, project, true
}

func unescape(seg string) string {
	if strings.IndexByte(seg, '%') < 0 {
		return seg
	}
	s, err := url.PathUnescape(seg)
	if err != nil {
		return ""
	}
	return s
}

// bearerKind guesses a refused credential's kind from its shape alone.
func bearerKind(b string) string {
	switch {
	case strings.HasPrefix(b, "rill_usr_"):
		return metrics.KindUser
	case strings.HasPrefix(b, "rill_svc_"):
		return metrics.KindService
	case resolver.IsJWT(b):
		return metrics.KindEphemeral
	}
	return metrics.KindNone
}

func principalKind(p *policy.Principal) string {
	if p.Kind == policy.KindEphemeral && p.Issuer != "" {
		return metrics.KindExternalJWT
	}
	return string(p.Kind)
}

// refuse turns a resolve error into an outcome and logs it.
func (s *Server) refuse(req *request, err error) *outcome {
	if o, ok := unauthenticatedOutcomes[err]; ok {
		return s.logged(req, o, token.ID{})
	}
	if resolver.IsAuthError(err) { // a wrapped refusal: still a 401, with its own text
		return s.logged(req, newOutcome(refusal(err)), token.ID{})
	}
	if errors.Is(err, store.ErrClosed) {
		return s.logged(req, unavailableOutcome, token.ID{})
	}
	s.log.Error("check failed", "request_id", req.id, "method", req.method, "path", pathOnly(req.path), "err", err)
	return unavailableOutcome
}

// observe records a finished check.
func (s *Server) observe(req *request, o *outcome, start time.Time) {
	if s.cfg.Metrics == nil {
		return
	}
	result := metrics.ResultAllowed
	switch {
	case o.verdict.status() >= 500:
		result = metrics.ResultError
	case o.verdict != allow:
		result = metrics.ResultDenied
	}
	s.cfg.Metrics.Check(result, req.kind, o.label, time.Since(start))
}

// logged logs a denied outcome with its exact reason; never the credential.
func (s *Server) logged(req *request, o *outcome, id token.ID) *outcome {
	level := slog.LevelInfo
	if o.verdict.status() >= 500 {
		level = slog.LevelError
	}
	if !s.log.Enabled(context.Background(), level) {
		return o
	}
	attrs := []any{"request_id", req.id, "status", o.verdict.status(), "reason", o.reason, "method", req.method, "path", pathOnly(req.path)}
	if id != (token.ID{}) {
		attrs = append(attrs, "token_id", id.String())
	}
	s.log.Log(context.Background(), level, "check denied", attrs...)
	return o
}

// pathOnly drops the query, which may carry secrets of its own.
func pathOnly(p string) string {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		return p[:i]
	}
	return p
}
