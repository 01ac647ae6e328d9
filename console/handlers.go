package console

import (
	"bytes"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/signin"
)

// view is what every page template gets: who is signed in, the CSRF token for its forms, the
// org it is about and the flash left by the last form.
type view struct {
	c *Console
	r *http.Request
	s *session

	Who   apiv1.Whoami
	CSRF  string
	Nav   string
	Title string
	Org   string
	Orgs  []string
	// PickTo is where the org picker goes (default: this page): a page about one service
	// goes to the other org's list.
	PickTo string
	Flash  *flash
	Data   any

	expiring **expiring // Expiring's answer, once read
}

// SignedIn tells the layout whether to show the navigation.
func (v *view) SignedIn() bool { return v.s != nil }

// Superuser and the like let templates hide what the API would refuse anyway.
func (v *view) Superuser() bool { return v.Who.Superuser }

// FormValue is the value sent with the form that failed, to show it again.
func (v *view) FormValue(k string) string {
	if v.Flash == nil || v.Flash.Form == nil {
		return ""
	}
	return v.Flash.Form.Get(k)
}

// FieldError is the error about field k, if the last form failed on it.
func (v *view) FieldError(k string) string {
	if v.Flash != nil && v.Flash.Field == k {
		return v.Flash.Error
	}
	return ""
}

// PageError is the last form's error when it is about no one field.
func (v *view) PageError() string {
	if v.Flash != nil && v.Flash.Field == "" {
		return v.Flash.Error
	}
	return ""
}

type pageFunc func(w http.ResponseWriter, v *view) error

// page serves a GET page to a signed-in user.
func (c *Console) page(h pageFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, ok := c.enter(w, r, false)
		if !ok {
			return
		}
		v.Flash = v.s.takeFlash()
		if err := h(w, v); err != nil {
			c.fail(w, v, err)
		}
	}
}

// form serves a POST from a signed-in user whose CSRF token matches the session's.
func (c *Console) form(h pageFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, ok := c.enter(w, r, true)
		if !ok {
			return
		}
		if err := h(w, v); err != nil {
			c.fail(w, v, err)
		}
	}
}

// enter finds r's session, checks a form's CSRF token, and asks the API who the session's
// token is now: a revoked or expired token ends the session here, at once.
func (c *Console) enter(w http.ResponseWriter, r *http.Request, post bool) (*view, bool) {
	if post {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		if err := r.ParseForm(); err != nil {
			c.errorPage(w, r, nil, http.StatusBadRequest, "Bad request", "The form could not be read.")
			return nil, false
		}
	}
	s, why := c.sessions.get(r)
	if s == nil {
		if why != "" {
			http.SetCookie(w, cookie(r, cookieName, "", -1))
		}
		if post {
			c.errorPage(w, r, nil, http.StatusForbidden, "Signed out", "You are not signed in (any more): sign in again, then send the form again.")
			return nil, false
		}
		q := url.Values{"next": {r.URL.RequestURI()}}
		if why != "" && why != "unknown" {
			q.Set("ended", why)
		}
		http.Redirect(w, r, Prefix+"/signin?"+q.Encode(), http.StatusSeeOther)
		return nil, false
	}
	if post && (!sameToken(r.PostForm.Get("csrf"), s.csrf) || !sameOrigin(r)) {
		c.log.Warn("console: form refused: CSRF token missing or wrong, or posted from another origin", "path", r.URL.Path, "origin", r.Header.Get("Origin"), "fetch_site", r.Header.Get("Sec-Fetch-Site"))
		c.errorPage(w, r, nil, http.StatusForbidden, "Form refused",
			"This form did not carry the page's security (CSRF) token, so it was not acted on. Reload the page and send it again.")
		return nil, false
	}
	v := &view{c: c, r: r, s: s, CSRF: s.csrf}
	if err := c.call(r, s.token, "GET", "/v1/whoami", nil, nil, &v.Who); err != nil {
		c.fail(w, v, err)
		return nil, false
	}
	if v.Who.Kind != "user" {
		c.endSession(w, r, s, "revoked")
		return nil, false
	}
	return v, true
}

