// Package adminapi is rill-authd's admin HTTP API (JSON): orgs, projects, users, services and
// their tokens, user tokens and the audit log, authenticated with the same bearer tokens the
// check path accepts and authorized with policy's role tables. Its request and response bodies
// are the types of adminapi/apiv1; the Go client is adminapi/client.
package adminapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/internal/logsample"
	"github.com/rill-authd/rill-authd/keys"
	"github.com/rill-authd/rill-authd/metrics"
	"github.com/rill-authd/rill-authd/plugins"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/resolver"
	"github.com/rill-authd/rill-authd/signin"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// MaxBody is the largest request body accepted.
const MaxBody = 1 << 20

// Options configures the API.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time
	// Issuer is the iss of the runtime JWTs the credentials endpoint mints (the resolver's);
	// Audience, RuntimeHost and InstanceID are their aud, the runtime host answered and the ins
	// key for a project without its own. MaxCredentialTTL caps their ttl_seconds (default 24h).
	Issuer, Audience        string
	RuntimeHost, InstanceID string
	MaxCredentialTTL        time.Duration
	// FrontendURL is Rill's frontend (its admin service's --frontend-url): iframe URLs and
	// public URLs point under it.
	FrontendURL string
	// Keys sign ephemeral JWTs, rotate, and make the JWKS (default: the resolver's, so that
	// what the API signs the resolver verifies).
	Keys *keys.Ring
	// Plugins, when set, is reported by GET /v1/admin/plugins.
	Plugins *plugins.Host
	// Metrics, when set, counts requests and token lifecycle events.
	Metrics *metrics.Metrics
	// Stale, when set, is the check path's staleness (extauthz.Config.Stale, the same function):
	// while it reports true this replica may not have every change (a revocation, a role taken
	// away), so every authenticated request (admin writes and reads, credentials, introspection)
	// is refused with 503 and its reason before the caller is looked up in memory.
	Stale func() (reason string, stale bool)
	// MaxTokensPerOwner caps the live tokens of one user or service that the API issues (409
	// past it; 0: no cap). Imports and bootstrap are not capped.
	MaxTokensPerOwner int
	// TokenIssuesPerMinute limits the tokens one principal issues through this replica (429
	// with Retry-After past it; 0: no limit).
	TokenIssuesPerMinute int
	// OrgIssuesPerMinute limits, per org and replica, the services created and service tokens
	// issued in the org and what its services issue (429 past it; 0: no limit): services are new
	// principals, each with its own TokenIssuesPerMinute, so without an org budget an admin
	// multiplies the rate by creating services that create services.
	OrgIssuesPerMinute int
	// MaxPublicURLsPerProject caps the live public URLs of one project (409 past it; 0: no
	// cap). Each creator's are capped by MaxTokensPerOwner, so one member cannot use up the
	// project's; this is the much higher backstop for the project as a whole.
	MaxPublicURLsPerProject int
	// TrustedProxyHops is how a token's allowed networks find the client of an admin request
	// (resolver.ClientAddr): 0, the connection's peer; N, the X-Forwarded-For entry N from its
	// right. The daemon's --trusted-proxy-hops.
	TrustedProxyHops int
	// Device, when set, is the device authorization grant (`rillctl login`) whose requests the
	// signed-in user approves through /v1/device; DeviceTokenTTL is the life of the token an
	// approval issues when no org policy limits it (0: DefaultDeviceTokenTTL; negative: never
	// expires).
	Device         *signin.Device
	DeviceTokenTTL time.Duration
}

// API serves the admin endpoints.
type API struct {
	st  store.Store
	res *resolver.Resolver
	log *slog.Logger
	now func() time.Time

	issuer, audience string
	instanceID       string
	maxTTL           time.Duration
	keys             *keys.Ring
	plugins          *plugins.Host
	metrics          *metrics.Metrics
	stale            func() (string, bool)
	proxyHops        int // Options.TrustedProxyHops
	// maxMagicPerProject caps a project's live public URLs (each creator's: maxPerOwner).
	maxMagicPerProject int
	orgIssues          *issueLimiter // keyed by org; nil: no limit
	unavailable        *logsample.Sampler
	device             *signin.Device
	deviceTokenTTL     time.Duration // 0: never expires

	// Settings a config reload changes (SetLive): atomics, read per request.
	runtimeHost, frontendURL atomic.Pointer[string]
	maxPerOwner              atomic.Int64
	issues                   atomic.Pointer[issueLimiter] // nil: no limit
}

