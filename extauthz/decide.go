package extauthz

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/resolver"
	"github.com/rill-authd/rill-authd/token"
)

// This file is the decision: principal + target -> verdict, headers and facts. It knows no
// transport (TestDecisionImportsNoTransport keeps it so); grpc.go and http.go render it.

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

// verdict is what a check concludes. Its values are the google.rpc.Code numbers, which the
// JSON body of a denial carries and the gRPC status sends.
type verdict int32

const (
	allow           verdict = 0
	badRequest      verdict = 3 // INVALID_ARGUMENT
	unauthenticated verdict = 16
	forbidden       verdict = 7
	internalError   verdict = 13
	unavailable     verdict = 14
)

// status is the HTTP status of the verdict, sent to the client by either transport.
func (v verdict) status() int {
	switch v {
	case allow:
		return 200
	case badRequest:
		return 400
	case unauthenticated:
		return 401
	case forbidden:
		return 403
	case unavailable:
		return 503
	}
	return 500
}

// header is one header to set, lower-case name.
type header struct{ name, value string }

// target is what a request asks for: an org, maybe a project, and a permission on it.
type target struct {
	org, project string
	perm         policy.Perm
	instance     string // runtime instance of a token exchange
}

// MemoProject says which project a decision memoized for t is about (resolver.ProjectScoped):
// a change of that project drops it (an exchange's runtime audience and instance are the
// project's).
func (t target) MemoProject() (org, project string) { return t.org, t.project }

// decision is the outcome of a check. Decisions for a (token, target) pair are computed once and
// shared by every later check of that pair until the store changes, so they are immutable.
type decision struct {
	verdict verdict
	reason  string
	label   string   // reason as a metrics label: one of metrics.Reasons
	set     []header // allowed: the x-rill-* headers, non-empty values only; denied: www-authenticate and content-type
	body    string   // denied: JSON {"code":…, "message":…}
	meta    map[string]any
	tokenID string
	grant   runtimeGrant // allowed: what a runtime token exchanged for this decision carries
	// validUntil, when set, is when plugin attributes in this decision must be asked for again.
	validUntil time.Time
}

// runtimeGrant is what a runtime JWT minted for an allowed decision says.
type runtimeGrant struct {
	sub          string
	attrs        map[string]any
	org, project string
	instance     string // from the route; "" for the project's own, else the configured default
	perms        []int
	sec          []json.RawMessage // Rill's security rules for the principal there (policy.Principal.Sec)
}

// attributeSource adds attributes to those of the principal on a target it may access (the
// attribute-source plugins), and says until when they hold; nil adds none.
type attributeSource func(p *policy.Principal, a policy.Access, t target, attrs map[string]any) (added map[string]any, validUntil time.Time, err error)

