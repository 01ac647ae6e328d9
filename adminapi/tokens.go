package adminapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// newToken mints a token for owner, living ttl (0: never expires) and bound to networks (its
// allowed networks, canonical: see allowedNetworks), and stores its hash, within the caller's
// issue rate and the owner's cap on live tokens.
func (a *API) newToken(ctx context.Context, c *caller, k token.Kind, owner, name string, ttl time.Duration, networks []string) (apiv1.IssuedToken, error) {
	if err := a.chargeIssue(c); err != nil {
		return apiv1.IssuedToken{}, err
	}
	tok, err := token.New(k)
	if err != nil {
		return apiv1.IssuedToken{}, err
	}
	rec := store.NewToken(tok, owner, name, c.actor, a.now(), ttl)
	rec.AllowedNetworks = networks
	if err := a.st.CreateTokenCapped(ctx, rec, a.perOwner()); err != nil {
		return apiv1.IssuedToken{}, fmt.Errorf("store token: %w", a.tooManyTokens(ctx, c, k, owner, err))
	}
	a.metrics.TokenIssued(policy.KindOf(k))
	return apiv1.IssuedToken{Token: tok.Encode(), TokenInfo: tokenInfo(rec)}, nil
}

// tokenOwner is the user whose tokens a request is about: the caller, or (superusers only) the
// user named by user_email.
func (a *API) tokenOwner(ctx context.Context, c *caller, email string) (store.User, error) {
	if !c.isUser() {
		return store.User{}, errf(http.StatusForbidden, "%s is a service: user tokens belong to users (use service token commands)", c.actor)
	}
	if email == "" || strings.EqualFold(email, c.p.Email) {
		u, err := a.st.GetUser(ctx, c.p.ID)
		return u, err
	}
	if err := c.superuser(); err != nil {
		return store.User{}, errf(http.StatusForbidden, "only a superuser may manage another user's tokens (%s is not one)", c.actor)
	}
	return a.userByEmail(ctx, email)
}

func (a *API) issueUserToken(w http.ResponseWriter, r *http.Request, c *caller) error {
	var req apiv1.TokenRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.DisplayName) == "" {
		return errf(http.StatusBadRequest, "display_name is required")
	}
	if len(req.DisplayName) > 200 {
		return errf(http.StatusBadRequest, "display_name is longer than 200 characters")
	}
	if req.TTLMinutes < 0 {
		return errf(http.StatusBadRequest, "ttl_minutes must be 0 (never expires) or more, not %d", req.TTLMinutes)
	}
	if req.TTLMinutes > 100*365*24*60 {
		return errf(http.StatusBadRequest, "ttl_minutes %d is more than 100 years", req.TTLMinutes)
	}
	networks, err := allowedNetworks(req.AllowedNetworks)
	if err != nil {
		return err
	}
	u, err := a.tokenOwner(r.Context(), c, req.UserEmail)
	if err != nil {
		c.aim("user:" + req.UserEmail)
		return err
	}
	c.aim("user:" + u.Email)
	if err := a.notAssumed(r.Context(), c, "no token may be issued with an assumed token"); err != nil {
		return err
	}
	if err := a.checkLifetime(r.Context(), token.User, u.ID, time.Duration(req.TTLMinutes)*time.Minute); err != nil {
		return err
	}
	issued, err := a.newToken(r.Context(), c, token.User, u.ID, req.DisplayName, time.Duration(req.TTLMinutes)*time.Minute, networks)
	if err != nil {
		return err
	}
	c.named = TokenLabel(issued.Prefix, issued.DisplayName)
	return a.audited(w, r, c, "token.issue", "user:"+u.Email+" token:"+issued.ID, http.StatusCreated, issued)
}

func (a *API) listUserTokens(w http.ResponseWriter, r *http.Request, c *caller) error {
	u, err := a.tokenOwner(r.Context(), c, r.URL.Query().Get("user_email"))
	if err != nil {
		return err
	}
	toks, err := a.userTokenInfos(r.Context(), u)
	return writeList(w, toks, err)
}

