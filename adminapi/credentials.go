package adminapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/resolver"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// DefaultCredentialTTL is the life of an ephemeral token when the request gives none (or 0):
// Rill's runtimeAccessTokenEmbedTTL (rilldata/rill admin/server/projects.go).
const DefaultCredentialTTL = 24 * time.Hour

func (a *API) registerCredentials(mux *http.ServeMux) {
	a.mutation(mux, "POST /v1/orgs/{org}/projects/{project}/credentials", "credentials.issue", a.credentials)
	a.mutation(mux, "POST /v1/organizations/{org}/projects/{project}/credentials", "credentials.issue", a.credentials)
	a.handle(mux, "POST /v1/introspect", a.introspect)
	a.registerSigningKeys(mux)
}

// credentials is Rill's GetDeploymentCredentials (rilldata/rill admin/server/deployment.go): a
// runtime JWT for an end user of the project's prod deployment, which the Rill runtime accepts
// as it is and our check accepts too (as an ephemeral principal with at most viewer reads,
// while the caller keeps manage_prod).
func (a *API) credentials(w http.ResponseWriter, r *http.Request, c *caller) error {
	org, project := r.PathValue("org"), r.PathValue("project")
	target := "project:" + org + "/" + project
	c.aim(target)
	proj, req, err := a.runtimeRequest(r, c, org, project)
	if err != nil {
		return err
	}
	m, err := a.mintRuntime(r, c, proj, req, nil)
	if err != nil {
		return err
	}
	return a.audited(w, r, c, "credentials.issue", fmt.Sprintf("%s for:%s jti:%s ttl:%s%s", target, m.end.who, m.jti, m.ttl, originsNote(req.origins)), http.StatusOK,
		apiv1.CredentialsResponse{RuntimeHost: m.host, InstanceID: m.instance, AccessToken: m.raw, TTLSeconds: uint32(m.ttl / time.Second)})
}

// runtimeRequest checks that the caller may ask for runtime tokens of org/project (manage_prod,
// as Rill's GetDeploymentCredentials and GetIFrame require) and reads the request body.
func (a *API) runtimeRequest(r *http.Request, c *caller, org, project string) (store.Project, credentialsRequest, error) {
	if err := c.need(org, project, policy.ManageProd); err != nil {
		return store.Project{}, credentialsRequest{}, err
	}
	if err := a.confirmLive(r, c); err != nil {
		return store.Project{}, credentialsRequest{}, err
	}
	proj, err := a.st.GetProject(r.Context(), org, project)
	if errors.Is(err, store.ErrNotFound) {
		return proj, credentialsRequest{}, errf(http.StatusNotFound, "project %q not found in org %q", project, org)
	} else if err != nil {
		return proj, credentialsRequest{}, err
	}
	req, err := decodeCredentials(r)
	return proj, req, err
}

// minted is a runtime JWT minted for a credentials or iframe request.
type minted struct {
	raw, jti, host, instance string
	ttl                      time.Duration
	end                      endUser
}