func (c *Console) endSession(w http.ResponseWriter, r *http.Request, s *session, why string) {
	c.sessions.end(s)
	http.SetCookie(w, cookie(r, cookieName, "", -1))
	http.Redirect(w, r, Prefix+"/signin?ended="+why, http.StatusSeeOther)
}

// fail shows err in the page: the API's refusal with its status and message, or (anything
// else) a 500 that names no detail, which goes to the log.
func (c *Console) fail(w http.ResponseWriter, v *view, err error) {
	var e *apiError
	if !errors.As(err, &e) {
		c.log.Error("console: page failed", "path", v.r.URL.Path, "err", err)
		c.errorPage(w, v.r, v, http.StatusInternalServerError, "Something went wrong", "The console hit an internal error; it is in the rill-authd log.")
		return
	}
	switch e.Status {
	case http.StatusUnauthorized:
		c.endSession(w, v.r, v.s, "revoked")
	case http.StatusForbidden:
		c.errorPage(w, v.r, v, e.Status, "Not allowed (403)", "Your role does not allow this page or action: "+e.Message+".")
	case http.StatusNotFound:
		c.errorPage(w, v.r, v, e.Status, "Not found (404)", e.Message+".")
	case http.StatusServiceUnavailable:
		c.errorPage(w, v.r, v, e.Status, "Unavailable (503)", e.Message)
	default:
		c.errorPage(w, v.r, v, e.Status, http.StatusText(e.Status), e.Message)
	}
}

// errorPage renders a clear page for a status, with the navigation when v is signed in.
func (c *Console) errorPage(w http.ResponseWriter, r *http.Request, v *view, status int, title, msg string) {
	if v == nil {
		v = &view{c: c, r: r}
	}
	v.Title, v.Data = title, msg
	c.render(w, v, "error", status)
}

func (c *Console) render(w http.ResponseWriter, v *view, name string, status int) {
	var buf bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&buf, "layout", v); err != nil {
		c.log.Error("console: template failed", "page", name, "err", err)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("The console hit an internal error; it is in the rill-authd log.\n"))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// back answers a form with a redirect to path (the page it came from), leaving f for it.
func (v *view) back(w http.ResponseWriter, path string, f *flash) error {
	if f != nil {
		v.s.setFlash(f)
	}
	http.Redirect(w, v.r, path, http.StatusSeeOther)
	return nil
}

// refused turns an API refusal of a form into a flash on the page it came from (about field,
// keeping what was typed); 401s, 403s and unexpected errors go to fail (a page of their own).
func (v *view) refused(w http.ResponseWriter, path, field string, err error) error {
	switch statusOf(err) {
	case 0, http.StatusUnauthorized, http.StatusForbidden:
		return err
	}
	form := url.Values{}
	for k, vs := range v.r.PostForm {
		if k != "csrf" {
			form[k] = vs
		}
	}
	return v.back(w, path, &flash{Error: err.(*apiError).Message, Field: field, Form: form})
}

// orgPath is path?org=<org>.
func (v *view) orgPath(path string) string {
	return path + "?" + url.Values{"org": {v.Org}}.Encode()
}

func (c *Console) home(w http.ResponseWriter, r *http.Request) {
	c.page(func(w http.ResponseWriter, v *view) error {
		if v.Who.Superuser {
			http.Redirect(w, r, Prefix+"/overview", http.StatusSeeOther)
		} else {
			http.Redirect(w, r, Prefix+"/tokens", http.StatusSeeOther)
		}
		return nil
	})(w, r)
}

var endedText = map[string]string{
	"revoked":   "Your session ended: the token you signed in with was revoked or has expired.",
	"idle":      "Your session ended after 30 minutes without activity.",
	"expired":   "Your session ended: sessions last 12 hours at most.",
	"signedout": "You are signed out.",
}

func (c *Console) signinPage(w http.ResponseWriter, r *http.Request) {
	if s, _ := c.sessions.get(r); s != nil {
		http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
		return
	}
	c.signinForm(w, r, http.StatusOK, "")
}

type signinData struct {
	Next, Ended, Error string
	Providers          []signin.Status
}