// unavailableEvery is the window of the "store is unavailable" line: in an outage of PostgreSQL
// every admin request fails alike (650 lines in 36 s once), so the first of each window is
// logged and the rest counted in one line at its end.
const unavailableEvery = 10 * time.Second

// Live are the API's settings that a config reload (SIGHUP) changes while it serves.
type Live struct {
	RuntimeHost, FrontendURL                string
	MaxTokensPerOwner, TokenIssuesPerMinute int
}

// SetLive applies a reloaded configuration to the requests that start after it. A changed
// issue rate starts afresh (every principal with a full bucket).
func (a *API) SetLive(l Live) {
	a.runtimeHost.Store(&l.RuntimeHost)
	a.frontendURL.Store(&l.FrontendURL)
	a.maxPerOwner.Store(int64(l.MaxTokensPerOwner))
	if old := a.issues.Load(); old == nil || old.perMinute != l.TokenIssuesPerMinute {
		a.issues.Store(newIssueLimiter(l.TokenIssuesPerMinute, a.now))
	}
}

func (a *API) frontend() string { return *a.frontendURL.Load() }
func (a *API) perOwner() int    { return int(a.maxPerOwner.Load()) }

// New returns the API over st, authenticating callers with res.
func New(st store.Store, res *resolver.Resolver, o Options) *API {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxCredentialTTL == 0 {
		o.MaxCredentialTTL = 24 * time.Hour
	}
	if o.Keys == nil {
		o.Keys = res.Keys()
	}
	a := &API{st: st, res: res, keys: o.Keys, log: o.Logger, now: o.Now, issuer: o.Issuer, audience: o.Audience,
		instanceID: o.InstanceID, maxTTL: o.MaxCredentialTTL, plugins: o.Plugins, metrics: o.Metrics, stale: o.Stale, proxyHops: o.TrustedProxyHops,
		unavailable: logsample.New(o.Logger, logsample.Options{Msg: "admin requests failed, not logged: the store is unavailable",
			Every: unavailableEvery, Burst: 1, Now: o.Now}),
		orgIssues: newIssueLimiter(o.OrgIssuesPerMinute, o.Now), maxMagicPerProject: o.MaxPublicURLsPerProject,
		device: o.Device, deviceTokenTTL: max(o.DeviceTokenTTL, 0)}
	if o.DeviceTokenTTL == 0 {
		a.deviceTokenTTL = DefaultDeviceTokenTTL
	}
	a.SetLive(Live{RuntimeHost: o.RuntimeHost, FrontendURL: o.FrontendURL, MaxTokensPerOwner: o.MaxTokensPerOwner, TokenIssuesPerMinute: o.TokenIssuesPerMinute})
	return a
}

// Error is a refused request: the HTTP status, and the gRPC code and message that go on the wire
// as an apiv1.Error.
type Error struct {
	Status  int
	Code    int
	Message string
	// retryAfter, in seconds, is sent as Retry-After (a 429).
	retryAfter int
}

func (e *Error) Error() string { return e.Message }

func errf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Code: int(grpcCode(status)), Message: fmt.Sprintf(format, args...)}
}

func grpcCode(status int) codes.Code {
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		return codes.InvalidArgument
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	case http.StatusNotFound:
		return codes.NotFound
	case http.StatusConflict:
		return codes.AlreadyExists
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	case http.StatusTooManyRequests:
		return codes.ResourceExhausted
	case http.StatusNotImplemented:
		return codes.Unimplemented
	case http.StatusUnsupportedMediaType:
		return codes.InvalidArgument
	}
	return codes.Internal
}

