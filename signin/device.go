// Package signin is how people get in without being handed a token: the OAuth 2.0 device
// authorization grant (RFC 8628) behind `rillctl login`, with its RFC 8414 metadata. The
// console page where a signed-in user approves a request, and the token an approval issues, are
// the admin API's (adminapi), which calls Approve and Deny here; this package keeps the
// requests (in the store, so replicas share them) and speaks the protocol to rillctl.
//
// The flow mirrors Rill's own (rilldata/rill admin/server/auth/device_code.go): rillctl asks
// for a code, shows the user code and a URL, and polls the token endpoint until the user
// decides in the browser.
package signin

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/resolver"
	"github.com/rill-authd/rill-authd/store"
)

// The protocol's names and paths.
const (
	// ClientID is the one client the endpoints know: rillctl, a public client (no secret).
	ClientID = "rillctl"
	// GrantType is RFC 8628's grant_type at the token endpoint.
	GrantType = "urn:ietf:params:oauth:grant-type:device_code"

	MetadataPath      = "/.well-known/oauth-authorization-server"
	DeviceAuthPath    = "/auth/oauth/device_authorization"
	TokenPath         = "/auth/oauth/token"
	VerificationPath  = "/ui/device" // the console page
	codeTTL           = 10 * time.Minute
	pollInterval      = 5 * time.Second
	slowDownStep      = 5 * time.Second // RFC 8628 section 3.5
	maxFormBody       = 16 << 10
	userCodeAlphabet  = "BCDFGHJKLMNPQRSTVWXZ" // RFC 8628 section 6.1: no vowels, no 0/O, 1/I
	userCodeLen       = 8
	maxHostLen        = 253
	sweepEvery        = time.Minute
	requestsPerMinute = 20  // device authorizations per client address and minute
	pollsPerMinute    = 120 // token requests per client address and minute (a poller needs 12)
	// guessesPerMinute is how many user codes that do not exist one user may try a minute
	// (RFC 8628 section 5.1): a person mistypes a few; guessing 20^8 codes takes billions.
	guessesPerMinute = 10
)

// DeviceOptions configures Device.
type DeviceOptions struct {
	Logger *slog.Logger
	Now    func() time.Time
	// PublicURL is the daemon's --public-url: the issuer and the base of every URL the
	// endpoints name. Empty: the URL the request came to (its Host, http or https).
	PublicURL string
	// TrustedProxyHops finds the client's address as the admin API does (resolver.ClientAddr).
	TrustedProxyHops int
	// Revoke revokes a token an approval issued that was never collected (the request expired,
	// or a second approval lost the race); nil: none is revoked.
	Revoke func(ctx context.Context, tokenID string) error
}

// Device serves the device authorization grant.
type Device struct {
	st   store.DeviceCodes
	o    DeviceOptions
	log  *slog.Logger
	now  func() time.Time
	reqs *limiter[netip.Addr]
	poll *limiter[netip.Addr]
	// guesses counts each user's lookups of codes that do not exist.
	guesses *limiter[string]
}

// NewDevice returns the device flow over st.
func NewDevice(st store.DeviceCodes, o DeviceOptions) *Device {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.PublicURL = strings.TrimRight(o.PublicURL, "/")
	return &Device{st: st, o: o, log: o.Logger, now: o.Now,
		reqs: newLimiter[netip.Addr](requestsPerMinute, o.Now), poll: newLimiter[netip.Addr](pollsPerMinute, o.Now),
		guesses: newLimiter[string](guessesPerMinute, o.Now)}
}

// Register mounts the metadata, device authorization and token endpoints on mux (the admin
// listener): public, unauthenticated, never on the check path.
func (d *Device) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+MetadataPath, d.metadata)
	mux.HandleFunc("POST "+DeviceAuthPath, d.authorize)
	mux.HandleFunc("POST "+TokenPath, d.token)
}