// decide decides a resolved principal's access to t.
func decide(p *policy.Principal, tokenID token.ID, t target, extra attributeSource) *decision {
	a := p.AccessTo(t.org, t.project)
	id := tokenID.String()
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
		d := denial(forbidden, `Bearer realm="rill", error="insufficient_scope"`, reason)
		d.tokenID, d.label = id, "forbidden"
		return d
	}
	attrMap := p.AttributesFor(a)
	var validUntil time.Time
	if extra != nil {
		added, until, err := extra(p, a, t, attrMap)
		if err != nil {
			d := denial(unavailable, "", err.Error())
			d.validUntil, d.label = until, "plugin"
			return d
		}
		for k, v := range added {
			attrMap[k] = v
		}
		validUntil = until
	}
	attrs, err := json.Marshal(attrMap)
	if err != nil { // attributes come from JSON, so this is a bug; fail closed and say so
		return denial(internalError, "", "cannot encode attributes: "+err.Error())
	}
	sec, err := p.Sec(t.org, t.project)
	if err != nil { // resource names are checked when set; fail closed and say so
		return denial(internalError, "", "cannot encode security rules: "+err.Error())
	}
	perms := a.Perms.String()
	d := &decision{verdict: allow, tokenID: id, validUntil: validUntil, label: "ok"}
	add := func(k, v string) {
		if v != "" {
			d.set = append(d.set, header{k, v})
		}
	}
	add(HeaderKind, string(p.Kind))
	add(HeaderSubject, p.Subject)
	add(HeaderOrg, t.org)
	add(HeaderProject, t.project)
	add(HeaderOrgRole, string(a.OrgRole))
	add(HeaderProjectRole, string(a.ProjectRole))
	add(HeaderPermissions, perms)
	add(HeaderAttributes, base64.RawURLEncoding.EncodeToString(attrs))
	add(HeaderTokenID, id)
	var attrMeta map[string]any
	_ = json.Unmarshal(attrs, &attrMeta) // plain JSON types, as structpb wants them
	d.meta = map[string]any{"auth_kind": string(p.Kind), "subject": p.Subject, "org": t.org, "project": t.project,
		"org_role": string(a.OrgRole), "project_role": string(a.ProjectRole), "permissions": perms, "token_id": id,
		"attributes": attrMeta}
	d.grant = runtimeGrant{sub: p.SubjectID, attrs: attrMeta, org: t.org, project: t.project, instance: t.instance, perms: policy.RuntimePerms(a.Perms), sec: sec}
	return d
}

// denial builds a denied decision; challenge, when set, is the www-authenticate value before
// its error_description.
func denial(v verdict, challenge, reason string) *decision {
	body, _ := json.Marshal(struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{int(v), reason})
	d := &decision{verdict: v, reason: reason, body: string(body)}
	if challenge != "" {
		d.set = append(d.set, header{"www-authenticate", challenge + `, error_description="` + reason + `"`})
	}
	d.set = append(d.set, header{"content-type", "application/json"})
	return d
}

// refusal is the decision on a credential the resolver refused (a resolver.IsAuthError).
func refusal(err error) *decision {
	d := denial(unauthenticated, `Bearer realm="rill", error="invalid_token"`, err.Error())
	d.label = errLabel(err)
	return d
}

// badTarget is the decision on a request whose path could name one target to us and another
// to the upstream.
func badTarget(reason string) *decision {
	d := denial(badRequest, "", reason)
	d.label = "bad_target"
	return d
}

func misconfigured(msg string) *decision {
	d := denial(internalError, "", msg)
	d.label = "misconfigured"
	return d
}

// storeUnavailable is the decision when the credential cannot be looked up.
func storeUnavailable() *decision {
	d := denial(unavailable, "", "auth store unavailable")
	d.label = "unavailable"
	return d
}

// errLabel is the metrics reason of a refused credential.
func errLabel(err error) string {
	for label, errs := range map[string][]error{
		"missing":        {resolver.ErrMissing},
		"not_bearer":     {resolver.ErrNotBearer},
		"malformed":      {resolver.ErrNotRillToken, token.ErrWrongPrefix, token.ErrUnknownType, token.ErrBadLength, token.ErrBadCharacter, token.ErrBadPayload},
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

// sets reports whether the decision sets header name (lower case).
func (d *decision) sets(name string) bool {
	for _, h := range d.set {
		if h.name == name {
			return true
		}
	}
	return false
}

// headersToRemove lists the client-sent headers (names as sent) that must not reach the
// upstream: every x-rill-* header the decision does not set. One it sets is never listed:
// Envoy removes after it sets, so it would vanish. Nil when there are none.
func headersToRemove[V any](d *decision, sent map[string]V) []string {
	var remove []string
	for k := range sent {
		if len(k) >= len(headerPrefix) && strings.EqualFold(k[:len(headerPrefix)], headerPrefix) && !d.sets(strings.ToLower(k)) {
			remove = append(remove, k)
		}
	}
	return remove
}

// String is for test failure messages.
func (d *decision) String() string {
	return fmt.Sprintf("%d %d %q", d.verdict.status(), d.verdict, d.reason)
}