// mintRuntime mints the runtime JWT of req on proj. shape, when set, adjusts the end user (its
// attributes and rules) before signing, as GetIFrame does.
func (a *API) mintRuntime(r *http.Request, c *caller, proj store.Project, req credentialsRequest, shape func(*endUser) error) (minted, error) {
	org, project := proj.Org, proj.Name
	if req.branch != "" && req.branch != proj.ProdBranch {
		return minted{}, errf(http.StatusBadRequest, "project %s/%s does not have a deployment for branch %q", org, project, req.branch)
	}
	ttl := min(DefaultCredentialTTL, a.maxTTL)
	if req.ttl != 0 {
		ttl = time.Duration(req.ttl) * time.Second
		if ttl > a.maxTTL {
			return minted{}, errf(http.StatusBadRequest, "ttl_seconds must be at most %d (the configured maximum), not %d", int(a.maxTTL/time.Second), req.ttl)
		}
	}
	ttl, err := a.runtimeTTL(r.Context(), c, org, time.Duration(req.ttl)*time.Second, ttl)
	if err != nil {
		return minted{}, err
	}
	end, err := a.endUser(r, c, org, project, req)
	if err != nil {
		return minted{}, err
	}
	if req.external != "" {
		end.sub = proj.ExternalSubject(req.external)
	}
	if shape != nil {
		if err := shape(&end); err != nil {
			return minted{}, err
		}
	}
	host, instance, audience := proj.Runtime(*a.runtimeHost.Load(), a.instanceID, a.audience)
	// As Rill's runtime_jwt.go grants on prod, from the end user's own project permissions when
	// they are a known principal; everyone gets the reads (the caller vouches for them).
	runtimePerms := policy.RuntimePerms(end.perms | policy.ReadProd)
	perms := c.p.AccessTo(org, project).Perms & resolver.EphemeralPerms
	now := a.now().UTC().Truncate(time.Second)
	jti := token.NewID()
	claims := &token.Claims{
		RegisteredClaims: jwt.RegisteredClaims{Issuer: a.issuer, Audience: jwt.ClaimStrings{audience}, Subject: end.sub,
			IssuedAt: jwt.NewNumericDate(now.Add(-token.IssuedAtSkew)), NotBefore: jwt.NewNumericDate(now.Add(-token.IssuedAtSkew)),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)), ID: jti},
		Instances: map[string][]int{instance: runtimePerms},
		Attr:      end.attrs,
		Security:  end.sec,
		Org:       org, Project: project, Permissions: perms.Names(), IssuedBy: issuedBy(c),
		AllowedOrigins: req.origins,
	}
	ks, err := a.keys.Keyset(r.Context())
	if err != nil {
		return minted{}, err
	}
	if !ks.CanSign() {
		return minted{}, errors.New("no signing key in the store")
	}
	raw, err := ks.Sign(claims)
	if err != nil {
		return minted{}, err
	}
	a.metrics.TokenIssued(policy.KindEphemeral)
	return minted{raw: raw, jti: jti, host: host, instance: instance, ttl: ttl, end: end}, nil
}

// confirmLive refuses a caller whose token the store itself no longer has. A runtime JWT
// outlives the request that mints it (up to --max-credential-ttl), and this replica's memory,
// which authenticated the caller, may not yet know of a revocation made through another replica
// (the feed is behind, within --max-staleness): the store's word costs one read here, beside
// the project's, and a token revoked anywhere mints nothing once the revocation has committed.
func (a *API) confirmLive(r *http.Request, c *caller) error {
	if c.p.Kind != policy.KindUser && c.p.Kind != policy.KindService {
		return nil // a JWT: it cannot be revoked, it expires
	}
	_, err := a.st.GetToken(r.Context(), c.tid)
	if errors.Is(err, store.ErrRevoked) || errors.Is(err, store.ErrNotFound) {
		return errf(http.StatusUnauthorized, "%v", resolver.ErrRevoked)
	}
	return err
}

// endUser is who a credentials token is for: its sub (a user id, or none), the attributes the
// runtime's security policies see, and the project permissions its runtime permissions derive
// from (none for someone who is not a principal of ours).
type endUser struct {
	sub, who string
	attrs    map[string]any
	perms    policy.Perm
	// sec is Rill's rules for a known user whose role on the project is restricted.
	sec []json.RawMessage
}

// endUser resolves the request's user_id, user_email or attributes (at most one; none means
// the caller) the way Rill's GetDeploymentCredentials does: attributes as jwtAttributesForUser
// and jwtAttributesForService build them (admin/server/server.go), an unknown email as a
// non-admin, and a subject only for a user named by id (or a user asking for themselves).
func (a *API) endUser(r *http.Request, c *caller, org, project string, req credentialsRequest) (endUser, error) {
	switch {
	case req.userID != "":
		u, err := a.st.GetUser(r.Context(), req.userID)
		if errors.Is(err, store.ErrNotFound) || err == nil && !u.Member(org) {
			// Only the org's own users: another org's are not this caller's to name.
			return endUser{}, errf(http.StatusNotFound, "user %q not found in org %q", req.userID, org)
		} else if err != nil {
			return endUser{}, err
		}
		p := resolver.UserPrincipal(&u)
		acc := p.AccessTo(org, project)
		sec, err := p.Sec(org, project)
		return endUser{sub: u.ID, who: "user:" + u.ID, attrs: p.AttributesFor(acc), perms: acc.Perms, sec: sec}, err
	case req.userEmail != "":
		addr, err := mail.ParseAddress(req.userEmail)
		if err != nil || addr.Address != req.userEmail {
			return endUser{}, errf(http.StatusBadRequest, "user_email %q is not an email address", req.userEmail)
		}
		email := strings.ToLower(req.userEmail)
		u, err := a.st.GetUserByEmail(r.Context(), email)
		if err == nil && u.Member(org) {
			p := resolver.UserPrincipal(&u)
			acc := p.AccessTo(org, project)
			sec, err := p.Sec(org, project)
			return endUser{who: "email:" + email, attrs: p.AttributesFor(acc), perms: acc.Perms, sec: sec}, err
		} else if err != nil && !errors.Is(err, store.ErrNotFound) {
			return endUser{}, err
		}
		return endUser{who: "email:" + email, attrs: map[string]any{"email": email, "domain": policy.Domain(email), "admin": false}}, nil
	case req.attributes != nil:
		return endUser{who: "attributes", attrs: req.attributes}, nil
	case req.external != "":
		return endUser{who: "external"}, nil // no attributes, no rules: Rill resolves no principal
	case c.p.Kind == policy.KindUser:
		acc := c.p.AccessTo(org, project)
		sec, err := c.p.Sec(org, project)
		return endUser{sub: c.p.ID, who: "user:" + c.p.ID, attrs: c.p.AttributesFor(acc), perms: acc.Perms, sec: sec}, err
	}
	// A service asking for itself: no subject, no attributes, as Rill leaves them (a subject
	// shared by every end user the service embeds for would mix their runtime state).
	return endUser{who: "caller:" + string(c.p.Kind) + ":" + c.p.ID}, nil
}

