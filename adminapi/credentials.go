package adminapi

import (
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/resolver"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// DefaultCredentialTTL is the life of an ephemeral token when the request gives none.
const DefaultCredentialTTL = time.Hour

func (a *API) registerCredentials(mux *http.ServeMux) {
	a.mutation(mux, "POST /v1/orgs/{org}/projects/{project}/credentials", "credentials.issue", a.credentials)
	a.mutation(mux, "POST /v1/organizations/{org}/projects/{project}/credentials", "credentials.issue", a.credentials)
	a.mutation(mux, "POST /v1/admin/signing-keys/rotate", "signing_key.rotate", a.rotateKey)
	a.handle(mux, "POST /v1/introspect", a.introspect)
	mux.HandleFunc("GET /.well-known/jwks.json", a.jwks)
}

func (a *API) credentials(w http.ResponseWriter, r *http.Request, c *caller) error {
	org, project := r.PathValue("org"), r.PathValue("project")
	target := "project:" + org + "/" + project
	c.aim(target)
	if err := c.need(org, project, policy.ManageProd); err != nil {
		return err
	}
	if _, err := a.st.GetProject(r.Context(), org, project); errors.Is(err, store.ErrNotFound) {
		return errf(http.StatusNotFound, "project %q not found in org %q", project, org)
	} else if err != nil {
		return err
	}
	var req apiv1.CredentialsRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	ttl := DefaultCredentialTTL
	if req.TTLSeconds != nil {
		ttl = time.Duration(*req.TTLSeconds) * time.Second
		if *req.TTLSeconds < 1 || ttl > a.maxTTL {
			return errf(http.StatusBadRequest, "ttl_seconds must be from 1 to %d (the configured maximum), not %d", int(a.maxTTL/time.Second), *req.TTLSeconds)
		}
	}
	var attrs map[string]any
	subject := ""
	switch {
	case req.Attributes != nil && req.UserEmail != "":
		return errf(http.StatusBadRequest, "give attributes or user_email, not both")
	case req.Attributes != nil:
		attrs = req.Attributes
		if e, ok := attrs["email"].(string); ok {
			subject = e
		}
	case req.UserEmail != "":
		addr, err := mail.ParseAddress(req.UserEmail)
		if err != nil || addr.Address != req.UserEmail {
			return errf(http.StatusBadRequest, "user_email %q is not an email address", req.UserEmail)
		}
		subject = strings.ToLower(req.UserEmail)
		// Someone who is not a member of this org is an unknown email to it: another org's user
		// is not this caller's to name, nor their groups and attributes to read.
		u, err := a.st.GetUserByEmail(r.Context(), subject)
		switch {
		case err == nil && u.Member(org):
			p := resolver.UserPrincipal(&u)
			attrs = p.AttributesFor(p.AccessTo(org, project))
		case err == nil || errors.Is(err, store.ErrNotFound):
			attrs = map[string]any{"email": subject, "domain": policy.Domain(subject), "admin": false}
		default:
			return err
		}
	default:
		return errf(http.StatusBadRequest, "give attributes (a JSON object) or user_email")
	}
	perms := c.p.AccessTo(org, project).Perms & resolver.EphemeralPerms
	now := a.now().UTC().Truncate(time.Second)
	jti := token.NewID()
	if subject == "" {
		subject = "ephemeral:" + jti
	}
	claims := &token.Claims{
		RegisteredClaims: jwt.RegisteredClaims{Issuer: a.issuer, Audience: jwt.ClaimStrings{a.audience}, Subject: subject,
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)), ID: jti},
		Org: org, Project: project, Attr: attrs, Permissions: perms.Names(), IssuedBy: issuedBy(c),
	}
	ks, err := a.keys.Keyset(r.Context())
	if err != nil {
		return err
	}
	if !ks.CanSign() {
		return errors.New("no signing key in the store")
	}
	raw, err := ks.Sign(claims)
	if err != nil {
		return err
	}
	a.metrics.TokenIssued(policy.KindEphemeral)
	return a.audited(w, r, c, "credentials.issue", fmt.Sprintf("%s sub:%s jti:%s ttl:%s", target, subject, jti, ttl), http.StatusOK, apiv1.CredentialsResponse{AccessToken: raw, TTLSeconds: int(ttl / time.Second), ExpiresAt: now.Add(ttl)})
}

// issuedBy names the caller in an ephemeral token's issuer claim: its kind and id, which the
// resolver reads back to check the issuer still holds manage_prod.
func issuedBy(c *caller) string { return string(c.p.Kind) + ":" + c.p.ID }

func (a *API) rotateKey(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := c.superuser(); err != nil {
		c.aim("signing-keys")
		return err
	}
	rot, err := a.keys.Rotate(r.Context())
	if err != nil {
		return err
	}
	res := apiv1.RotateResult{KID: rot.KID, Retired: rot.Retired}
	return a.audited(w, r, c, "signing_key.rotate", "kid:"+res.KID, http.StatusOK, res)
}

func (a *API) jwks(w http.ResponseWriter, r *http.Request) {
	ks, err := a.keys.Keyset(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	// A new key signs as soon as it is made, so verifiers must not cache the set for long.
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(ks.JWKS())
}

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
	switch p.Kind {
	case policy.KindUser:
		out.TokenType = "rill_usr"
	case policy.KindService:
		out.TokenType = "rill_svc"
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
