package adminapi

import (
	"bytes"
	"io"
	"net/http"
	"strings"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// This file is where a token may be used (allowed_networks, allowed_origins): their checks on
// issue bodies, their change (PATCH), and the admin API's own enforcement of them.

// allowedNetworks checks and canonicalizes an issue body's allowed_networks: a bad one is a 400
// that names it.
func allowedNetworks(ns []string) ([]string, error) {
	out, err := store.NormalizeNetworks(ns)
	if err != nil {
		return nil, errf(http.StatusBadRequest, "%s", strings.TrimPrefix(err.Error(), store.ErrInvalid.Error()+": "))
	}
	return out, nil
}

// allowedOrigins is allowedNetworks for allowed_origins.
func allowedOrigins(os []string) ([]string, error) {
	out, err := store.NormalizeOrigins(os)
	if err != nil {
		return nil, errf(http.StatusBadRequest, "%s", strings.TrimPrefix(err.Error(), store.ErrInvalid.Error()+": "))
	}
	return out, nil
}

// decodeOptional is decode of a body that may be empty (a request with nothing to say). A
// request in Rill's shape is read as Rill's gateway reads it (decodeRill: fields v lacks, such
// as the org and service names Rill's messages repeat from the path, are ignored).
func decodeOptional(r *http.Request, v any) error {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	if rillShape(r) {
		return decodeRill(bytes.NewReader(b), v, nil)
	}
	return decodeFrom(bytes.NewReader(b), v)
}

// editLimits applies a TokenLimitsEdit to t and stores it; origins only for public URLs.
func (a *API) editLimits(r *http.Request, t store.Token) (store.Token, error) {
	var req apiv1.TokenLimitsEdit
	if err := decode(r, &req); err != nil {
		return store.Token{}, err
	}
	if req.AllowedNetworks == nil && req.AllowedOrigins == nil {
		return store.Token{}, errf(http.StatusBadRequest, "nothing to change: give allowed_networks and/or allowed_origins (an empty list removes the constraint)")
	}
	networks, origins := t.AllowedNetworks, t.AllowedOrigins
	var err error
	if req.AllowedNetworks != nil {
		if networks, err = allowedNetworks(*req.AllowedNetworks); err != nil {
			return store.Token{}, err
		}
	}
	if req.AllowedOrigins != nil {
		if t.Kind != token.Magic && len(*req.AllowedOrigins) > 0 {
			return store.Token{}, errf(http.StatusBadRequest, "allowed_origins are for public URLs (and iframes), not %s tokens: a browser page's origin says nothing about a server's use of a token", t.Kind)
		}
		if origins, err = allowedOrigins(*req.AllowedOrigins); err != nil {
			return store.Token{}, err
		}
	}
	return a.st.SetTokenLimits(r.Context(), t.ID, networks, origins)
}

// editUserToken is PATCH /v1/tokens/{ref}: the caller's own token (a superuser's: anyone's,
// with user_email).
func (a *API) editUserToken(w http.ResponseWriter, r *http.Request, c *caller) error {
	u, err := a.tokenOwner(r.Context(), c, r.URL.Query().Get("user_email"))
	if err != nil {
		c.aim("user:" + r.URL.Query().Get("user_email"))
		return err
	}
	t, err := a.findToken(r.Context(), u.ID, r.PathValue("ref"))
	if err != nil {
		return err
	}
	if t, err = a.editLimits(r, t); err != nil {
		return err
	}
	c.named = TokenLabel(t.Prefix, t.DisplayName)
	return a.audited(w, r, c, "token.edit", "user:"+u.Email+" token:"+t.ID.String(), http.StatusOK, tokenInfo(t))
}

// editServiceToken is PATCH /v1/orgs/{org}/services/{name}/tokens/{ref}.
func (a *API) editServiceToken(w http.ResponseWriter, r *http.Request, c *caller) error {
	s, err := a.service(r, c)
	if err != nil {
		return err
	}
	t, err := a.findToken(r.Context(), s.ID, r.PathValue("ref"))
	if err != nil {
		return err
	}
	if t, err = a.editLimits(r, t); err != nil {
		return err
	}
	c.named = TokenLabel(t.Prefix, t.DisplayName)
	return a.audited(w, r, c, "service.token.edit", "service:"+s.Org+"/"+s.Name+" token:"+t.ID.String(), http.StatusOK, tokenInfo(t))
}

// editMagic is PATCH /v1/magic-tokens/{id}: where a public URL may be opened, changed by whoever
// may revoke it (manage_magic_auth_tokens, or its creator while they may create them).
func (a *API) editMagic(w http.ResponseWriter, r *http.Request, c *caller) error {
	t, err := a.managedMagic(r, c, "change")
	if err != nil {
		return err
	}
	if t, err = a.editLimits(r, t); err != nil {
		return err
	}
	c.named = TokenLabel(t.Prefix, t.DisplayName)
	return a.audited(w, r, c, "magic_token.edit", c.target, http.StatusOK, magicInfo(t))
}