// revokeUserToken revokes one of the owner's tokens by reference (path) or by display name
// (query display_name).
func (a *API) revokeUserToken(w http.ResponseWriter, r *http.Request, c *caller) error {
	if r.PathValue("ref") == "current" && r.URL.Query().Get("user_email") == "" {
		return a.revokeCurrentToken(w, r, c)
	}
	if q := r.URL.Query(); r.PathValue("ref") == "" && (q.Has("all") || q.Has("representing")) {
		if q.Get("display_name") != "" {
			return errf(http.StatusBadRequest, "give all (or representing) or a display name, not both")
		}
		all, err1 := parseFlag(q, "all")
		rep, err2 := parseFlag(q, "representing")
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		if all || rep {
			return a.revokeAllUserTokens(w, r, c, rep)
		}
	}
	u, err := a.tokenOwner(r.Context(), c, r.URL.Query().Get("user_email"))
	if err != nil {
		c.aim("user:" + r.URL.Query().Get("user_email"))
		return err
	}
	var t store.Token
	ref, name := r.PathValue("ref"), r.URL.Query().Get("display_name")
	switch {
	case ref != "" && name != "":
		return errf(http.StatusBadRequest, "give a token id or a display name, not both")
	case ref != "":
		if t, err = a.findToken(r.Context(), u.ID, ref); err != nil {
			return err
		}
	case name != "":
		toks, err := a.st.ListTokens(r.Context(), u.ID)
		if err != nil {
			return err
		}
		var match []store.Token
		for _, tk := range toks {
			if tk.DisplayName == name {
				match = append(match, tk)
			}
		}
		switch len(match) {
		case 0:
			return errf(http.StatusNotFound, "no token named %q", name)
		case 1:
			t = match[0]
		default:
			ids := make([]string, len(match))
			for i, m := range match {
				ids[i] = m.Prefix
			}
			return errf(http.StatusConflict, "%d tokens are named %q (%s): revoke one by its id", len(match), name, strings.Join(ids, ", "))
		}
	default:
		return errf(http.StatusBadRequest, "give a token id (or prefix) or display_name")
	}
	if err := a.st.DeleteToken(r.Context(), t.ID); err != nil {
		return err
	}
	a.metrics.TokensRevoked(policy.KindOf(t.Kind), 1)
	c.named = TokenLabel(t.Prefix, t.DisplayName)
	return a.audited(w, r, c, "token.revoke", "user:"+u.Email+" token:"+t.ID.String(), http.StatusOK, apiv1.Revoked{Revoked: []apiv1.TokenInfo{tokenInfo(t)}})
}

// findToken finds one of owner's tokens by its id, the whole token, or a display prefix of at
// least 10 characters after rill_usr_/rill_svc_ (a trailing "..." as list prints it is fine).
func (a *API) findToken(ctx context.Context, owner, ref string) (store.Token, error) {
	ref = strings.TrimSuffix(strings.TrimSpace(ref), "...")
	toks, err := a.userTokens(ctx, owner)
	if err != nil {
		return store.Token{}, err
	}
	var match []store.Token
	switch {
	case token.HasPrefix(ref) && len(ref) == token.Len:
		tok, err := token.Parse(ref)
		if err != nil {
			return store.Token{}, errf(http.StatusBadRequest, "token: %v", err)
		}
		for _, t := range toks {
			if t.ID == tok.ID {
				match = append(match, t)
			}
		}
	case token.HasPrefix(ref):
		if len(ref) < len("rill_usr_")+10 {
			return store.Token{}, errf(http.StatusBadRequest, "token prefix %q is too short: give at least 10 characters after %s", ref, ref[:9])
		}
		for _, t := range toks {
			if strings.HasPrefix(t.Prefix, ref) || (len(ref) > len(t.Prefix) && strings.HasPrefix(ref, t.Prefix)) {
				match = append(match, t)
			}
		}
	default:
		// An id, in either case; one that is no UUID matches no token.
		if id, err := token.ParseID(ref); err == nil {
			for _, t := range toks {
				if t.ID == id {
					match = append(match, t)
				}
			}
		}
	}
	switch len(match) {
	case 0:
		return store.Token{}, errf(http.StatusNotFound, "no token %q", ref)
	case 1:
		return match[0], nil
	}
	return store.Token{}, errf(http.StatusConflict, "%q matches %d tokens: give more of it", ref, len(match))
}

// revokeCurrentToken is Rill's RevokeCurrentAuthToken (DELETE /v1/tokens/current, its CLI's
// logout): the user's token the request is made with is revoked. Rill's answer is {}.
func (a *API) revokeCurrentToken(w http.ResponseWriter, r *http.Request, c *caller) error {
	if !c.isUser() {
		return errf(http.StatusForbidden, "%s is not a user: only a user's own token is revoked this way (a service's: service token revoke)", c.actor)
	}
	t, err := a.st.GetToken(r.Context(), c.tid)
	if err != nil {
		return err
	}
	if err := a.st.DeleteToken(r.Context(), t.ID); err != nil {
		return err
	}
	a.metrics.TokensRevoked(policy.KindOf(t.Kind), 1)
	c.named = TokenLabel(t.Prefix, t.DisplayName)
	return a.answer(w, r, c, "token.revoke", "user:"+c.p.Email+" token:"+t.ID.String(), http.StatusOK,
		apiv1.Revoked{Revoked: []apiv1.TokenInfo{tokenInfo(t)}}, apiv1.RillEmpty{})
}

// parseFlag reads a boolean query parameter: absent is false, present and empty is true.
func parseFlag(q url.Values, name string) (bool, error) {
	if !q.Has(name) {
		return false, nil
	}
	v := q.Get(name)
	if v == "" {
		return true, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, errf(http.StatusBadRequest, "%s=%q: want true or false", name, v)
	}
	return b, nil
}