// caller is the authenticated principal of a request.
type caller struct {
	p         *policy.Principal
	tokenID   string
	tid       token.ID
	actor     string
	requestID string
	// action is the mutation the route performs and target what it acts on, as far as the
	// handler has learnt; a refusal (403) is audited with them by handle, in one place.
	action, target string
	// issueCharged: the request has spent its token issue of the rate limit; orgCharged, its
	// org's.
	issueCharged, orgCharged bool
	// named is the TokenLabel of the token the mutation issued or revoked, for its audit
	// event's Detail: the target names it by UUID, which says nothing once it is gone.
	named string
	// assumed is the email of the superuser who issued the caller's token to act as the
	// caller (API.assumedBy), once assumedRead.
	assumed     string
	assumedRead bool
}

// aim names what the caller is acting on, unless a handler named it more precisely first.
func (c *caller) aim(target string) {
	if c.target == "" {
		c.target = target
	}
}

func (c *caller) isUser() bool { return c.p.Kind == policy.KindUser }

// need returns a 403 unless the caller holds perm on org (and project, if given).
func (c *caller) need(org, project string, perm policy.Perm) error {
	if c.p.AccessTo(org, project).Perms.Has(perm) {
		return nil
	}
	where := "org " + org
	if project != "" {
		where = "project " + org + "/" + project
	}
	return errf(http.StatusForbidden, "%s lacks %s on %s", c.actor, perm, where)
}

// grantable returns a 403 unless the caller may hand out orgRole on org and projectRole on
// org/project: no one grants more than they hold.
func (c *caller) grantable(org string, orgRole policy.Role, project string, projectRole policy.Role) error {
	a := c.p.AccessTo(org, project)
	if orgRole != "" {
		if orgRole == policy.Admin && !a.Perms.Has(policy.ManageOrgAdmins) || !orgRole.AtMost(a.OrgRole) {
			return errf(http.StatusForbidden, "%s cannot grant org role %s: it is above their own (%s)", c.actor, orgRole, orNone(a.OrgRole))
		}
	}
	if projectRole != "" && !projectRole.AtMost(a.ProjectRole) {
		return errf(http.StatusForbidden, "%s cannot grant project role %s on %s/%s: it is above their own (%s)", c.actor, projectRole, org, project, orNone(a.ProjectRole))
	}
	return nil
}

func (c *caller) superuser() error {
	if c.p.Superuser {
		return nil
	}
	return errf(http.StatusForbidden, "only a superuser may do this (%s is not one)", c.actor)
}

func orNone(s policy.Role) policy.Role {
	if s == "" {
		return "none"
	}
	return s
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, c *caller) error

// handle registers a read behind authentication, the body limit and error rendering.
func (a *API) handle(mux *http.ServeMux, pattern string, h handlerFunc) {
	a.mutation(mux, pattern, "", h)
}

// mutation registers h like handle; a refused call (403) is audited as action on the target
// the handler named (c.aim or c.target), or on the path when it named none.
func (a *API) mutation(mux *http.ServeMux, pattern, action string, h handlerFunc) {
	mux.HandleFunc(pattern, func(rw http.ResponseWriter, r *http.Request) {
		w := &statusWriter{ResponseWriter: rw, code: http.StatusOK}
		defer func() { a.metrics.AdminRequest(pattern, w.code) }()
		r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
		c, err := a.authenticate(r)
		if err == nil {
			err = checkRequestText(r)
		}
		if err == nil {
			c.action = action
			if action != "" {
				// Before the handler: a mutation may revoke the very token it is made with.
				a.assumedBy(r.Context(), c)
			}
			if err = h(w, r, c); err != nil && action != "" {
				c.aim("path:" + r.URL.Path)
				a.auditDenied(r.Context(), c, err)
			}
		}
		if err != nil {
			a.fail(w, r, err)
		}
	})
}