func (c *Console) signinForm(w http.ResponseWriter, r *http.Request, status int, errMsg string) {
	pre := randomID()
	http.SetCookie(w, cookie(r, preCookie, pre, 600))
	v := &view{c: c, r: r, CSRF: pre, Title: "Sign in",
		Data: signinData{Next: safeNext(r.FormValue("next")), Ended: endedText[r.FormValue("ended")], Error: errMsg, Providers: c.oidcButtons()}}
	c.render(w, v, "signin", status)
}

// safeNext keeps a post-sign-in destination inside the console.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix+"/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return Prefix + "/"
	}
	return next
}

func (c *Console) signin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		c.signinForm(w, r, http.StatusBadRequest, "The form could not be read.")
		return
	}
	pre, err := r.Cookie(preCookie)
	if err != nil || !sameToken(r.PostForm.Get("csrf"), pre.Value) || !sameOrigin(r) {
		c.log.Warn("console: sign-in form refused: CSRF token missing or wrong, or posted from another origin", "origin", r.Header.Get("Origin"), "fetch_site", r.Header.Get("Sec-Fetch-Site"))
		c.errorPage(w, r, nil, http.StatusForbidden, "Form refused",
			"This form did not carry the page's security (CSRF) token, so it was not acted on. Reload the sign-in page and try again.")
		return
	}
	tok := strings.TrimSpace(r.PostForm.Get("token"))
	if tok == "" {
		c.signinForm(w, r, http.StatusBadRequest, "Paste a user token (rill_usr_…) to sign in.")
		return
	}
	// What a newcomer copies with the token: the curl header ("Bearer rill_usr_…") or rillctl's
	// line ("Token: rill_usr_…"). Say so rather than "not a rill token", and echo nothing.
	if i := strings.Index(tok, "rill_usr_"); i > 0 {
		c.signinForm(w, r, http.StatusBadRequest, "Paste the token alone, from rill_usr_ on: the text before it (such as \"Bearer \" or \"Token: \") is not part of it.")
		return
	}
	var who apiv1.Whoami
	if err := c.call(r, tok, "GET", "/v1/whoami", nil, nil, &who); err != nil {
		if statusOf(err) == http.StatusUnauthorized {
			c.signinForm(w, r, http.StatusUnauthorized, "That token was not accepted: "+err.(*apiError).Message+".")
			return
		}
		if statusOf(err) != 0 {
			c.signinForm(w, r, statusOf(err), err.(*apiError).Message)
			return
		}
		c.log.Error("console: sign-in failed", "err", err)
		c.signinForm(w, r, http.StatusInternalServerError, "The console hit an internal error; it is in the rill-authd log.")
		return
	}
	if who.Kind != "user" {
		c.signinForm(w, r, http.StatusForbidden, "Sign in with a user token (rill_usr_…): a "+who.Kind+" credential cannot open a console session.")
		return
	}
	old, _ := c.sessions.get(r)
	_, id, err := c.sessions.open(who.ID, tok)
	if err != nil {
		oe := err.(*openError)
		if oe.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(oe.retryAfter))
		}
		c.log.Warn("console: sign-in refused", "user", who.Subject, "reason", oe.msg)
		c.signinForm(w, r, oe.status, oe.msg)
		return
	}
	if old != nil {
		c.sessions.end(old) // a new sign-in replaces the browser's session, it does not add one
	}
	c.log.Info("console: signed in", "user", who.Subject, "token_id", who.TokenID)
	http.SetCookie(w, cookie(r, preCookie, "", -1))
	http.SetCookie(w, cookie(r, cookieName, id, 0))
	http.Redirect(w, r, safeNext(r.PostForm.Get("next")), http.StatusSeeOther)
}

func (c *Console) signout(w http.ResponseWriter, v *view) error {
	if v.s.owned { // the token this session's sign-in issued ends with it
		c.revokeToken(v.r, v.s.token)
		c.sessions.disown(v.s)
	}
	c.log.Info("console: signed out", "user", v.Who.Subject)
	c.endSession(w, v.r, v.s, "signedout")
	return nil
}
