package signin

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// Options configures the OIDC sign-in.
type Options struct {
	Providers []ProviderConfig
	// CallbackBase is the public URL of the admin listener (--public-url): a provider sends
	// the browser back to <CallbackBase>/ui/oidc/<name>/callback.
	CallbackBase string
	// Store holds the users Admit finds and the session tokens Finish issues.
	Store store.Store
	// TokenTTL is the life of a session's token (the console's longest session).
	TokenTTL time.Duration
	// HTTPClient talks to the providers (default: one with a 10 s timeout).
	HTTPClient *http.Client
	Logger     *slog.Logger
	Now        func() time.Time
	// RetryMin and RetryMax bound the wait between discovery attempts of a provider that is
	// down (defaults 1 s and 1 min).
	RetryMin, RetryMax time.Duration
}

// FlowTTL is how long a sign-in may take at the provider: the life of its cookie.
const FlowTTL = 10 * time.Minute

// maxSpent bounds the states remembered as spent (Service.spend): a variable for tests.
var maxSpent = 1 << 16

// Service runs the sign-ins of every configured provider.
type Service struct {
	o         Options
	log       *slog.Logger
	now       func() time.Time
	providers map[string]*provider
	order     []string
	stop      chan struct{}
	wg        sync.WaitGroup

	mu   sync.Mutex
	used map[[32]byte]time.Time // states already redeemed here, until their flow expires
}

// provider is one configured provider; ready is nil until its discovery succeeds.
type provider struct {
	cfg    ProviderConfig
	secret string
	aead   cipher.AEAD // seals the flow cookie: every replica derives the same key

	mu      sync.Mutex
	ready   *discovered
	lastErr string
}

type discovered struct {
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
}

// Status is what the sign-in page shows of a provider.
type Status struct {
	Name      string
	Available bool
}