// credentialsRequest is a GetDeploymentCredentialsRequest body.
type credentialsRequest struct {
	userID, userEmail, branch string
	// external is Rill's external_user_id: an end user who is no user of ours, whose runtime
	// subject is store.Project.ExternalSubject of it (so the runtime keeps their state apart).
	external   string
	attributes map[string]any
	ttl        uint32
	// origins are allowed_origins, canonical: the pages that may present the token at our check
	// (the JWT's rill_allowed_origins claim; Rill's runtime ignores it).
	origins []string
}

// decodeCredentials reads the body as Rill's JSON transcoder (vanguard over protojson) does:
// each field by its proto or its JSON name, unknown fields ignored, null as absent, an integer
// also as a string, an empty body as {}, and at most one of the user_id, user_email and
// attributes oneof.
func decodeCredentials(r *http.Request) (credentialsRequest, error) {
	var req credentialsRequest
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return req, err
	}
	fields := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(b)) > 0 {
		r.Body = io.NopCloser(bytes.NewReader(b))
		if err := decode(r, &fields); err != nil {
			return req, err
		}
	}
	field := func(proto, camel string) (json.RawMessage, string, error) {
		v1, ok1 := fields[proto]
		v2, ok2 := fields[camel]
		ok1, ok2 = ok1 && string(v1) != "null", ok2 && string(v2) != "null" && camel != proto
		switch {
		case ok1 && ok2:
			return nil, "", errf(http.StatusBadRequest, "give %s or %s, not both", proto, camel)
		case ok2:
			return v2, camel, nil
		case ok1:
			return v1, proto, nil
		}
		return nil, "", nil
	}
	str := func(proto, camel string, dst *string) error {
		v, name, err := field(proto, camel)
		if err != nil || v == nil {
			return err
		}
		if json.Unmarshal(v, dst) != nil {
			return errf(http.StatusBadRequest, "field %q must be a string", name)
		}
		return nil
	}
	if err := errors.Join(str("user_id", "userId", &req.userID), str("user_email", "userEmail", &req.userEmail),
		str("branch", "branch", &req.branch)); err != nil {
		return req, firstError(err)
	}
	if err := str("external_user_id", "externalUserId", &req.external); err != nil {
		return req, err
	} else if err := checkText("request body", map[string]string{"user_id": req.userID, "user_email": req.userEmail,
		"branch": req.branch, "external_user_id": req.external}); err != nil {
		return req, err
	} else if req.external != "" && req.userID != "" {
		return req, errf(http.StatusBadRequest, "external_user_id cannot be specified together with user_id")
	}
	if v, name, err := field("attributes", "attributes"); err != nil {
		return req, err
	} else if v != nil {
		if json.Unmarshal(v, &req.attributes) != nil || req.attributes == nil {
			return req, errf(http.StatusBadRequest, "field %q must be a JSON object", name)
		}
		if err := checkText(name, req.attributes); err != nil {
			return req, err
		}
	}
	if v, name, err := field("ttl_seconds", "ttlSeconds"); err != nil {
		return req, err
	} else if v != nil {
		text := strings.Trim(string(v), `"`)
		n, perr := strconv.ParseUint(text, 10, 32)
		if perr != nil || len(text) == 0 || text[0] == '+' {
			return req, errf(http.StatusBadRequest, "field %q must be a whole number of seconds from 0 to %d, not %s", name, uint32(math.MaxUint32), v)
		}
		req.ttl = uint32(n)
	}
	if v, name, err := field("allowed_origins", "allowedOrigins"); err != nil {
		return req, err
	} else if v != nil {
		var os []string
		if json.Unmarshal(v, &os) != nil {
			return req, errf(http.StatusBadRequest, "field %q must be a list of origins (like [\"https://shop.example.com\"])", name)
		}
		if req.origins, err = allowedOrigins(os); err != nil {
			return req, err
		}
	}
	set := 0
	for _, ok := range []bool{req.userID != "", req.userEmail != "", req.attributes != nil} {
		if ok {
			set++
		}
	}
	if set > 1 {
		return req, errf(http.StatusBadRequest, "give one of user_id, user_email or attributes, not several")
	}
	return req, nil
}

