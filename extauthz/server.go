// Package extauthz answers Envoy ext_authz v3 checks, over gRPC and in the HTTP (forward-auth)
// mode that nginx auth_request, Traefik ForwardAuth and Caddy forward_auth also speak. A check
// goes request -> bearer -> principal (resolver and its cache) -> decision (decide.go, policy)
// -> the transport's rendering of it (grpc.go, http.go).
package extauthz

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/rill-authd/rill-authd/internal/logsample"
	"github.com/rill-authd/rill-authd/metrics"
	"github.com/rill-authd/rill-authd/plugins"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/resolver"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
	"github.com/rill-authd/rill-authd/tracing"
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
	// Stale, when set, is asked before a credential is resolved: while it reports true the
	// store may be behind (a replica that cannot confirm it is current), so the check is denied
	// with 503 and the reason it gives. It runs on every check: it must be cheap.
	Stale func() (reason string, stale bool)
	Now   func() time.Time
	// Tracer, when set, makes each check a span, a child of the gateway's trace. Nil is tracing
	// off, and costs the check nothing.
	Tracer *tracing.ServerTracer
	// TrustedProxyHops is how many proxies in front of the HTTP (forward-auth) mode append to
	// X-Forwarded-For: the client is the address that many entries from its right, and a
	// client cannot choose it by sending the header itself. 0: the header is ignored and the
	// client is the connection's peer. The gRPC mode reads Envoy's attributes.source.address.
	TrustedProxyHops int
}

// Server decides checks. It serves the gRPC Authorization service (Check) and the HTTP mode
// (ServeHTTP); both share one decision function and cache.
type Server struct {
	res      *resolver.Resolver
	cfg      Config
	log      *slog.Logger
	now      func() time.Time
	allowed  atomic.Uint64           // allowed checks, for log sampling
	logEvery atomic.Int64            // cfg.LogAllowedEvery, changed by SetLogAllowedEvery
	plugs    atomic.Uint64           // bumped by PluginsChanged: memoized outcomes are decided again
	denials  *logsample.Sampler      // samples the lines of denied checks (newDenialLog)
	stale    atomic.Pointer[outcome] // the last stale denial, reused while its reason holds
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
	s := &Server{res: res, cfg: cfg, log: cfg.Logger, now: cfg.Now, denials: newDenialLog(cfg.Logger, cfg.Now)}
	s.logEvery.Store(int64(cfg.LogAllowedEvery))
	return s
}

// PluginsChanged says that Config.Plugins now runs another set of plugins (a config reload):
// every decision memoized with the attributes of the previous set is made again on its next
// check.
func (s *Server) PluginsChanged() { s.plugs.Add(1) }

// SetLogAllowedEvery changes Config.LogAllowedEvery (a config reload); checks read it with an
// atomic load.
func (s *Server) SetLogAllowedEvery(n int) { s.logEvery.Store(int64(n)) }

// request is the part of a check request the decision reads, whichever mode it came in.
type request struct {
	authorization string
	method, path  string
	id            string            // x-request-id, for logs
	ext           map[string]string // Envoy context_extensions
	kind          string            // credential kind, for metrics
	fault         pathFault         // set by a transport that already found the request hostile
	target        target            // as evaluate found it, for the check's span
	where         resolver.Use      // the client's address and user agent, for the token's last use
	// addr is the client's address (the zero Addr: unknown), origin and referer its Origin and
	// Referer headers: what a token's constraints are checked against (store.Limits).
	addr            netip.Addr
	origin, referer string
}

