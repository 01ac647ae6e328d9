package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"math"
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
	// maxSessions bounds the memory sessions take. Past it a sign-in is refused: ending another
	// user's session to make room let any member sign everyone out by signing in 10,000 times
	// (third red team).
	maxSessions = 10000
	// maxUserSessions bounds one user's sessions (browsers); past it their own oldest ends.
	maxUserSessions = 10
	// signinsPerMinute is how often one user may sign in: a burst of as many, then one every
	// 60/signinsPerMinute seconds.
	signinsPerMinute = 10
)

// session is one signed-in browser. The token lives here, in the daemon's memory only: the
// browser holds the random session id in an HttpOnly cookie.
type session struct {
	key   [32]byte // SHA-256 of the cookie's id
	user  string   // the user's id: whose sessions it counts among
	seq   uint64   // order of opening (several may open within one clock tick)
	token string
	// owned is a token the console issued for this session (an OIDC sign-in): revoked when
	// the session ends, whatever ends it.
	owned   bool
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
	// limit bounds all sessions, perUser one user's (maxSessions, maxUserSessions; tests set
	// them lower).
	limit, perUser int
	mu             sync.Mutex
	m              map[[32]byte]*session
	byUser         map[string]map[[32]byte]*session
	opened         uint64
	signins        map[string]*signinBucket // by user id
	// revoke revokes an owned token of a session that ended (set by the console; nil: none).
	revoke func(tok string)
}

// signinBucket is a token bucket of one user's sign-ins.
type signinBucket struct {
	tokens float64
	at     time.Time
}

func newSessions(now func() time.Time, idle, max time.Duration) *sessions {
	return &sessions{now: now, idle: idle, max: max, limit: maxSessions, perUser: maxUserSessions,
		m: map[[32]byte]*session{}, byUser: map[string]map[[32]byte]*session{}, signins: map[string]*signinBucket{}}
}

// openError is a refused sign-in: its status and what the sign-in page says.
type openError struct {
	status     int
	retryAfter int // seconds, for a 429
	msg        string
}

func (e *openError) Error() string { return e.msg }

func randomID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand panics rather than return an error)
	return base64.RawURLEncoding.EncodeToString(b)
}

// open makes a session of user (their id) for tok and returns it with the cookie value that
// names it, or an *openError: a user signing in faster than signinsPerMinute (429), or every
// place taken by sessions that have not ended (503). A user at perUser sessions loses their own
// oldest; no one else's session ever ends to make room.
func (ss *sessions) open(user, tok string) (*session, string, error) {
	return ss.openOwned(user, tok, false)
}

// openOwned is open; owned says the console issued tok for this session, to revoke at its end.
func (ss *sessions) openOwned(user, tok string, owned bool) (*session, string, error) {
	id := randomID()
	now := ss.now()
	s := &session{key: sha256.Sum256([]byte(id)), user: user, token: tok, owned: owned, csrf: randomID(), created: now, seen: now}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if wait := ss.takeSigninLocked(user, now); wait > 0 {
		secs := int(math.Ceil(wait.Seconds()))
		return nil, "", &openError{status: http.StatusTooManyRequests, retryAfter: secs,
			msg: fmt.Sprintf("You signed in more than %d times in a minute: wait %d s, then sign in again.", signinsPerMinute, secs)}
	}
	for _, o := range ss.byUser[user] {
		if ss.ended(o, now) != "" {
			ss.endLocked(o)
		}
	}
	for len(ss.byUser[user]) >= ss.perUser {
		var oldest *session
		for _, o := range ss.byUser[user] {
			if oldest == nil || o.seq < oldest.seq {
				oldest = o
			}
		}
		ss.endLocked(oldest)
	}
	if len(ss.m) >= ss.limit {
		ss.sweepLocked(now)
		if len(ss.m) >= ss.limit {
			return nil, "", &openError{status: http.StatusServiceUnavailable,
				msg: fmt.Sprintf("The console holds %d open sessions, the most it keeps; no session is ended to make room. Try again when some have ended (30 minutes idle).", ss.limit)}
		}
	}
	ss.opened++
	s.seq = ss.opened
	ss.m[s.key] = s
	if ss.byUser[user] == nil {
		ss.byUser[user] = map[[32]byte]*session{}
	}
	ss.byUser[user][s.key] = s
	return s, id, nil
}

// takeSigninLocked spends one of user's sign-ins, or says how long until one is available.
// Buckets that have refilled are forgotten when there are many, which changes nothing.
func (ss *sessions) takeSigninLocked(user string, now time.Time) time.Duration {
	capacity, perSec := float64(signinsPerMinute), float64(signinsPerMinute)/60
	b := ss.signins[user]
	if b == nil {
		if len(ss.signins) >= ss.limit {
			for u, o := range ss.signins {
				if now.Sub(o.at) >= time.Minute {
					delete(ss.signins, u)
				}
			}
		}
		b = &signinBucket{tokens: capacity, at: now}
		ss.signins[user] = b
	}
	if el := now.Sub(b.at).Seconds(); el > 0 {
		b.tokens = math.Min(capacity, b.tokens+el*perSec)
		b.at = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	return time.Duration((1 - b.tokens) / perSec * float64(time.Second))
}

// revokeEnded revokes the tokens the console issued for sessions that are over (idle or
// expired) though their browser has not come back: such a token is not left live for the rest
// of its 12 h. The sessions stay until their cookie comes back (which then says why it ended)
// or room is needed.
func (ss *sessions) revokeEnded() {
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, s := range ss.m {
		if s.owned && ss.revoke != nil && ss.ended(s, now) != "" {
			s.owned = false
			go ss.revoke(s.token)
		}
	}
}

func (ss *sessions) sweepLocked(now time.Time) {
	for _, s := range ss.m {
		if ss.ended(s, now) != "" {
			ss.endLocked(s)
		}
	}
}

// endLocked forgets s, and revokes its token when the console issued it (in the background:
// the caller holds mu). The caller holds mu.
func (ss *sessions) endLocked(s *session) {
	if _, live := ss.m[s.key]; live && s.owned && ss.revoke != nil {
		go ss.revoke(s.token)
	}
	delete(ss.m, s.key)
	if mine := ss.byUser[s.user]; mine != nil {
		delete(mine, s.key)
		if len(mine) == 0 {
			delete(ss.byUser, s.user)
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
	ss.endLocked(s)
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

// disown marks s's token as revoked already, so its end does not revoke it again.
func (ss *sessions) disown(s *session) {
	ss.mu.Lock()
	s.owned = false
	ss.mu.Unlock()
}