// New reads the providers' secrets and starts their discovery: each is tried at once, then
// retried in the background until it answers, so a provider that is down delays nothing (its
// button says it is unavailable). Close stops the retries.
func New(o Options) (*Service, error) {
	if err := Check(o.Providers); err != nil {
		return nil, err
	}
	if o.Store == nil {
		return nil, errors.New("signin: no store")
	}
	if o.CallbackBase == "" && len(o.Providers) > 0 {
		return nil, errors.New("oidc_providers need --public-url: the providers send the browser back to <public-url>/ui/oidc/<name>/callback")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if o.TokenTTL <= 0 {
		o.TokenTTL = 12 * time.Hour
	}
	if o.RetryMin <= 0 {
		o.RetryMin = time.Second
	}
	if o.RetryMax <= 0 {
		o.RetryMax = time.Minute
	}
	s := &Service{o: o, log: o.Logger, now: o.Now, providers: map[string]*provider{}, stop: make(chan struct{}), used: map[[32]byte]time.Time{}}
	for _, pc := range o.Providers {
		secret, err := LoadSecret(pc)
		if err != nil {
			return nil, err
		}
		key, err := hkdf.Key(sha256.New, []byte(secret), nil, "rill-authd signin flow cookie v1 "+pc.Name, 32)
		if err != nil {
			return nil, fmt.Errorf("oidc provider %s: derive the cookie key: %w", pc.Name, err)
		}
		block, _ := aes.NewCipher(key) // a 32-byte key never fails
		aead, _ := cipher.NewGCM(block)
		if len(pc.Scopes) == 0 {
			pc.Scopes = []string{oidc.ScopeOpenID, "email", "profile"}
		} else if !slices.Contains(pc.Scopes, oidc.ScopeOpenID) {
			pc.Scopes = append([]string{oidc.ScopeOpenID}, pc.Scopes...)
		}
		if pc.EmailClaim == "" {
			pc.EmailClaim = "email"
		}
		s.providers[pc.Name] = &provider{cfg: pc, secret: secret, aead: aead}
		s.order = append(s.order, pc.Name)
	}
	for _, name := range s.order {
		p := s.providers[name]
		s.wg.Add(1)
		go s.discover(p)
	}
	return s, nil
}

// Close stops the discovery retries.
func (s *Service) Close() {
	close(s.stop)
	s.wg.Wait()
}

// WaitDiscovered waits up to d for the first discovery attempt of every provider (success or
// not), so a daemon that starts logs each provider's state; it never fails.
func (s *Service) WaitDiscovered(d time.Duration) {
	deadline := time.Now().Add(d)
	for _, name := range s.order {
		p := s.providers[name]
		for time.Now().Before(deadline) {
			p.mu.Lock()
			done := p.ready != nil || p.lastErr != ""
			p.mu.Unlock()
			if done {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// discover reads p's discovery document until it succeeds, backing off between attempts.
func (s *Service) discover(p *provider) {
	defer s.wg.Done()
	wait := s.o.RetryMin
	for {
		ctx, cancel := context.WithTimeout(oidc.ClientContext(context.Background(), s.o.HTTPClient), 15*time.Second)
		op, err := oidc.NewProvider(ctx, p.cfg.Issuer)
		cancel()
		if err == nil {
			d := &discovered{
				oauth: oauth2.Config{ClientID: p.cfg.ClientID, ClientSecret: p.secret, Endpoint: op.Endpoint(),
					RedirectURL: s.CallbackURL(p.cfg.Name), Scopes: p.cfg.Scopes},
				// The key set fetches with this context's client; it is never cancelled.
				verifier: op.VerifierContext(oidc.ClientContext(context.Background(), s.o.HTTPClient), &oidc.Config{ClientID: p.cfg.ClientID}),
			}
			p.mu.Lock()
			p.ready, p.lastErr = d, ""
			p.mu.Unlock()
			s.log.Info("oidc provider ready", "provider", p.cfg.Name, "issuer", p.cfg.Issuer, "callback", s.CallbackURL(p.cfg.Name))
			return
		}
		// Logged when the error changes, not only the first time: a provider down at start
		// that then answers wrongly (another issuer) must say so, or the button stays
		// unavailable with only "connection refused" in the log.
		p.mu.Lock()
		changed := p.lastErr != err.Error()
		p.lastErr = err.Error()
		p.mu.Unlock()
		if changed {
			attrs := []any{"provider", p.cfg.Name, "issuer", p.cfg.Issuer, "err", err}
			if strings.Contains(err.Error(), "did not match the issuer") { // go-oidc's words for it
				attrs = append(attrs, "fix", "set issuer to exactly the issuer in the provider's discovery document (a trailing / counts)")
			}
			s.log.Warn("oidc provider unavailable: its discovery failed; retrying in the background (its sign-in button says so meanwhile)", attrs...)
		}
		select {
		case <-s.stop:
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, s.o.RetryMax)
	}
}

// CallbackURL is where provider name sends the browser back.
func (s *Service) CallbackURL(name string) string {
	return strings.TrimSuffix(s.o.CallbackBase, "/") + "/ui/oidc/" + name + "/callback"
}

// Providers lists the providers in configuration order, with whether each can be used now.
func (s *Service) Providers() []Status {
	out := make([]Status, 0, len(s.order))
	for _, name := range s.order {
		p := s.providers[name]
		p.mu.Lock()
		out = append(out, Status{Name: name, Available: p.ready != nil})
		p.mu.Unlock()
	}
	return out
}

// Refusal is a sign-in that did not happen: the status and the words for the page. Nothing in
// it is secret (no code, token or state).
type Refusal struct {
	Status int
	Msg    string
	// Reason is a short word for the log and the audit (state, replay, nonce, audience...).
	Reason string
	err    error
}

func (r *Refusal) Error() string {
	if r.err != nil {
		return r.Reason + ": " + r.err.Error()
	}
	return r.Reason + ": " + r.Msg
}

func (r *Refusal) Unwrap() error { return r.err }

func refuse(status int, reason, msg string, err error) *Refusal {
	return &Refusal{Status: status, Reason: reason, Msg: msg, err: err}
}

// flow is what the browser carries between Start and Finish, sealed in a cookie: the state it
// must come back with, the nonce the ID token must hold and the PKCE verifier.
type flow struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Next     string `json:"x"`
	Expires  int64  `json:"e"`
}

func random() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// cookieName is per provider, so that sign-ins at two providers do not overwrite each other.
func cookieName(name string) string { return "rill_oidc_" + name }

// cookiePath limits the flow cookie to its callback.
func cookiePath(name string) string { return "/ui/oidc/" + name + "/" }

func (p *provider) seal(f flow) string {
	b, _ := json.Marshal(f)
	nonce := make([]byte, p.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(p.aead.Seal(nonce, nonce, b, []byte(p.cfg.Name)))
}

func (p *provider) open(v string) (flow, bool) {
	var f flow
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || len(b) < p.aead.NonceSize() {
		return f, false
	}
	plain, err := p.aead.Open(nil, b[:p.aead.NonceSize()], b[p.aead.NonceSize():], []byte(p.cfg.Name))
	if err != nil || json.Unmarshal(plain, &f) != nil {
		return f, false
	}
	return f, true
}

// flowCookie is the sealed flow (or its removal). SameSite=Lax, not Strict: the provider
// sends the browser back with a cross-site top-level GET, on which a Lax cookie is sent and a
// Strict one is not.
func flowCookie(r *http.Request, name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: cookieName(name), Value: value, Path: cookiePath(name), MaxAge: maxAge,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode}
}

func (s *Service) provider(name string) (*provider, *discovered, error) {
	p := s.providers[name]
	if p == nil {
		return nil, nil, refuse(http.StatusNotFound, "unknown_provider", "There is no identity provider named "+quote(name)+" here.", nil)
	}
	p.mu.Lock()
	d := p.ready
	p.mu.Unlock()
	if d == nil {
		return p, nil, refuse(http.StatusServiceUnavailable, "provider_unavailable",
			"Signing in with "+name+" is unavailable: its discovery document could not be read yet. Try again in a minute, or sign in with a token.", nil)
	}
	return p, d, nil
}

// quote shows a name that came in a URL without letting it shape the page or the log.
func quote(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return fmt.Sprintf("%q", s)
}

// Start answers the browser with a redirect to provider name's authorization endpoint, and
// the sealed flow in a cookie. next is where Finish sends the browser (the caller keeps it
// inside the console).
func (s *Service) Start(w http.ResponseWriter, r *http.Request, name, next string) error {
	p, d, err := s.provider(name)
	if err != nil {
		return err
	}
	f := flow{State: random(), Nonce: random(), Verifier: oauth2.GenerateVerifier(), Next: next,
		Expires: s.now().Add(FlowTTL).Unix()}
	http.SetCookie(w, flowCookie(r, name, p.seal(f), int(FlowTTL.Seconds())))
	u := d.oauth.AuthCodeURL(f.State, oauth2.S256ChallengeOption(f.Verifier), oidc.Nonce(f.Nonce))
	http.Redirect(w, r, u, http.StatusSeeOther)
	return nil
}

// Session is a finished sign-in: the user, the token issued for the console session (its
// secret exists only here), and where to go.
type Session struct {
	User     store.User
	Token    string
	TokenID  string
	Identity Identity
	Next     string
}

// Finish completes a sign-in at the callback: the flow cookie (cleared, whatever happens)
// must match the state, the code is exchanged with the PKCE verifier, the ID token is verified
// (signature from the provider's JWKS, iss, aud, exp) and must hold the flow's nonce, a
// verified email in an allowed domain; Admit says who that is; then a user token lives as long
// as the console session (display name "console (via <provider>)"). Any refusal is a
// *Refusal.
func (s *Service) Finish(w http.ResponseWriter, r *http.Request, name string) (Session, error) {
	p, d, err := s.provider(name)
	if err != nil {
		return Session{}, err
	}
	http.SetCookie(w, flowCookie(r, name, "", -1)) // single use: cleared whatever comes
	q := r.URL.Query()
	ck, cerr := r.Cookie(cookieName(name))
	if cerr != nil {
		return Session{}, refuse(http.StatusBadRequest, "no_flow",
			"No sign-in with "+name+" was in progress in this browser (or it was already finished, or took over 10 minutes). Start again from the sign-in page.", nil)
	}
	f, ok := p.open(ck.Value)
	if !ok {
		return Session{}, refuse(http.StatusBadRequest, "bad_cookie", "The sign-in cookie could not be read. Start again from the sign-in page.", nil)
	}
	now := s.now()
	if now.Unix() > f.Expires {
		return Session{}, refuse(http.StatusBadRequest, "flow_expired", "The sign-in took over 10 minutes. Start again from the sign-in page.", nil)
	}
	state := q.Get("state")
	if state == "" || subtle.ConstantTimeCompare([]byte(state), []byte(f.State)) != 1 {
		return Session{}, refuse(http.StatusBadRequest, "state_mismatch",
			"The answer from "+name+" does not belong to the sign-in this browser started (its state differs), so it was refused. Start again from the sign-in page.", nil)
	}
	if !s.spend(state, time.Unix(f.Expires, 0)) {
		return Session{}, refuse(http.StatusBadRequest, "state_replayed", "This sign-in answer was already used. Start again from the sign-in page.", nil)
	}
	if e := q.Get("error"); e != "" {
		return Session{}, refuse(http.StatusForbidden, "provider_error",
			name+" did not sign you in ("+quote(e)+": "+quote(q.Get("error_description"))+").", nil)
	}
	code := q.Get("code")
	if code == "" {
		return Session{}, refuse(http.StatusBadRequest, "no_code", "The answer from "+name+" holds no authorization code.", nil)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 15*time.Second)
	defer cancel()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, s.o.HTTPClient)
	tok, err := d.oauth.Exchange(ctx, code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
			return Session{}, refuse(http.StatusBadRequest, "code_refused", name+" refused the authorization code ("+quote(re.ErrorCode)+"). Start again from the sign-in page.", errors.New(re.ErrorCode))
		}
		return Session{}, refuse(http.StatusBadGateway, "exchange_failed", name+" could not be reached to finish the sign-in. Try again in a minute.", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Session{}, refuse(http.StatusBadGateway, "no_id_token", name+" answered without an ID token (is the openid scope allowed for this client?).", nil)
	}
	id, err := s.verify(ctx, p, d, raw, f.Nonce)
	if err != nil {
		return Session{}, err
	}
	u, err := Admit(r.Context(), s.o.Store, id)
	if errors.Is(err, ErrNotAdmitted) {
		return Session{}, refuse(http.StatusForbidden, "not_admitted", id.Email+" signed in at "+name+" but is not a user here, and no sign-in rule admits them. Ask an admin to add you.", err)
	}
	if err != nil {
		return Session{}, fmt.Errorf("admit %s: %w", id.Email, err)
	}
	out, err := s.issue(r.Context(), u, name)
	if err != nil {
		return Session{}, err
	}
	out.Identity, out.Next = id, f.Next
	return out, nil
}

// VerifyIDToken verifies raw as provider name's ID token for this client with nonce, and reads
// the identity in it: what Finish does after the exchange.
func (s *Service) VerifyIDToken(ctx context.Context, name, raw, nonce string) (Identity, error) {
	p, d, err := s.provider(name)
	if err != nil {
		return Identity{}, err
	}
	return s.verify(ctx, p, d, raw, nonce)
}

func (s *Service) verify(ctx context.Context, p *provider, d *discovered, raw, nonce string) (Identity, error) {
	name := p.cfg.Name
	idt, err := d.verifier.Verify(ctx, raw)
	if err != nil && strings.Contains(err.Error(), "fetching keys") {
		// go-oidc could not read the provider's key set (it drops the error's type): the
		// provider is down, the token is not known to be forged.
		return Identity{}, refuse(http.StatusBadGateway, "keys_unavailable", name+"'s signing keys could not be fetched to check its answer. Try again in a minute.", err)
	}
	if err != nil {
		return Identity{}, refuse(http.StatusUnauthorized, "id_token_invalid", "The ID token from "+name+" was refused: "+idTokenProblem(err)+".", err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return Identity{}, refuse(http.StatusUnauthorized, "nonce_mismatch", "The ID token from "+name+" was not issued for this sign-in (its nonce differs), so it was refused.", nil)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return Identity{}, refuse(http.StatusBadGateway, "claims_unreadable", "The ID token's claims could not be read.", err)
	}
	id := Identity{Provider: name, Subject: idt.Subject, EmailVerified: true}
	email, _ := claims[p.cfg.EmailClaim].(string)
	if lowersToASCII(email) { // before lower-casing makes it one of ours (see usableEmail)
		return Identity{}, refuse(http.StatusForbidden, "email_unusable", fmt.Sprintf("The email %+q from %s is not an address rill-authd can use: lower-cased, it would read as another one.", email, name), nil)
	}
	id.Email = strings.ToLower(strings.TrimSpace(email))
	if at := strings.LastIndexByte(id.Email, '@'); at <= 0 || at == len(id.Email)-1 {
		return Identity{}, refuse(http.StatusForbidden, "no_email", "The ID token from "+name+" holds no email in its "+quote(p.cfg.EmailClaim)+" claim (ask for the email scope, or set email_claim).", nil)
	}
	switch v := claims["email_verified"].(type) {
	case bool:
		id.EmailVerified = v
	case string: // some providers send "true"/"false"
		id.EmailVerified = v == "true"
	}
	if !id.EmailVerified {
		return Identity{}, refuse(http.StatusForbidden, "email_unverified", name+" says the email "+id.Email+" is not verified, so it cannot sign in. Verify it at "+name+" first.", nil)
	}
	if ds := p.cfg.AllowedDomains; len(ds) > 0 {
		domain := id.Email[strings.LastIndexByte(id.Email, '@')+1:]
		if !slices.ContainsFunc(ds, func(d string) bool { return strings.EqualFold(d, domain) }) {
			return Identity{}, refuse(http.StatusForbidden, "domain_not_allowed", id.Email+" may not sign in with "+name+": only addresses at "+strings.Join(ds, ", ")+" may.", nil)
		}
	}
	if p.cfg.GroupsClaim != "" {
		switch v := claims[p.cfg.GroupsClaim].(type) {
		case []any:
			for _, g := range v {
				if g, ok := g.(string); ok && g != "" {
					id.Groups = append(id.Groups, g)
				}
			}
		case string:
			if v != "" {
				id.Groups = []string{v}
			}
		}
	}
	return id, nil
}

// idTokenProblem names what go-oidc found wrong, in words for the page.
func idTokenProblem(err error) string {
	var exp *oidc.TokenExpiredError
	msg := err.Error()
	switch {
	case errors.As(err, &exp):
		return "it has expired"
	case strings.Contains(msg, "audience"):
		return "it was issued to another client (aud)"
	case strings.Contains(msg, "issuer"):
		return "it was issued by another issuer (iss)"
	case strings.Contains(msg, "signature"):
		return "its signature does not verify with the provider's keys"
	}
	return "it is malformed"
}

// spend records state as redeemed on this replica until until, and says whether it was not
// already. The cookie is cleared at the callback, so a browser cannot come back twice; this
// also refuses a callback URL replayed with a copy of the cookie, on this replica (the
// provider refuses the code's second use anywhere).
func (s *Service) spend(state string, until time.Time) bool {
	k := sha256.Sum256([]byte(state))
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if exp, ok := s.used[k]; ok && now.Before(exp) {
		return false
	}
	// Anyone can start a sign-in and bring its state back without a code, so the states are
	// bounded: the expired ones are dropped when the map is full (a scan every maxSpent/2
	// states at most, never one per callback), then, if a flood keeps it full, an arbitrary
	// half. A state forgotten early is still refused by the provider, whose codes are single-use.
	if len(s.used) >= maxSpent {
		for k, exp := range s.used {
			if !now.Before(exp) {
				delete(s.used, k)
			}
		}
		for k := range s.used {
			if len(s.used) < maxSpent/2 {
				break
			}
			delete(s.used, k)
		}
	}
	s.used[k] = until
	return true
}

// issue makes the console session's token for u: a user token living as long as the longest
// session, named after the provider, audited as token.issue.
func (s *Service) issue(ctx context.Context, u store.User, name string) (Session, error) {
	tok, err := token.New(token.User)
	if err != nil {
		return Session{}, fmt.Errorf("new session token: %w", err)
	}
	display := "console (via " + name + ")"
	rec := store.NewToken(tok, u.ID, display, "signin:"+name, s.now(), s.o.TokenTTL)
	if err := s.o.Store.CreateToken(ctx, rec); err != nil {
		return Session{}, fmt.Errorf("store session token: %w", err)
	}
	detail := "token " + rec.Prefix + "… " + fmt.Sprintf("%q", display) + "; via: oidc " + name
	if err := s.o.Store.AppendAudit(ctx, store.AuditEvent{Time: s.now().UTC(), Actor: "user:" + u.Email, Action: "token.issue",
		Target: "user:" + u.Email + " token:" + rec.ID.String(), Outcome: "ok", Detail: detail}); err != nil {
		_ = s.o.Store.DeleteToken(ctx, rec.ID)
		return Session{}, fmt.Errorf("write audit event: %w", err)
	}
	return Session{User: u, Token: tok.Encode(), TokenID: rec.ID.String()}, nil
}