func (a *API) authenticate(r *http.Request) (*caller, error) {
	bearer, err := resolver.BearerFromHeader(r.Header.Get("Authorization"))
	if err != nil {
		return nil, errf(http.StatusUnauthorized, "%v", err)
	}
	// As a check does (extauthz evaluate): a malformed credential is a 401 whatever the store's
	// state, anything else waits for a replica that knows it has every change.
	if err := a.current(); err != nil {
		return nil, err
	}
	// A call is a use of its token, from its client: the one a token's allowed networks are
	// checked against below.
	client := resolver.ClientAddr(r, a.proxyHops)
	res, err := a.res.ResolveFrom(r.Context(), bearer, resolver.Use{IP: client, UserAgent: r.UserAgent()})
	if err != nil {
		if resolver.IsAuthError(err) {
			return nil, errf(http.StatusUnauthorized, "%v", err)
		}
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	// A token bound to networks or origins is refused here elsewhere as a check refuses it: a
	// leaked one must not issue unbound tokens from anywhere.
	if !res.AllowedFrom(client) {
		return nil, errf(http.StatusForbidden, "network_not_allowed: this token may not be used from the client's network")
	}
	if !res.AllowedOrigin(r.Header.Get("Origin"), r.Header.Get("Referer")) {
		return nil, errf(http.StatusForbidden, "origin_not_allowed: this token may not be used from this page's origin")
	}
	p := res.Principal
	actor := "user:" + p.Subject
	if p.Kind == policy.KindMagic {
		actor = "magic:" + p.Subject // its display prefix
	}
	if p.Kind == policy.KindService {
		// A service acts in one org: that of its org role, else of its project roles.
		org := ""
		for o := range p.OrgRoles {
			org = o
		}
		for k := range p.ProjectRoles {
			if org == "" {
				org, _, _ = strings.Cut(k, "/")
			}
		}
		actor = "service:" + p.Subject
		if org != "" {
			actor = "service:" + org + "/" + p.Subject
		}
	}
	reqID := r.Header.Get("X-Request-Id")
	if reqID == "" {
		reqID = token.NewID()
	}
	return &caller{p: p, tokenID: res.TokenID.String(), tid: res.TokenID, actor: actor, requestID: reqID}, nil
}

// current is nil unless this replica cannot confirm it is current (Options.Stale), in which
// case it is the 503 that refuses whatever would grant or write on its memory's word.
func (a *API) current() error {
	if a.stale == nil {
		return nil
	}
	if reason, stale := a.stale(); stale {
		return errf(http.StatusServiceUnavailable, "%s", reason)
	}
	return nil
}

// statusWriter remembers the status code, for metrics.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (the backup lifts its deadline).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// fail renders err: an *Error as is, store sentinels as 404/409, anything else as a 500 that is
// logged but not shown.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &e):
	case errors.As(err, &tooBig):
		e = errf(http.StatusRequestEntityTooLarge, "request body is over %d bytes", MaxBody)
	case errors.Is(err, store.ErrNotFound):
		e = errf(http.StatusNotFound, "%v", err)
	case errors.Is(err, store.ErrConflict):
		e = errf(http.StatusConflict, "%v", err)
	case errors.Is(err, store.ErrInvalid):
		e = errf(http.StatusBadRequest, "%v", err)
	case errors.Is(err, store.ErrClosed):
		e = errf(http.StatusServiceUnavailable, "the store is closed (shutting down)")
	case errors.Is(err, store.ErrUnavailable):
		if a.unavailable.Allow("", slog.LevelWarn) {
			a.log.Warn("admin request failed: the store is unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		e = errf(http.StatusServiceUnavailable, "the store (PostgreSQL) cannot be reached: retry later; a write that failed this way may still have been applied, so read before writing again")
	default:
		a.log.Error("admin request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		e = errf(http.StatusInternalServerError, "internal error; see the rill-authd log")
	}
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="rill", error="invalid_token"`)
	}
	switch {
	case e.retryAfter > 0:
		w.Header().Set("Retry-After", strconv.Itoa(e.retryAfter))
	case e.Status == http.StatusServiceUnavailable:
		// Another replica, or this one once it has caught up or reconnected, can answer.
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, e.Status, apiv1.Error{Code: e.Code, Message: e.Message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// checkText refuses, with 400, text in v that no engine may store (store.CheckFields: a NUL
// character, bytes that are not UTF-8), naming the field.
func checkText(what string, v any) error {
	if err := store.CheckFields(what, v); err != nil {
		return errf(http.StatusBadRequest, "%s", strings.TrimPrefix(err.Error(), store.ErrInvalid.Error()+": "))
	}
	return nil
}

// checkRequestText refuses a path or query that holds text no engine may store: it names
// records (emails, service and token names) that would be looked up with it.
func checkRequestText(r *http.Request) error {
	if err := checkText("path", r.URL.Path); err != nil {
		return err
	}
	return checkText("query", map[string][]string(r.URL.Query()))
}

// decode reads a JSON body into v, naming the problem when it is not acceptable.
func decode(r *http.Request, v any) error { return decodeFrom(r.Body, v) }

// decodeFrom is decode of a body already read or rewritten.
func decodeFrom(body io.Reader, v any) error {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var tooBig *http.MaxBytesError
	switch {
	case err == nil:
		if dec.More() {
			return errf(http.StatusBadRequest, "request body has data after the JSON object")
		}
		return checkText("request body", v)
	case errors.As(err, &tooBig):
		return err
	case errors.Is(err, io.EOF):
		return errf(http.StatusBadRequest, "request body is empty; a JSON object was expected")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errf(http.StatusBadRequest, "request body is not valid JSON: it ends early")
	case errors.As(err, &syn):
		return errf(http.StatusBadRequest, "request body is not valid JSON at byte %d: %v", syn.Offset, err)
	case errors.As(err, &typ):
		return errf(http.StatusBadRequest, "field %q must be a %s, not a JSON %s", typ.Field, jsonKind(typ.Type.Kind().String()), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return errf(http.StatusBadRequest, "unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return errf(http.StatusBadRequest, "bad request body: %v", err)
}

func jsonKind(k string) string {
	switch k {
	case "map", "struct":
		return "JSON object"
	case "slice":
		return "JSON array"
	case "int", "int64", "uint", "float64":
		return "number"
	}
	return k
}

// Org and project names follow policy's rules, which the check applies to the names it reads.
var (
	orgName     = policy.ValidOrgName
	projectName = policy.ValidProjectName
	serviceName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`).MatchString
)

func checkName(field, v string, valid func(string) bool, rule string) error {
	if !valid(v) {
		if v == "" {
			return errf(http.StatusBadRequest, "%s is required", field)
		}
		return errf(http.StatusBadRequest, "%s %q is invalid: %s", field, v, rule)
	}
	return nil
}

// audit records an admin mutation. A failure to write it fails the request: an unaudited change
// is worse than a refused one.
func (a *API) audit(ctx context.Context, c *caller, action, target string) error {
	detail := a.auditDetail(ctx, c)
	if c.named != "" {
		detail = strings.TrimSuffix(c.named+"; "+detail, "; ")
	}
	if err := a.st.AppendAudit(ctx, store.AuditEvent{Time: a.now().UTC(), Actor: c.actor, Action: action, Target: target, Outcome: "ok", Detail: detail}); err != nil {
		return fmt.Errorf("write audit event: %w", err)
	}
	a.log.Info("admin mutation", "request_id", c.requestID, "actor", c.actor, "action", action, "target", target)
	return nil
}

// audited records a successful mutation and then answers with v.
func (a *API) audited(w http.ResponseWriter, r *http.Request, c *caller, action, target string, status int, v any) error {
	if err := a.audit(r.Context(), c, action, target); err != nil {
		return err
	}
	writeJSON(w, status, v)
	return nil
}

// auditDenied records a refused mutation, best effort.
func (a *API) auditDenied(ctx context.Context, c *caller, err error) {
	action, target := c.action, c.target
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusForbidden {
		return
	}
	_ = a.st.AppendAudit(ctx, store.AuditEvent{Time: a.now().UTC(), Actor: c.actor, Action: action, Target: target, Outcome: "denied: " + e.Message, Detail: a.auditDetail(ctx, c)})
	a.log.Info("admin mutation denied", "request_id", c.requestID, "actor", c.actor, "action", action, "target", target, "reason", e.Message)
}

// auditDetail is the Detail every audit event of c's carries: how the call came (via: ui) and,
// for a token a superuser issued to act as the caller, who that superuser is, so that an event
// names both identities.
func (a *API) auditDetail(ctx context.Context, c *caller) string {
	detail := viaDetail(ctx)
	if by := a.assumedBy(ctx, c); by != "" {
		detail = strings.TrimPrefix(detail+"; assumed by user:"+by, "; ")
	}
	return detail
}
