package adminapi

import (
	"bytes"
	"errors"
	"io"
	"net/http"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/keys"
)

func (a *API) registerSigningKeys(mux *http.ServeMux) {
	a.handle(mux, "GET /v1/admin/signing-keys", a.listKeys)
	a.mutation(mux, "POST /v1/admin/signing-keys/rotate", "signing_key.rotate", a.rotateKey)
	a.mutation(mux, "POST /v1/admin/signing-keys/{kid}/retire", "signing_key.retire", a.retireKey)
	mux.HandleFunc("GET /.well-known/jwks.json", a.jwks)
}

// keyError maps the ring's refusals to statuses; the messages say what to do.
func keyError(err error) error {
	switch {
	case errors.Is(err, keys.ErrUnknownKey):
		return errf(http.StatusNotFound, "%v", err)
	case errors.Is(err, keys.ErrRotationPending), errors.Is(err, keys.ErrKeySigns):
		return errf(http.StatusConflict, "%v", err)
	}
	return err
}

func wireKey(s keys.Status) apiv1.SigningKey {
	return apiv1.SigningKey{KID: s.KID, State: string(s.State), InJWKS: s.Published(), Description: s.Describe(), CreatedAt: s.CreatedAt, ActivatesAt: s.ActivatesAt,
		SignsUntil: s.SignsUntil, VerifiesUntil: s.VerifiesUntil, RetiredAt: s.RetiredAt}
}

func (a *API) listKeys(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := c.superuser(); err != nil {
		return err
	}
	ss, err := a.keys.Status(r.Context())
	if err != nil {
		return err
	}
	out := make([]apiv1.SigningKey, 0, len(ss))
	for _, s := range ss {
		out = append(out, wireKey(s))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// rotateKey adds a signing key: published at once, it signs after the activation delay, or at
// once with {"now": true}. The body is optional.
func (a *API) rotateKey(w http.ResponseWriter, r *http.Request, c *caller) error {
	c.aim("signing-keys")
	if err := c.superuser(); err != nil {
		return err
	}
	var req apiv1.RotateRequest
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(b)) > 0 {
		r.Body = io.NopCloser(bytes.NewReader(b))
		if err := decode(r, &req); err != nil {
			return err
		}
	}
	rot, err := a.keys.Rotate(r.Context(), req.Now)
	if err != nil {
		return keyError(err)
	}
	res := apiv1.RotateResult{KID: rot.KID, ActivatesAt: rot.ActivatesAt, Replaces: rot.Replaces, Retired: rot.Retired}
	target := "kid:" + res.KID + " signs from " + res.ActivatesAt.UTC().Format("2006-01-02T15:04:05Z")
	if req.Now {
		target += " (now)"
	}
	return a.audited(w, r, c, "signing_key.rotate", target, http.StatusOK, res)
}

// retireKey takes a key out of the JWKS at once (a compromised key). The key that signs is
// refused with 409: rotate with now first.
func (a *API) retireKey(w http.ResponseWriter, r *http.Request, c *caller) error {
	kid := r.PathValue("kid")
	c.aim("kid:" + kid)
	if err := c.superuser(); err != nil {
		return err
	}
	st, err := a.keys.Retire(r.Context(), kid)
	if err != nil {
		return keyError(err)
	}
	return a.audited(w, r, c, "signing_key.retire", "kid:"+kid, http.StatusOK, wireKey(st))
}

func (a *API) jwks(w http.ResponseWriter, r *http.Request) {
	ks, err := a.keys.Keyset(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	// A rotated-in key is published an activation delay before it signs, and a retired key
	// must leave verifiers soon: a verifier (or cache) may keep the set for a minute.
	w.Header().Set("Cache-Control", "public, max-age=60")
	_, _ = w.Write(ks.JWKS())
}
