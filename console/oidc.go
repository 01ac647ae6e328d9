package console

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/rill-authd/rill-authd/adminapi"
	"github.com/rill-authd/rill-authd/signin"
)

// oidcStart sends the browser to the provider (/ui/oidc/{name}/start?next=...). A GET: it
// changes nothing here but a cookie, and the state it sets is what the callback must match.
func (c *Console) oidcStart(w http.ResponseWriter, r *http.Request) {
	if c.o.SignIn == nil {
		c.errorPage(w, r, nil, http.StatusNotFound, "Not found (404)", "No identity provider is configured here: sign in with a token.")
		return
	}
	name := r.PathValue("name")
	if err := c.o.SignIn.Start(w, r, name, safeNext(r.FormValue("next"))); err != nil {
		c.oidcRefused(w, r, name, err)
	}
}

// oidcCallback finishes a sign-in, opens a session with the token it issued, and lands the
// browser with a page of ours: the session cookie is SameSite=Strict, and a browser does not
// send a Strict cookie on a navigation whose redirect chain began at the provider (another
// site), so a 303 to the console here would arrive signed out. The landing page's own
// navigation (console.js, or the link) is same-site, and carries the cookie.
func (c *Console) oidcCallback(w http.ResponseWriter, r *http.Request) {
	if c.o.SignIn == nil {
		c.errorPage(w, r, nil, http.StatusNotFound, "Not found (404)", "No identity provider is configured here: sign in with a token.")
		return
	}
	name := r.PathValue("name")
	sess, err := c.o.SignIn.Finish(w, r, name)
	if err != nil {
		c.oidcRefused(w, r, name, err)
		return
	}
	old, _ := c.sessions.get(r)
	_, id, err := c.sessions.openOwned(sess.User.ID, sess.Token, true)
	if err != nil {
		c.revokeToken(r, sess.Token)
		oe := err.(*openError)
		if oe.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(oe.retryAfter))
		}
		c.log.Warn("console: sign-in refused", "user", sess.User.Email, "provider", name, "reason", oe.msg)
		c.signinForm(w, r, oe.status, oe.msg)
		return
	}
	if old != nil {
		c.sessions.end(old)
	}
	c.log.Info("console: signed in", "user", sess.User.Email, "provider", name, "token_id", sess.TokenID)
	http.SetCookie(w, cookie(r, cookieName, id, 0))
	next := safeNext(sess.Next)
	v := &view{c: c, r: r, Title: "Signed in", Data: landing{Next: next, Provider: name, Email: sess.User.Email}}
	c.render(w, v, "landing", http.StatusOK)
}

type landing struct{ Next, Provider, Email string }

// oidcRefused shows a refused sign-in: its status and words (no secret is in them), logged
// with the reason.
func (c *Console) oidcRefused(w http.ResponseWriter, r *http.Request, name string, err error) {
	var ref *signin.Refusal
	if !errors.As(err, &ref) {
		c.log.Error("console: sign-in failed", "provider", name, "err", err)
		c.errorPage(w, r, nil, http.StatusInternalServerError, "Something went wrong", "The console hit an internal error; it is in the rill-authd log.")
		return
	}
	c.log.Warn("console: sign-in refused", "provider", name, "reason", ref.Reason, "err", ref.Error())
	c.errorPage(w, r, nil, ref.Status, "Sign-in refused", ref.Msg)
}

// revokeToken revokes a token the console issued, with itself (DELETE /v1/tokens/current):
// audited as its holder's revocation, via ui.
func (c *Console) revokeToken(from *http.Request, tok string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(from.Context()), 10*time.Second)
	defer cancel()
	if err := c.call(from.WithContext(ctx), tok, "DELETE", "/v1/tokens/current", nil, nil, nil); err != nil && statusOf(err) != http.StatusUnauthorized {
		c.log.Warn("console: could not revoke a session's token", "err", err)
	}
}

// revokeEnded is the sessions' revoke: a session that ended without a request (idle,
// expired, replaced) has no request of its own to call the API from.
func (c *Console) revokeEnded(tok string) {
	r, _ := http.NewRequestWithContext(adminapi.WithVia(context.Background(), "ui"), "DELETE", "/v1/tokens/current", http.NoBody)
	r.RemoteAddr = "127.0.0.1:0"
	r.URL = &url.URL{Path: "/v1/tokens/current"}
	c.revokeToken(r, tok)
}

// oidcButtons is what the sign-in page offers: a button per provider, off when it is down.
func (c *Console) oidcButtons() []signin.Status {
	if c.o.SignIn == nil {
		return nil
	}
	return c.o.SignIn.Providers()
}
