// Package extauthz answers Envoy ext_authz v3 checks, over gRPC and in the HTTP (forward-auth)
// mode that nginx auth_request, Traefik ForwardAuth and Caddy forward_auth also speak. A check
// goes request -> bearer -> principal (resolver and its cache) -> decision (policy) -> headers.
package extauthz

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/rill-authd/rill-authd/metrics"
	"github.com/rill-authd/rill-authd/plugins"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/resolver"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// Headers set for the upstream on an allowed request. Any other x-rill-* header a client sent
// is removed, so the upstream can trust every x-rill-* header it sees.
const (
	HeaderKind        = "x-rill-auth-kind"
	HeaderSubject     = "x-rill-subject"
	HeaderOrg         = "x-rill-org"
	HeaderProject     = "x-rill-project"
	HeaderOrgRole     = "x-rill-org-role"
	HeaderProjectRole = "x-rill-project-role"
	HeaderPermissions = "x-rill-permissions"
	HeaderAttributes  = "x-rill-attributes"
	HeaderTokenID     = "x-rill-token-id"

	headerPrefix = "x-rill-"
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

// target is what a request asks for: an org, maybe a project, and a permission on it.
type target struct {
	org, project string
	perm         policy.Perm
	instance     string // runtime instance of a token exchange
}

// request is the part of a check request the decision reads, whichever mode it came in.
type request struct {
	authorization string
	method, path  string
	id            string            // x-request-id, for logs
	ext           map[string]string // Envoy context_extensions
	kind          string            // credential kind, for metrics
}

// decision is the outcome of a check. Decisions for a (token, target) pair are computed once and
// shared by every later check of that pair until the store changes, so they are immutable.
type decision struct {
	status  int // HTTP status: 200, 401, 403 or 503
	code    codes.Code
	reason  string
	label   string      // reason as a metrics label: one of metrics.Reasons
	headers [][2]string // allowed: the x-rill-* headers, non-empty values only
	deny    [][2]string // denied: www-authenticate and content-type
	body    string      // denied: JSON {"code":…, "message":…}
	meta    map[string]any
	tokenID string
	grpc    *grpcResponse
	exch    exchangeState
	// validUntil, when set, is when plugin attributes in this decision must be asked for again.
	validUntil time.Time
}

// sets reports whether the decision sets header name (lower case).
func (d *decision) sets(name string) bool {
	for _, h := range d.headers {
		if h[0] == name {
			return true
		}
	}
	return false
}

// decide runs one check.
func (s *Server) decide(ctx context.Context, req *request) *decision {
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
		return s.logged(req, misconfigured(terr), res.TokenID)
	}
	if s.cfg.Exchange != nil {
		t.instance = req.ext["instance_id"]
		if t.instance == "" {
			t.instance = s.cfg.Exchange.InstanceID
		}
	}
	d := res.Memo(t, func() any { return s.allowOrForbid(ctx, res, t) }).(*decision)
	if !d.validUntil.IsZero() && !s.now().Before(d.validUntil) { // plugin attributes went stale
		d = s.allowOrForbid(ctx, res, t)
		res.MemoSet(t, d)
	}
	if d.status != http.StatusOK {
		return s.logged(req, d, res.TokenID)
	}
	level := slog.LevelDebug
	if n := s.cfg.LogAllowedEvery; n > 0 && s.allowed.Add(1)%uint64(n) == 0 {
		level = slog.LevelInfo
	}
	if s.log.Enabled(context.Background(), level) {
		s.log.Log(context.Background(), level, "check allowed", "request_id", req.id, "method", req.method, "path", pathOnly(req.path),
			"kind", res.Principal.Kind, "subject", res.Principal.Subject, "org", t.org, "project", t.project, "token_id", d.tokenID)
	}
	return d
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

// allowOrForbid decides a resolved principal's access to t.
func (s *Server) allowOrForbid(ctx context.Context, res resolver.Result, t target) *decision {
	p := res.Principal
	a := p.AccessTo(t.org, t.project)
	tokenID := res.TokenID.String()
	if !a.Perms.Has(t.perm) {
		var reason string
		switch {
		case t.project != "" && !a.Perms.Project():
			reason = "no access to project " + t.org + "/" + t.project
		case t.project == "" && a.Perms == 0:
			reason = "no access to org " + t.org
		case t.project != "":
			reason = "missing permission " + t.perm.String() + " on project " + t.org + "/" + t.project
		default:
			reason = "missing permission " + t.perm.String() + " on org " + t.org
		}
		d := denial(http.StatusForbidden, codes.PermissionDenied, `Bearer realm="rill", error="insufficient_scope"`, reason)
		d.tokenID, d.label = tokenID, "forbidden"
		return d
	}
	attrMap := p.AttributesFor(a)
	var validUntil time.Time
	if s.cfg.Plugins != nil {
		added, until, err := s.cfg.Plugins.Attributes(ctx, plugins.Principal{Kind: p.Kind, ID: p.ID, Subject: p.Subject, Email: p.Email,
			Org: t.org, Project: t.project, OrgRole: a.OrgRole, ProjectRole: a.ProjectRole, Groups: p.Groups, Attributes: attrMap})
		if err != nil {
			d := denial(http.StatusServiceUnavailable, codes.Unavailable, "", err.Error())
			d.validUntil, d.label = s.now(), "plugin"
			return d
		}
		for k, v := range added {
			attrMap[k] = v
		}
		validUntil = until
	}
	attrs, err := json.Marshal(attrMap)
	if err != nil { // attributes come from JSON, so this is a bug; fail closed and say so
		return denial(http.StatusInternalServerError, codes.Internal, "", "cannot encode attributes: "+err.Error())
	}
	perms := a.Perms.String()
	d := &decision{status: http.StatusOK, code: codes.OK, tokenID: tokenID, validUntil: validUntil, label: "ok"}
	add := func(k, v string) {
		if v != "" {
			d.headers = append(d.headers, [2]string{k, v})
		}
	}
	add(HeaderKind, p.Kind)
	add(HeaderSubject, p.Subject)
	add(HeaderOrg, t.org)
	add(HeaderProject, t.project)
	add(HeaderOrgRole, a.OrgRole)
	add(HeaderProjectRole, a.ProjectRole)
	add(HeaderPermissions, perms)
	add(HeaderAttributes, base64.RawURLEncoding.EncodeToString(attrs))
	add(HeaderTokenID, tokenID)
	var attrMeta map[string]any
	_ = json.Unmarshal(attrs, &attrMeta) // plain JSON types, as structpb wants them
	d.meta = map[string]any{"auth_kind": p.Kind, "subject": p.Subject, "org": t.org, "project": t.project,
		"org_role": a.OrgRole, "project_role": a.ProjectRole, "permissions": perms, "token_id": tokenID,
		"attributes": attrMeta}
	d.grpc = newGRPCResponse(d)
	d.exch.sub, d.exch.attrs, d.exch.instance, d.exch.perms = p.Subject, attrMeta, t.instance, runtimePerms(a.Perms)
	return d
}

// denial builds a denied decision.
func denial(status int, code codes.Code, wwwAuth, reason string) *decision {
	body, _ := json.Marshal(struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{int(code), reason})
	d := &decision{status: status, code: code, reason: reason, body: string(body)}
	if wwwAuth != "" {
		d.deny = append(d.deny, [2]string{"www-authenticate", wwwAuth + `, error_description="` + reason + `"`})
	}
	d.deny = append(d.deny, [2]string{"content-type", "application/json"})
	d.grpc = newGRPCResponse(d)
	return d
}

// unauthenticated are the prebuilt 401s, one per reason a credential is refused, so a flood of
// bad tokens costs no allocation for the response.
var unauthenticated = func() map[error]*decision {
	m := map[error]*decision{}
	for _, e := range resolver.AuthErrors {
		m[e] = denial(http.StatusUnauthorized, codes.Unauthenticated, `Bearer realm="rill", error="invalid_token"`, e.Error())
		m[e].label = errLabel(e)
	}
	return m
}()

var unavailable = func() *decision {
	d := denial(http.StatusServiceUnavailable, codes.Unavailable, "", "auth store unavailable")
	d.label = "unavailable"
	return d
}()

// errLabel is the metrics reason of a refused credential.
func errLabel(err error) string {
	for label, errs := range map[string][]error{
		"missing":        {resolver.ErrMissing},
		"not_bearer":     {resolver.ErrNotBearer},
		"malformed":      {resolver.ErrNotRillToken, token.ErrWrongPrefix, token.ErrUnknownType, token.ErrBadLength, token.ErrBadCharacter},
		"bad_checksum":   {token.ErrBadChecksum},
		"unknown":        {resolver.ErrUnknown},
		"expired":        {resolver.ErrExpired, token.ErrJWTExpired},
		"revoked":        {resolver.ErrRevoked},
		"owner_gone":     {resolver.ErrOwnerGone},
		"issuer_revoked": {resolver.ErrIssuerGone, resolver.ErrIssuerAccess},
	} {
		for _, e := range errs {
			if errors.Is(err, e) {
				return label
			}
		}
	}
	return "jwt_invalid"
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
	return p.Kind
}

// refuse turns a resolve error into a decision and logs it.
func (s *Server) refuse(req *request, err error) *decision {
	if d, ok := unauthenticated[err]; ok {
		return s.logged(req, d, token.ID{})
	}
	if resolver.IsAuthError(err) { // a wrapped refusal: still a 401, with its own text
		d := denial(http.StatusUnauthorized, codes.Unauthenticated, `Bearer realm="rill", error="invalid_token"`, err.Error())
		d.label = errLabel(err)
		return s.logged(req, d, token.ID{})
	}
	if errors.Is(err, store.ErrClosed) {
		return s.logged(req, unavailable, token.ID{})
	}
	s.log.Error("check failed", "request_id", req.id, "method", req.method, "path", pathOnly(req.path), "err", err)
	return unavailable
}

func misconfigured(msg string) *decision {
	d := denial(http.StatusInternalServerError, codes.Internal, "", msg)
	d.label = "misconfigured"
	return d
}

// observe records a finished check.
func (s *Server) observe(req *request, d *decision, start time.Time) {
	if s.cfg.Metrics == nil {
		return
	}
	result := metrics.ResultAllowed
	switch {
	case d.status >= 500:
		result = metrics.ResultError
	case d.status != http.StatusOK:
		result = metrics.ResultDenied
	}
	s.cfg.Metrics.Check(result, req.kind, d.label, time.Since(start))
}

// logged logs a denied decision with its exact reason; never the credential.
func (s *Server) logged(req *request, d *decision, id token.ID) *decision {
	level := slog.LevelInfo
	if d.status >= 500 {
		level = slog.LevelError
	}
	if !s.log.Enabled(context.Background(), level) {
		return d
	}
	attrs := []any{"request_id", req.id, "status", d.status, "reason", d.reason, "method", req.method, "path", pathOnly(req.path)}
	if id != (token.ID{}) {
		attrs = append(attrs, "token_id", id.String())
	}
	s.log.Log(context.Background(), level, "check denied", attrs...)
	return d
}

// pathOnly drops the query, which may carry secrets of its own.
func pathOnly(p string) string {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		return p[:i]
	}
	return p
}

// String is for test failure messages.
func (d *decision) String() string {
	return fmt.Sprintf("%d %s %q", d.status, d.code, d.reason)
}