// outcome is a decision with what is derived from it for the transports: made once per token
// and target (memoized in the resolver's entry, so it goes with the next invalidation), or once
// for good for the fixed denials, and shared by every check that reaches it.
type outcome struct {
	*decision
	grpc   atomic.Pointer[grpcResponse] // the gRPC transport's rendering, made on first use
	minted exchangeState                // the runtime token exchanged for it, when exchange is on
	plugs  uint64                       // Server.plugs when it was decided
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

// Refusals of a valid token used where it may not be: 403, not 401 (the token is good; the
// place is not), made once so that a flood of them costs no allocation. They do not say where
// the token may be used.
var (
	networkOutcome = func() *outcome {
		d := denial(forbidden, "", "network_not_allowed: this token may not be used from the client's network")
		d.label = "network_not_allowed"
		return newOutcome(d)
	}()
	originOutcome = func() *outcome {
		d := denial(forbidden, "", "origin_not_allowed: this token may not be used from this page's origin")
		d.label = "origin_not_allowed"
		return newOutcome(d)
	}()
)

// errManyCredentials refuses an Authorization header that holds more than one credential.
var errManyCredentials = errors.New("more than one authorization header or credential")

var manyCredentialsOutcome = func() *outcome {
	d := refusal(errManyCredentials)
	d.label = "malformed"
	return newOutcome(d)
}()

// evaluate runs one check up to its outcome.
func (s *Server) evaluate(ctx context.Context, req *request) *outcome {
	req.kind = metrics.KindNone
	// A hostile path is refused before any credential is looked at: it costs no store read.
	t, bad, misconfig := s.target(req)
	req.target = t
	if bad != nil {
		return s.logged(req, bad, token.ID{})
	}
	// Two Authorization headers reach us joined by "," (Envoy merges them so; ServeHTTP does the
	// same), and no credential holds one: refuse rather than pick one.
	if strings.IndexByte(req.authorization, ',') >= 0 {
		return s.logged(req, manyCredentialsOutcome, token.ID{})
	}
	bearer, err := resolver.BearerFromHeader(req.authorization)
	if err != nil {
		return s.refuse(req, err)
	}
	req.kind = bearerKind(bearer)
	if s.cfg.Stale != nil {
		if reason, stale := s.cfg.Stale(); stale {
			return s.logged(req, s.staleOutcome(reason), token.ID{})
		}
	}
	res, err := s.res.ResolveFrom(ctx, bearer, req.where)
	if err != nil {
		return s.refuse(req, err)
	}
	req.kind = principalKind(res.Principal)
	// Where it is used, before what for: a token bound to networks or origins is refused
	// elsewhere whatever it could do there.
	if !res.AllowedFrom(req.addr) {
		s.res.NoteRefused(resolver.Refusal{ID: res.TokenID, Addr: req.addr, Network: true})
		return s.logged(req, networkOutcome, res.TokenID)
	}
	if !res.AllowedOrigin(req.origin, req.referer) {
		s.res.NoteRefused(resolver.Refusal{ID: res.TokenID, Addr: req.addr})
		return s.logged(req, originOutcome, res.TokenID)
	}
	if misconfig != "" {
		return s.logged(req, newOutcome(misconfigured(misconfig)), res.TokenID)
	}
	if s.cfg.Exchange != nil {
		t.instance = req.ext["instance_id"] // else the project's, found when minting
	}
	memo := resolver.MemoOf[target, *outcome](res)
	o, ok := memo.Load(t)
	if !ok {
		o = memo.LoadOrStore(t, s.outcomeOf(ctx, res, t))
	}
	// Plugin attributes went stale, or the plugins changed.
	if o.plugs != s.plugs.Load() || !o.validUntil.IsZero() && !s.now().Before(o.validUntil) {
		o = s.outcomeOf(ctx, res, t)
		memo.Store(t, o)
	}
	if o.verdict != allow {
		return s.logged(req, o, res.TokenID)
	}
	level := slog.LevelDebug
	if n := s.logEvery.Load(); n > 0 && s.allowed.Add(1)%uint64(n) == 0 {
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
	plugs := s.plugs.Load()
	var extra attributeSource
	if s.cfg.Plugins.Active() {
		extra = func(p *policy.Principal, a policy.Access, t target, attrs map[string]any) (map[string]any, time.Time, error) {
			added, until, err := s.cfg.Plugins.Attributes(ctx, plugins.Principal{Kind: string(p.Kind), ID: p.ID, Subject: p.Subject, Email: p.Email,
				Org: t.org, Project: t.project, OrgRole: string(a.OrgRole), ProjectRole: string(a.ProjectRole), Groups: p.In(t.org).Groups, Attributes: attrs})
			if err != nil {
				return nil, s.now(), err // ask again on the next check
			}
			return added, until, nil
		}
	}
	o := newOutcome(decide(res.Principal, res.TokenID, t, extra))
	o.plugs = plugs
	return o
}

// target works out the org, project and permission of a request: the route's
// context_extensions first, then the path, then the configured defaults. bad, when set, refuses
// the request (400): its path is hostile. misconfig, when set, is a configuration error to
// report once the caller is authenticated.
func (s *Server) target(req *request) (t target, bad *outcome, misconfig string) {
	if req.fault != faultNone {
		return t, pathFaultOutcomes[req.fault], ""
	}
	if org := req.ext["org"]; org != "" {
		// The route names the target; the path plays no part in it.
		t.org, t.project = org, req.ext["project"]
		if !policy.ValidOrgName(t.org) || t.project != "" && !policy.ValidProjectName(t.project) {
			return t, nil, fmt.Sprintf("the route's context_extensions name an invalid org or project %q/%q: orgs are %s; projects are %s",
				t.org, t.project, policy.OrgNameRule, policy.ProjectNameRule)
		}
	} else {
		org, project, fault := fromPath(req.path)
		if fault != faultNone {
			return t, pathFaultOutcomes[fault], ""
		}
		if org != "" {
			t.org, t.project = org, project
		} else {
			t.org, t.project = s.cfg.DefaultOrg, s.cfg.DefaultProject
			if t.org != "" && !policy.ValidOrgName(t.org) || t.project != "" && !policy.ValidProjectName(t.project) {
				return t, nil, fmt.Sprintf("--default-org/--default-project %q/%q is not a valid org or project: orgs are %s; projects are %s",
					t.org, t.project, policy.OrgNameRule, policy.ProjectNameRule)
			}
		}
	}
	if t.org == "" {
		return t, nil, "the request names no org: set context_extensions org/project on the route, use a /v1/orgs/{org}/projects/{project}/ path, or start rill-authd with --default-org"
	}
	if name := req.ext["permission"]; name != "" {
		p, err := policy.ParsePerm(name)
		if err != nil {
			return t, nil, "the route requires " + err.Error()
		}
		t.perm = p
	} else if t.project != "" {
		t.perm = policy.ReadProd
	} else {
		t.perm = policy.ReadOrg
	}
	if t.perm.Project() && t.project == "" {
		return t, nil, "the route requires project permission " + t.perm.String() + " but names no project"
	}
	return t, nil, ""
}

// pathFault is why a request path is refused: it could name one target to us and another to
// an upstream that decodes or normalizes it (as Envoy, nginx and the Rill services may do).
type pathFault uint8

const (
	faultNone pathFault = iota
	faultNotAbsolute
	faultBackslash
	faultEncodedSeparator
	faultBadEscape
	faultDotSegment
	faultEmptySegment
	faultOrgName
	faultProjectName
	faultConflictingURI
	faultDoubleEncoded
	nFaults
)

var pathFaultReasons = [nFaults]string{
	faultNotAbsolute:      "the request path does not start with /",
	faultBackslash:        `the request path holds a \`,
	faultEncodedSeparator: `the request path holds an encoded /, \ or . (%2F, %5C, %2E)`,
	faultBadEscape:        "the request path holds an invalid percent-encoding",
	faultDotSegment:       "the request path holds a dot-segment (. or ..)",
	faultEmptySegment:     "the request path holds an empty segment (//)",
	faultOrgName:          "the request path names an invalid org: orgs are " + policy.OrgNameRule,
	faultProjectName:      "the request path names an invalid project: projects are " + policy.ProjectNameRule,
	faultConflictingURI:   "the original request URI is given more than once, differently (X-Original-URI, X-Forwarded-Uri, the path after " + HTTPPrefix + ")",
	faultDoubleEncoded:    "the request path names a different target when percent-decoded twice",
}

// pathFaultOutcomes are the 400s, made once so a flood of hostile paths costs no allocation.
var pathFaultOutcomes = func() (o [nFaults]*outcome) {
	for f := faultNone + 1; f < nFaults; f++ {
		o[f] = newOutcome(badTarget(pathFaultReasons[f]))
	}
	return o
}()

// fromPath reads org and project from /v1/{orgs|organizations}/{org}/projects/{project}/...;
// project is empty for org-level paths, org empty when the path names no target. The whole path
// (not only its target part) must be free of what an upstream could resolve differently: a
// ".." after the project climbs back into the target, a %2F splits a name, a "//" shifts the
// segments. What percent-encoding is left is decoded before parsing, as the upstream does.
func fromPath(p string) (org, project string, fault pathFault) {
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	if p == "" {
		return "", "", faultNone
	}
	if p[0] != '/' {
		return "", "", faultNotAbsolute
	}
	if f := scanPath(p, true); f != faultNone {
		return "", "", f
	}
	if strings.IndexByte(p, '%') >= 0 {
		d, err := url.PathUnescape(p)
		if err != nil {
			return "", "", faultBadEscape
		}
		// Once more on the decoded path: %252F is %2F to an upstream that decodes twice.
		if f := scanPath(d, false); f != faultNone {
			return "", "", f
		}
		p = d
		// An upstream that decodes twice reads /v1/%256Frgs/victim/... as victim's: refuse a
		// path whose target changes on a second decode.
		if strings.IndexByte(d, '%') >= 0 {
			if d2, err := url.PathUnescape(d); err == nil {
				o1, p1, f1 := targetOf(d)
				o2, p2, _ := targetOf(d2)
				if f1 == faultNone && (o1 != o2 || p1 != p2) {
					return "", "", faultDoubleEncoded
				}
			}
		}
	}
	return targetOf(p)
}

// targetOf reads the target of a decoded path.
func targetOf(p string) (org, project string, fault pathFault) {
	rest, found := strings.CutPrefix(p, "/v1/orgs/")
	if !found {
		if rest, found = strings.CutPrefix(p, "/v1/organizations/"); !found {
			return "", "", faultNone
		}
	}
	org, rest, _ = strings.Cut(rest, "/")
	if org == "" { // "/v1/orgs/": names no org
		return "", "", faultNone
	}
	if !policy.ValidOrgName(org) {
		return "", "", faultOrgName
	}
	if rest, found = strings.CutPrefix(rest, "projects/"); found {
		project, _, _ = strings.Cut(rest, "/")
		if project != "" && !policy.ValidProjectName(project) {
			return "", "", faultProjectName
		}
	}
	return org, project, faultNone
}

// scanPath finds the first fault in an absolute path: a backslash, an encoded separator or dot,
// a dot-segment ("..;x" too: some servers drop path parameters), an empty segment but the
// last (a trailing slash is harmless), and, when escapes is set, a malformed %-escape.
func scanPath(p string, escapes bool) pathFault {
	segStart := 1
	for i := 1; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			seg := p[segStart:i]
			if j := strings.IndexByte(seg, ';'); j >= 0 {
				seg = seg[:j]
			}
			switch {
			case seg == "." || seg == "..":
				return faultDotSegment
			case i-segStart == 0 && i < len(p):
				return faultEmptySegment
			}
			segStart = i + 1
			continue
		}
		switch p[i] {
		case '\\':
			return faultBackslash
		case '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				if escapes {
					return faultBadEscape
				}
				continue
			}
			switch c := p[i+2] | 0x20; {
			case p[i+1] == '2' && (c == 'f' || c == 'e'), p[i+1] == '5' && c == 'c':
				return faultEncodedSeparator
			}
		}
	}
	return faultNone
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c|0x20 >= 'a' && c|0x20 <= 'f' }

// bearerKind guesses a refused credential's kind from its shape alone.
func bearerKind(b string) string {
	switch {
	case strings.HasPrefix(b, "rill_usr_"):
		return metrics.KindUser
	case strings.HasPrefix(b, "rill_svc_"):
		return metrics.KindService
	case strings.HasPrefix(b, "rill_mgc_"):
		return metrics.KindMagic
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
	if s.logsDenial(unavailableOutcome.label, slog.LevelError) {
		s.log.Error("check failed", "request_id", req.id, "method", req.method, "path", pathOnly(req.path), "err", err)
	}
	return unavailableOutcome
}

// staleOutcome is the 503 of a check refused because the store may be behind: made once per
// reason, so a stale replica under load costs no allocation per check.
func (s *Server) staleOutcome(reason string) *outcome {
	if o := s.stale.Load(); o != nil && o.reason == reason {
		return o
	}
	d := denial(unavailable, "", reason)
	d.label = unavailableOutcome.label
	o := newOutcome(d)
	s.stale.Store(o)
	return o
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

// startSpan starts the span of a check under the gateway's trace context (or as a root). Only
// called with a Tracer: with tracing off the check never gets here.
func (s *Server) startSpan(ctx context.Context, traceparent, tracestate string) (context.Context, trace.Span) {
	return s.cfg.Tracer.Start(ctx, "rill-authd check", traceparent, tracestate)
}

// endSpan records a check's outcome on its span and ends it. The attributes are the
// decision's facts (kind, decision, reason, org, project, permission, status), the method and
// the path without its query; never the credential, the token id or a header.
func endSpan(span trace.Span, req *request, o *outcome) {
	t := req.target
	if span.IsRecording() {
		decision := "allowed"
		switch {
		case o.verdict.status() >= 500:
			decision = "error"
		case o.verdict != allow:
			decision = "denied"
		}
		attrs := []attribute.KeyValue{
			attribute.String("rill.check.kind", req.kind),
			attribute.String("rill.check.decision", decision),
			attribute.String("rill.check.reason", o.label),
			attribute.Int("rill.check.status", o.verdict.status()),
			attribute.String("http.request.method", req.method),
			attribute.String("url.path", pathOnly(req.path)),
		}
		if t.org != "" {
			attrs = append(attrs, attribute.String("rill.org", t.org))
		}
		if t.project != "" {
			attrs = append(attrs, attribute.String("rill.project", t.project))
		}
		if t.perm != 0 {
			attrs = append(attrs, attribute.String("rill.permission", t.perm.String()))
		}
		if req.id != "" {
			attrs = append(attrs, attribute.String("rill.request_id", req.id))
		}
		span.SetAttributes(attrs...)
		if decision == "error" {
			span.SetStatus(codes.Error, o.reason)
		}
	}
	span.End()
}

// logsDenial reports whether a denial (or failure) of reason label is to be logged: the first
// few of each reason in a second are, the rest are counted (see newDenialLog).
func (s *Server) logsDenial(label string, level slog.Level) bool {
	return s.log.Enabled(context.Background(), level) && s.denials.Allow(label, level)
}

// logged logs a denied outcome with its exact reason, sampled per reason; never the credential.
func (s *Server) logged(req *request, o *outcome, id token.ID) *outcome {
	level := slog.LevelInfo
	if o.verdict.status() >= 500 {
		level = slog.LevelError
	}
	if !s.logsDenial(o.label, level) {
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