// base is the URL the endpoints are named under.
func (d *Device) base(r *http.Request) string {
	if d.o.PublicURL != "" {
		return d.o.PublicURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (d *Device) metadata(w http.ResponseWriter, r *http.Request) {
	b := d.base(r)
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, apiv1.OAuthMetadata{Issuer: b, DeviceAuthorizationEndpoint: b + DeviceAuthPath, TokenEndpoint: b + TokenPath,
		GrantTypesSupported: []string{GrantType}, ResponseTypesSupported: []string{}, TokenEndpointAuthMethods: []string{"none"}})
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="rill-authd"`)
	}
	writeJSON(w, status, apiv1.OAuthError{Error: code, Description: desc})
}

// form reads a bounded application/x-www-form-urlencoded body, and checks client_id.
func (d *Device) form(w http.ResponseWriter, r *http.Request, lim *limiter[netip.Addr]) (url.Values, bool) {
	ip := resolver.ClientAddr(r, d.o.TrustedProxyHops)
	if wait := lim.take(limitKey(ip)); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds()+0.999)))
		oauthError(w, http.StatusTooManyRequests, "slow_down", "too many requests from this address: wait and retry")
		return nil, false
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		oauthError(w, http.StatusBadRequest, "invalid_request", "send the parameters as application/x-www-form-urlencoded")
		return nil, false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "the form could not be read (at most 16 KiB)")
		return nil, false
	}
	f := r.PostForm
	switch id := f.Get("client_id"); {
	case id == "":
		oauthError(w, http.StatusBadRequest, "invalid_request", "client_id is required")
		return nil, false
	case id != ClientID:
		oauthError(w, http.StatusUnauthorized, "invalid_client", "unknown client_id: only "+ClientID+" may use this flow")
		return nil, false
	}
	return f, true
}

func (d *Device) authorize(w http.ResponseWriter, r *http.Request) {
	f, ok := d.form(w, r, d.reqs)
	if !ok {
		return
	}
	host := f.Get("host")
	if err := CheckHost(host); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	now := d.now()
	ip := resolver.ClientAddr(r, d.o.TrustedProxyHops)
	var deviceCode, userCode string
	for attempt := 0; ; attempt++ {
		deviceCode, userCode = rand.Text()+rand.Text(), newUserCode()
		priv, err := sealKey(deviceCode)
		if err != nil {
			d.internal(w, "device code", err)
			return
		}
		rec := store.DeviceCode{ID: codeID(deviceCode), UserCode: UserCodeID(userCode), ClientID: ClientID, Host: host,
			CreatedAt: now.UTC(), ExpiresAt: now.Add(codeTTL).UTC(), Interval: pollInterval, State: store.DevicePending,
			SealKey: priv.PublicKey().Bytes()}
		if ip.IsValid() {
			rec.IP = ip.String()
		}
		err = d.st.CreateDeviceCode(r.Context(), rec)
		if errors.Is(err, store.ErrConflict) && attempt < 5 {
			continue // a user code drawn twice among those alive: draw again
		}
		if err != nil {
			d.internal(w, "store device code", err)
			return
		}
		break
	}
	shown := FormatUserCode(userCode)
	b := d.base(r)
	d.log.Info("device authorization requested", "client_id", ClientID, "host", host, "ip", ip.String())
	writeJSON(w, http.StatusOK, apiv1.DeviceAuthorization{DeviceCode: deviceCode, UserCode: shown, VerificationURI: b + VerificationPath,
		VerificationURIComplete: b + VerificationPath + "?" + url.Values{"user_code": {shown}}.Encode(),
		ExpiresIn:               int(codeTTL / time.Second), Interval: int(pollInterval / time.Second)})
}

func (d *Device) internal(w http.ResponseWriter, what string, err error) {
	if errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrClosed) {
		w.Header().Set("Retry-After", "1")
		oauthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the store cannot be reached: retry")
		return
	}
	d.log.Error("device flow failed", "step", what, "err", err)
	oauthError(w, http.StatusInternalServerError, "server_error", "internal error; see the rill-authd log")
}

// poll outcomes, decided inside the store's transaction.
var (
	errExpired  = errors.New("expired_token")
	errRedeemed = errors.New("redeemed")
	errDenied   = errors.New("access_denied")
)

func (d *Device) token(w http.ResponseWriter, r *http.Request) {
	f, ok := d.form(w, r, d.poll)
	if !ok {
		return
	}
	if gt := f.Get("grant_type"); gt != GrantType {
		if gt == "" {
			oauthError(w, http.StatusBadRequest, "invalid_request", "grant_type is required")
		} else {
			oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "only "+GrantType+" is supported")
		}
		return
	}
	code := f.Get("device_code")
	if code == "" || len(code) > 128 {
		oauthError(w, http.StatusBadRequest, "invalid_request", "device_code is missing or malformed")
		return
	}
	now := d.now()
	var outcome string
	var sealed []byte
	rec, err := d.st.UpdateDeviceCode(r.Context(), codeID(code), func(x *store.DeviceCode) error {
		outcome, sealed = "", nil
		switch {
		case x.ClientID != ClientID:
			return errRedeemed
		case x.State == store.DeviceRedeemed:
			return errRedeemed
		case !now.Before(x.ExpiresAt):
			return errExpired
		case x.State == store.DeviceDenied:
			return errDenied
		case x.State == store.DeviceApproved:
			sealed = x.Sealed
			x.State, x.Sealed, x.LastPollAt = store.DeviceRedeemed, nil, now
			return nil
		}
		if !x.LastPollAt.IsZero() && now.Sub(x.LastPollAt) < x.Interval {
			x.Interval += slowDownStep
			outcome = "slow_down"
		} else {
			outcome = "authorization_pending"
		}
		x.LastPollAt = now
		return nil
	})
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, errRedeemed):
		oauthError(w, http.StatusBadRequest, "invalid_grant", "unknown or already used device code: run rillctl login again")
		return
	case errors.Is(err, errExpired):
		oauthError(w, http.StatusBadRequest, "expired_token", "the code expired before it was approved: run rillctl login again")
		return
	case errors.Is(err, errDenied):
		oauthError(w, http.StatusBadRequest, "access_denied", "the request was denied in the console")
		return
	case err != nil:
		d.internal(w, "poll", err)
		return
	case outcome == "slow_down":
		oauthError(w, http.StatusBadRequest, "slow_down", fmt.Sprintf("polling too fast: wait %d seconds between polls", int(rec.Interval/time.Second)))
		return
	case outcome != "":
		oauthError(w, http.StatusBadRequest, outcome, "waiting for the user to approve the request")
		return
	}
	priv, err := sealKey(code)
	if err != nil {
		d.internal(w, "seal key", err)
		return
	}
	tok, err := open(priv, sealed)
	if err != nil {
		d.internal(w, "open the sealed token", err)
		return
	}
	ans := apiv1.OAuthToken{AccessToken: tok, TokenType: "Bearer"}
	if !rec.TokenExpiresAt.IsZero() {
		ans.ExpiresIn = int64(rec.TokenExpiresAt.Sub(now) / time.Second)
	}
	d.log.Info("device authorization redeemed", "host", rec.Host, "user_id", rec.UserID, "token_id", rec.TokenID)
	writeJSON(w, http.StatusOK, ans)
}

// Request is a pending request as the approving user sees it.
type Request struct {
	UserCode  string // as shown: XXXX-XXXX
	Host, IP  string
	CreatedAt time.Time
	ExpiresAt time.Time
	State     store.DeviceState
}

// Errors of Lookup, Approve and Deny, for the page to explain.
var (
	ErrUnknownCode = errors.New("no such code: check it against the one rillctl shows (it expires after 10 minutes)")
	ErrDecided     = errors.New("this code was already approved or denied")
	ErrExpiredCode = errors.New("this code has expired: run rillctl login again")
	ErrBadUserCode = errors.New("not a code rillctl shows: 8 letters without vowels, such as BCDF-GHJK")
)

// TooManyGuesses is Lookup's refusal of a user who tried too many codes that do not exist.
type TooManyGuesses struct{ RetryAfter time.Duration }

func (e *TooManyGuesses) Error() string {
	return fmt.Sprintf("too many codes that do not exist were tried: check the code rillctl shows, and try again in %d s",
		int(e.RetryAfter.Seconds()+0.999))
}

// Lookup finds the request of a user code, pending or not, for the user who (the approver's
// id) typed it. A user code is short, so a user who tried guessesPerMinute codes that do not
// exist is refused any lookup (*TooManyGuesses) until the minute is over: Approve and Deny
// come after a Lookup, so no one decides another person's request by guessing its code.
func (d *Device) Lookup(ctx context.Context, who, userCode string) (Request, error) {
	if wait := d.guesses.full(who); wait > 0 {
		return Request{}, &TooManyGuesses{RetryAfter: wait}
	}
	norm, err := NormalizeUserCode(userCode)
	if err != nil {
		return Request{}, err
	}
	rec, err := d.st.GetDeviceCodeByUserCode(ctx, UserCodeID(norm))
	if errors.Is(err, store.ErrNotFound) {
		d.guesses.take(who)
		return Request{}, ErrUnknownCode
	}
	if err != nil {
		return Request{}, err
	}
	if !d.now().Before(rec.ExpiresAt) {
		return Request{}, ErrExpiredCode
	}
	return Request{UserCode: FormatUserCode(norm), Host: rec.Host, IP: rec.IP, CreatedAt: rec.CreatedAt, ExpiresAt: rec.ExpiresAt, State: rec.State}, nil
}

// Approval is the token an approval hands to rillctl.
type Approval struct {
	UserID    string
	Token     string // the secret: sealed at once, never stored in the clear
	TokenID   string
	ExpiresAt time.Time // zero: never
}

// Approve records a user's approval of a pending request, with the token issued for it. It
// fails (the caller revokes the token) when the request is not pending any more: approved,
// denied or expired meanwhile, on this replica or another.
func (d *Device) Approve(ctx context.Context, userCode string, a Approval) error {
	return d.decide(ctx, userCode, func(x *store.DeviceCode) error {
		sealed, err := seal(x.SealKey, a.Token)
		if err != nil {
			return err
		}
		x.State, x.UserID, x.Sealed, x.TokenID, x.TokenExpiresAt = store.DeviceApproved, a.UserID, sealed, a.TokenID, a.ExpiresAt
		return nil
	})
}

// Deny records a user's refusal: rillctl's next poll is told access_denied.
func (d *Device) Deny(ctx context.Context, userCode, userID string) error {
	return d.decide(ctx, userCode, func(x *store.DeviceCode) error {
		x.State, x.UserID = store.DeviceDenied, userID
		return nil
	})
}

func (d *Device) decide(ctx context.Context, userCode string, fn func(*store.DeviceCode) error) error {
	norm, err := NormalizeUserCode(userCode)
	if err != nil {
		return err
	}
	rec, err := d.st.GetDeviceCodeByUserCode(ctx, UserCodeID(norm))
	if errors.Is(err, store.ErrNotFound) {
		return ErrUnknownCode
	}
	if err != nil {
		return err
	}
	now := d.now()
	_, err = d.st.UpdateDeviceCode(ctx, rec.ID, func(x *store.DeviceCode) error {
		switch {
		case !now.Before(x.ExpiresAt):
			return ErrExpiredCode
		case x.State != store.DevicePending:
			return ErrDecided
		}
		return fn(x)
	})
	if errors.Is(err, store.ErrNotFound) {
		return ErrUnknownCode
	}
	return err
}

// Sweep deletes expired requests and revokes the tokens of those approved but never
// collected (DeviceOptions.Revoke). Every replica sweeps; a request is deleted by one of them.
func (d *Device) Sweep(ctx context.Context) error {
	// A minute of grace: a poll that read the request just before it expired is not cut short.
	gone, err := d.st.DeleteDeviceCodes(ctx, d.now().Add(-time.Minute))
	if err != nil {
		return fmt.Errorf("sweep device codes: %w", err)
	}
	for _, x := range gone {
		if x.State == store.DeviceApproved && x.TokenID != "" && d.o.Revoke != nil {
			if err := d.o.Revoke(ctx, x.TokenID); err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrRevoked) {
				d.log.Warn("device flow: could not revoke a token approved but never collected", "token_id", x.TokenID, "err", err)
			}
		}
	}
	if len(gone) > 0 {
		d.log.Debug("device codes swept", "count", len(gone))
	}
	return nil
}

// Run sweeps every minute until ctx ends.
func (d *Device) Run(ctx context.Context) {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := d.Sweep(ctx); err != nil && ctx.Err() == nil {
				d.log.Warn("device flow: sweep failed", "err", err)
			}
		}
	}
}

// CheckHost accepts what rillctl sends as its machine's name: empty, or a host name of
// letters, digits, '.', '-' and '_' (it is shown to the approving user, and becomes part of a
// token's display name, so nothing else passes).
func CheckHost(h string) error {
	if len(h) > maxHostLen {
		return fmt.Errorf("host is longer than %d characters", maxHostLen)
	}
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return fmt.Errorf("host %q: only letters, digits, '.', '-' and '_' are allowed", h)
		}
	}
	return nil
}

// newUserCode draws userCodeLen letters of userCodeAlphabet, uniformly (20^8: 34 bits; the
// code lives 10 minutes, and each user's wrong guesses are limited: Lookup).
func newUserCode() string {
	var b [userCodeLen]byte
	var r [1]byte
	for i := 0; i < len(b); {
		_, _ = rand.Read(r[:])
		if int(r[0]) >= 256-256%len(userCodeAlphabet) {
			continue // reject, so that every letter is equally likely
		}
		b[i] = userCodeAlphabet[int(r[0])%len(userCodeAlphabet)]
		i++
	}
	return string(b[:])
}

// NormalizeUserCode reads a user code as a person types it: any case, with or without the
// dash or spaces.
func NormalizeUserCode(s string) (string, error) {
	var b strings.Builder
	for _, c := range strings.ToUpper(s) {
		switch {
		case c == '-' || c == ' ':
		case strings.ContainsRune(userCodeAlphabet, c):
			b.WriteRune(c)
		default:
			return "", ErrBadUserCode
		}
		if b.Len() > userCodeLen {
			return "", ErrBadUserCode
		}
	}
	if b.Len() != userCodeLen {
		return "", ErrBadUserCode
	}
	return b.String(), nil
}

// FormatUserCode shows a normalized code as XXXX-XXXX.
func FormatUserCode(norm string) string {
	if len(norm) != userCodeLen {
		return norm
	}
	return norm[:4] + "-" + norm[4:]
}

// UserCodeID is the store's key of a normalized user code.
func UserCodeID(norm string) string {
	h := sha256.Sum256([]byte("rill-authd user code\x00" + norm))
	return hex.EncodeToString(h[:])
}

// codeID is the store's key of a device code.
func codeID(deviceCode string) string {
	h := sha256.Sum256([]byte("rill-authd device code\x00" + deviceCode))
	return hex.EncodeToString(h[:])
}

// sealKey is the X25519 key derived from a device code: its public half is stored with the
// request, so the approving replica seals the token to it, and only the holder of the device
// code (rillctl, through the token endpoint of any replica) can open it. The store never holds
// a usable token.
func sealKey(deviceCode string) (*ecdh.PrivateKey, error) {
	seed := sha256.Sum256([]byte("rill-authd device seal\x00" + deviceCode))
	return ecdh.X25519().NewPrivateKey(seed[:])
}

// seal encrypts msg to pub: an ephemeral X25519 key, its shared secret hashed into an
// AES-256-GCM key. Output: ephemeral public key (32) || nonce (12) || ciphertext.
func seal(pub []byte, msg string) ([]byte, error) {
	peer, err := ecdh.X25519().NewPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	eph, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	shared, err := eph.ECDH(peer)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	aead, err := sealAEAD(shared, eph.PublicKey().Bytes(), pub)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	out := append(append(eph.PublicKey().Bytes(), nonce...), aead.Seal(nil, nonce, []byte(msg), nil)...)
	return out, nil
}

func open(priv *ecdh.PrivateKey, sealed []byte) (string, error) {
	const pubLen, nonceLen = 32, 12
	if len(sealed) < pubLen+nonceLen {
		return "", errors.New("open: sealed token too short")
	}
	ephPub, err := ecdh.X25519().NewPublicKey(sealed[:pubLen])
	if err != nil {
		return "", fmt.Errorf("open: %w", err)
	}
	shared, err := priv.ECDH(ephPub)
	if err != nil {
		return "", fmt.Errorf("open: %w", err)
	}
	aead, err := sealAEAD(shared, sealed[:pubLen], priv.PublicKey().Bytes())
	if err != nil {
		return "", err
	}
	msg, err := aead.Open(nil, sealed[pubLen:pubLen+nonceLen], sealed[pubLen+nonceLen:], nil)
	if err != nil {
		return "", fmt.Errorf("open: %w", err)
	}
	return string(msg), nil
}

func sealAEAD(shared, ephPub, pub []byte) (cipher.AEAD, error) {
	h := sha256.New()
	h.Write([]byte("rill-authd device seal v1\x00"))
	h.Write(shared)
	h.Write(ephPub)
	h.Write(pub)
	block, err := aes.NewCipher(h.Sum(nil))
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return cipher.NewGCM(block)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	if w.Header().Get("Cache-Control") == "" {
		w.Header().Set("Cache-Control", "no-store") // RFC 6749 section 5.1
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// limitKey is what a client address is counted as: an IPv6 address as its /64, which one host
// or customer is given whole (each of its addresses counted apart would limit nothing).
func limitKey(ip netip.Addr) netip.Addr {
	ip = ip.Unmap()
	if ip.Is6() {
		if p, err := ip.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return ip
}

// limiter counts requests per client address in one-minute windows: enough to stop a flood of
// codes from one address without keeping anything per request.
type limiter[K comparable] struct {
	mu     sync.Mutex
	max    int
	now    func() time.Time
	window time.Time
	counts map[K]int
}

func newLimiter[K comparable](max int, now func() time.Time) *limiter[K] {
	return &limiter[K]{max: max, now: now, counts: map[K]int{}}
}

// take counts one request from k, and says how long to wait when it is one too many.
func (l *limiter[K]) take(k K) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if wait := l.fullLocked(k); wait > 0 {
		return wait
	}
	l.counts[k]++
	return 0
}

// full says how long k must wait when it has used the minute's requests, counting none.
func (l *limiter[K]) full(k K) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fullLocked(k)
}

func (l *limiter[K]) fullLocked(k K) time.Duration {
	now := l.now()
	if now.Sub(l.window) >= time.Minute || now.Before(l.window) {
		l.window, l.counts = now, map[K]int{}
	}
	if l.counts[k] >= l.max {
		return l.window.Add(time.Minute).Sub(now)
	}
	return 0
}