// originsNote is the audit line's note of a runtime JWT's allowed origins ("" for none).
func originsNote(origins []string) string {
	if len(origins) == 0 {
		return ""
	}
	return " origins:" + strings.Join(origins, ",")
}

// firstError is the first of errors.Join's errors, so one problem is reported at a time.
func firstError(err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()[0]
	}
	return err
}

// issuedBy names the caller in an ephemeral token's issuer claim: its kind and id, which the
// resolver reads back to check the issuer still holds manage_prod.
func issuedBy(c *caller) string { return string(c.p.Kind) + ":" + c.p.ID }

func (a *API) introspect(w http.ResponseWriter, r *http.Request, c *caller) error {
	var req apiv1.IntrospectRequest
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		if err := r.ParseForm(); err != nil {
			return errf(http.StatusBadRequest, "bad form body: %v", err)
		}
		req.Token = r.PostForm.Get("token")
	} else if err := decode(r, &req); err != nil {
		return err
	}
	if req.Token == "" {
		return errf(http.StatusBadRequest, "token is required")
	}
	manages := func(org string) bool { return c.p.AccessTo(org, "").Perms.Has(policy.ManageOrg) }
	if !c.p.Superuser && len(c.p.OrgRoles) == 0 {
		return errf(http.StatusForbidden, "introspection needs manage_org on an org")
	}
	res, err := a.res.Resolve(r.Context(), req.Token)
	if err != nil {
		if resolver.IsAuthError(err) {
			writeJSON(w, http.StatusOK, apiv1.Introspection{Active: false})
			return nil
		}
		return err
	}
	p := res.Principal
	out := apiv1.Introspection{Active: true, Sub: p.Subject, Kind: string(p.Kind), OrgRoles: map[string]string{}, ProjectRoles: map[string]string{}}
	visible := false
	for org, role := range p.OrgRoles {
		if manages(org) {
			out.OrgRoles[org], visible = string(role), true
		}
	}
	for key, role := range p.ProjectRoles {
		org, project, _ := strings.Cut(key, "/")
		if manages(org) {
			out.ProjectRoles[key], visible = string(role), true
			if p.Kind == policy.KindEphemeral {
				out.Org, out.Project = org, project
				out.Scope = strings.ReplaceAll(p.AccessTo(org, project).Perms.String(), ",", " ")
			}
		}
	}
	if !visible && !c.p.Superuser {
		// Nothing of this token lies in an org the caller manages: they learn nothing.
		writeJSON(w, http.StatusOK, apiv1.Introspection{Active: false})
		return nil
	}
	if l := res.Limits(); l != nil {
		for _, n := range l.Networks {
			out.AllowedNetworks = append(out.AllowedNetworks, n.String())
		}
		out.AllowedOrigins = l.Origins
	}
	switch p.Kind {
	case policy.KindUser:
		out.TokenType = "rill_usr"
	case policy.KindService:
		out.TokenType = "rill_svc"
	case policy.KindMagic:
		out.TokenType = "rill_mgc"
	default:
		out.TokenType = "jwt"
	}
	if p.Kind == policy.KindUser {
		// A user's groups and attributes are per org: those of the orgs the caller manages.
		for org, d := range p.Orgs {
			if manages(org) {
				if out.Orgs == nil {
					out.Orgs = map[string]apiv1.UserOrg{}
				}
				out.Orgs[org] = apiv1.UserOrg{Groups: d.Groups, Attributes: d.Attributes}
			}
		}
	} else {
		out.Attributes = p.Attributes
	}
	if exp := res.Expires(); !exp.IsZero() { // the resolver already knows it: no second read
		out.Exp = exp.Unix()
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
