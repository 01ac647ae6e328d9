package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
)

const (
	cookieName = "rill_console"
	// preCookie holds the sign-in form's CSRF token, before there is a session.
	preCookie = "rill_console_signin"
	// maxSessions bounds the memory sessions take; the oldest goes first.
	maxSessions = 10000
)

// session is one signed-in browser. The token lives here, in the daemon's memory only: the
// browser holds the random session id in an HttpOnly cookie.
type session struct {
	key     [32]byte // SHA-256 of the cookie's id
	token   string
	csrf    string
	created time.Time

	mu    sync.Mutex
	seen  time.Time
	flash *flash
}

// flash is what a form's answer leaves for the next page: a notice, an error (about Field, with
// the values sent, so the form shows them again), or a secret shown once.
type flash struct {
	Notice, Error, Field string
	Form                 url.Values
	Secret               *apiv1.IssuedToken
	SecretOwner          string
}

func (s *session) setFlash(f *flash) {
	s.mu.Lock()
	s.flash = f
	s.mu.Unlock()
}

func (s *session) takeFlash() *flash {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.flash
	s.flash = nil
	return f
}

type sessions struct {
	now       func() time.Time
	idle, max time.Duration
	mu        sync.Mutex
	m         map[[32]byte]*session
}

func newSessions(now func() time.Time, idle, max time.Duration) *sessions {
	return &sessions{now: now, idle: idle, max: max, m: map[[32]byte]*session{}}
}

func randomID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand panics rather than return an error)
	return base64.RawURLEncoding.EncodeToString(b)
}

// open makes a session for tok and returns it with the cookie value that names it.
func (ss *sessions) open(tok string) (*session, string) {
	id := randomID()
	now := ss.now()
	s := &session{key: sha256.Sum256([]byte(id)), token: tok, csrf: randomID(), created: now, seen: now}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.m) >= maxSessions {
		ss.sweepLocked(now)
		for len(ss.m) >= maxSessions {
			var oldest *session
			for _, o := range ss.m {
				if oldest == nil || o.created.Before(oldest.created) {
					oldest = o
				}
			}
			delete(ss.m, oldest.key)
		}
	}
	ss.m[s.key] = s
	return s, id
}

func (ss *sessions) sweepLocked(now time.Time) {
	for k, s := range ss.m {
		if ss.ended(s, now) != "" {
			delete(ss.m, k)
		}
	}
}

// ended says why s is over ("idle" or "expired"), or "".
func (ss *sessions) ended(s *session, now time.Time) string {
	s.mu.Lock()
	seen := s.seen
	s.mu.Unlock()
	switch {
	case now.Sub(s.created) >= ss.max:
		return "expired"
	case now.Sub(seen) >= ss.idle:
		return "idle"
	}
	return ""
}

// get finds the session of r's cookie: nil and why when there is none or it ended (and is
// then forgotten).
func (ss *sessions) get(r *http.Request) (*session, string) {
	ck, err := r.Cookie(cookieName)
	if err != nil || ck.Value == "" {
		return nil, ""
	}
	key := sha256.Sum256([]byte(ck.Value))
	ss.mu.Lock()
	s := ss.m[key]
	ss.mu.Unlock()
	if s == nil {
		return nil, "unknown"
	}
	now := ss.now()
	if why := ss.ended(s, now); why != "" {
		ss.end(s)
		return nil, why
	}
	s.mu.Lock()
	s.seen = now
	s.mu.Unlock()
	return s, ""
}

func (ss *sessions) end(s *session) {
	ss.mu.Lock()
	delete(ss.m, s.key)
	ss.mu.Unlock()
}

// cookie is the session cookie (or, with an empty value, its removal): HttpOnly, SameSite
// Strict, Secure on a TLS connection, for /ui only.
func cookie(r *http.Request, name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: Prefix, MaxAge: maxAge, HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode}
}

func sameToken(a, b string) bool {
	return a != "" && len(a) == len(b) && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// sameOrigin refuses a form posted from another origin, when the browser says where it came
// from (the CSRF token and SameSite=Strict refuse it anyway). Fetch metadata first: with
// Referrer-Policy no-referrer a browser sends "Origin: null" even for its own forms.
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin":
		return true
	case "":
	default: // cross-site, same-site (another port or subdomain), none (typed or bookmarked)
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}
