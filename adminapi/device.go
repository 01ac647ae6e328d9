package adminapi

import (
	"errors"
	"math"
	"net/http"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/signin"
	"github.com/rill-authd/rill-authd/token"
)

// DefaultDeviceTokenTTL is how long a token from `rillctl login` lives when no org policy of
// its user limits user tokens: long enough not to nag, short enough that a forgotten laptop's
// token dies by itself (the daemon's --device-token-ttl).
const DefaultDeviceTokenTTL = 90 * 24 * time.Hour

// registerDevice mounts the approval side of the device authorization grant: the signed-in
// user (the console's page, in-process) reads a request by its user code, then approves it (a
// user token for them, sealed for rillctl to collect) or denies it.
func (a *API) registerDevice(mux *http.ServeMux) {
	if a.device == nil {
		return
	}
	a.handle(mux, "GET /v1/device", a.showDevice)
	a.mutation(mux, "POST /v1/device/approve", "token.issue", a.approveDevice)
	a.mutation(mux, "POST /v1/device/deny", "device.deny", a.denyDevice)
}

// deviceErr turns the device flow's refusals into the API's statuses.
func deviceErr(err error) error {
	var many *signin.TooManyGuesses
	switch {
	case errors.As(err, &many):
		return &Error{Status: http.StatusTooManyRequests, Code: int(codes.ResourceExhausted), retryAfter: int(math.Ceil(many.RetryAfter.Seconds())), Message: err.Error()}
	case errors.Is(err, signin.ErrBadUserCode):
		return errf(http.StatusBadRequest, "%v", err)
	case errors.Is(err, signin.ErrUnknownCode):
		return errf(http.StatusNotFound, "%v", err)
	case errors.Is(err, signin.ErrDecided), errors.Is(err, signin.ErrExpiredCode):
		return errf(http.StatusConflict, "%v", err)
	}
	return err
}

func (a *API) showDevice(w http.ResponseWriter, r *http.Request, c *caller) error {
	if !c.isUser() {
		return errf(http.StatusForbidden, "%s is not a user: only a user approves a rillctl login", c.actor)
	}
	req, err := a.device.Lookup(r.Context(), c.p.ID, r.URL.Query().Get("user_code"))
	if err != nil {
		return deviceErr(err)
	}
	writeJSON(w, http.StatusOK, apiv1.DeviceRequest{UserCode: req.UserCode, Host: req.Host, IP: req.IP,
		CreatedAt: req.CreatedAt, ExpiresAt: req.ExpiresAt, State: string(req.State)})
	return nil
}

// deviceTTL is the lifetime of a token for u from `rillctl login`: the shortest maximum of the
// user-token policies of u's orgs, else the daemon's default.
func (a *API) deviceTTL(r *http.Request, userID string) (time.Duration, error) {
	orgs, err := a.boundOrgs(r.Context(), token.User, userID)
	if err != nil {
		return 0, err
	}
	ps, err := a.orgPolicies(r.Context(), orgs)
	if err != nil {
		return 0, err
	}
	ttl := a.deviceTokenTTL
	for _, p := range ps {
		if m := p.Max(token.User); m > 0 && (ttl == 0 || m < ttl) {
			ttl = m
		}
	}
	return ttl, nil
}

// approveDevice issues the user a token named "rillctl on <host>", as POST /v1/tokens would
// (the org's policy, the cap on live tokens, the issue rate), and hands it to the request. If
// the request was decided meanwhile (another tab, another replica), the token is revoked again.
func (a *API) approveDevice(w http.ResponseWriter, r *http.Request, c *caller) error {
	req, dr, err := a.deviceDecision(r, c, "approves")
	if err != nil {
		return err
	}
	if dr.State != "pending" {
		return deviceErr(signin.ErrDecided)
	}
	u, err := a.st.GetUser(r.Context(), c.p.ID)
	if err != nil {
		return err
	}
	c.aim("user:" + u.Email)
	// An assumed token (a superuser acting as the user) lives a day at most and is marked as
	// the superuser's; the token an approval issues would be the user's own, for months, and
	// neither lists nor revoke --representing would tell it from theirs.
	if err := a.notAssumed(r.Context(), c, "a rillctl login cannot be approved with an assumed token"); err != nil {
		return err
	}
	ttl, err := a.deviceTTL(r, u.ID)
	if err != nil {
		return err
	}
	if err := a.checkLifetime(r.Context(), token.User, u.ID, ttl); err != nil {
		return err
	}
	name := "rillctl"
	if dr.Host != "" {
		name = "rillctl on " + dr.Host
	}
	issued, err := a.newToken(r.Context(), c, token.User, u.ID, name, ttl, nil)
	if err != nil {
		return err
	}
	if err := a.device.Approve(r.Context(), req.UserCode, signin.Approval{UserID: u.ID, Token: issued.Token, TokenID: issued.ID, ExpiresAt: issued.ExpiresAt}); err != nil {
		if id, perr := token.ParseID(issued.ID); perr == nil {
			if derr := a.st.DeleteToken(r.Context(), id); derr != nil {
				a.log.Warn("device approval failed and its token could not be revoked", "token_id", issued.ID, "err", derr)
			}
		}
		return deviceErr(err)
	}
	c.named = TokenLabel(issued.Prefix, issued.DisplayName)
	r = r.WithContext(WithVia(r.Context(), "device"))
	return a.audited(w, r, c, "token.issue", "user:"+u.Email+" token:"+issued.ID, http.StatusOK, issued.TokenInfo)
}

// deviceDecision reads an approval's or denial's body and the request it names, for a user
// only (a service never decides a rillctl login).
func (a *API) deviceDecision(r *http.Request, c *caller, verb string) (apiv1.DeviceDecision, signin.Request, error) {
	var req apiv1.DeviceDecision
	if !c.isUser() {
		return req, signin.Request{}, errf(http.StatusForbidden, "%s is not a user: only a user %s a rillctl login", c.actor, verb)
	}
	if err := decode(r, &req); err != nil {
		return req, signin.Request{}, err
	}
	dr, err := a.device.Lookup(r.Context(), c.p.ID, req.UserCode)
	if err != nil {
		return req, signin.Request{}, deviceErr(err)
	}
	return req, dr, nil
}

func (a *API) denyDevice(w http.ResponseWriter, r *http.Request, c *caller) error {
	req, dr, err := a.deviceDecision(r, c, "denies")
	if err != nil {
		return err
	}
	if err := a.device.Deny(r.Context(), req.UserCode, c.p.ID); err != nil {
		return deviceErr(err)
	}
	return a.audited(w, r, c, "device.deny", "device:"+dr.UserCode+" host:"+dr.Host, http.StatusOK, apiv1.DeviceRequest{UserCode: dr.UserCode,
		Host: dr.Host, IP: dr.IP, CreatedAt: dr.CreatedAt, ExpiresAt: dr.ExpiresAt, State: "denied"})
}
