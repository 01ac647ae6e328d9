// Package leaks receives reports of leaked tokens from GitHub's secret scanning partner
// program and revokes the ones that are ours.
//
// GitHub scans public repositories, gists, issues and npm packages for the token formats its
// partners register (ours: README, "Secret scanning"), and POSTs what it finds to the
// partner's endpoint: a JSON array of {token, type, url, source}, signed with ECDSA P-256 over
// SHA-256 of the raw body, the signature (base64 ASN.1 DER) in Github-Public-Key-Signature and
// the id of the key in Github-Public-Key-Identifier. The keys are the ones GitHub publishes
// (https://api.github.com/meta/public_keys/secret_scanning); we fetch and cache them (keys.go)
// and never take one from a request.
//
// A reported token is ours when it parses (our checksum, or Rill's unchecked form) and a
// record of its id holds the SHA-256 of its secret (compared in constant time, as the
// resolver does): it is revoked at once, a plain store revoke whose change the feed carries to
// every replica, and audited as token.leaked with the URL where it was found. The answer is
// GitHub's feedback array, one entry per reported token, each labelled true_positive or
// false_positive; it holds nothing the report did not carry.
package leaks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/rill-authd/rill-authd/internal/logsample"
	"github.com/rill-authd/rill-authd/metrics"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// Path is where GitHub posts its reports: the URL to give GitHub is the admin listener's
// public address followed by Path.
const Path = "/v1/secret-scanning/github"

// Defaults of Options.
const (
	DefaultMaxBody    = 1 << 20
	DefaultMaxTokens  = 1000
	DefaultMinRefetch = time.Minute
	DefaultMaxKeyAge  = time.Hour
)

// Labels of GitHub's feedback.
const (
	TruePositive  = "true_positive"
	FalsePositive = "false_positive"
)

// Actor is the audit actor of a revocation for a leak.
const Actor = "github-secret-scanning"

// Store is what a report needs of the store: the token records, their owners (to name them
// in the audit) and the audit log.
type Store interface {
	GetToken(ctx context.Context, id token.ID) (store.Token, error)
	DeleteToken(ctx context.Context, id token.ID) error
	GetUser(ctx context.Context, id string) (store.User, error)
	GetService(ctx context.Context, id string) (store.Service, error)
	AppendAudit(ctx context.Context, e store.AuditEvent) error
}

// Leak is one of our tokens that a report revoked: what a notification says about it (never
// its secret).
type Leak struct {
	TokenID token.ID
	Kind    token.Kind
	OwnerID string
	// Target names the token as the audit event does ("user:a@b.c token:<id>").
	Target string
	// URL and Source are where GitHub found it; Type is the secret type GitHub matched.
	URL, Source, Type string
	At                time.Time
}

// Options configure a Handler.
type Options struct {
	// KeysURL is where GitHub publishes its secret scanning keys; empty: the endpoint is off
	// and answers 404.
	KeysURL string
	// Client fetches the keys (default: one with a 10 s timeout).
	Client  *http.Client
	Logger  *slog.Logger
	Metrics *metrics.Metrics
	// MinRefetch is the least time between two fetches of the keys (an unknown key id asks for
	// one); MaxKeyAge is how long a fetched set is used before it is fetched again.
	MinRefetch, MaxKeyAge time.Duration
	// MaxBody bounds a report's body (413 beyond); MaxTokens the tokens in one report (413).
	MaxBody   int64
	MaxTokens int
	Now       func() time.Time
	// OnLeak is called once for each token a report revoked, after its token.leaked audit
	// event is written; it must not block. (The daemon's token.leaked notification is not
	// written here but with the revoke itself: Notifications.)
	OnLeak func(ctx context.Context, l Leak)
	// Notifications, when set, gives the outbox rows that tell of l; they are written in the
	// revoke's own transaction (the store must then be a NotifyingStore), so a revoke is never
	// left untold by a crash.
	Notifications func(l Leak) ([]store.Notification, error)
}

// NotifyingStore is the Store of a Handler with Options.Notifications.
type NotifyingStore interface {
	DeleteTokenNotify(ctx context.Context, id token.ID, ns []store.Notification) error
}

// Handler serves Path.
type Handler struct {
	st   Store
	keys *keySet // nil: off
	o    Options
	log  *slog.Logger
	// refused thins out the warnings of refused signatures: a flood of forged reports costs a
	// few lines a minute, and the count.
	refused *logsample.Sampler
}

// New returns the handler of GitHub's reports against st.
func New(st Store, o Options) *Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if o.MinRefetch <= 0 {
		o.MinRefetch = DefaultMinRefetch
	}
	if o.MaxKeyAge <= 0 {
		o.MaxKeyAge = DefaultMaxKeyAge
	}
	if o.MaxBody <= 0 {
		o.MaxBody = DefaultMaxBody
	}
	if o.MaxTokens <= 0 {
		o.MaxTokens = DefaultMaxTokens
	}
	h := &Handler{st: st, o: o, log: o.Logger, refused: logsample.New(o.Logger, logsample.Options{
		Msg: "secret scanning: refused reports with a bad signature, not logged", Every: time.Minute, Burst: 5})}
	if o.KeysURL != "" {
		h.keys = &keySet{url: o.KeysURL, client: o.Client, log: o.Logger, now: o.Now, minRefetch: o.MinRefetch, maxAge: o.MaxKeyAge}
	}
	return h
}

// Register mounts the handler on mux. It takes no bearer token: a report is authenticated by
// GitHub's signature alone.
func (h *Handler) Register(mux *http.ServeMux) { mux.Handle("POST "+Path, h) }

// report is one match in GitHub's payload. Fields GitHub may add later are ignored.
type report struct {
	Token  string `json:"token"`
	Type   string `json:"type"`
	URL    string `json:"url"`
	Source string `json:"source"`
}

// Feedback is one entry of the answer, GitHub's false-positive feedback format.
type Feedback struct {
	TokenRaw  string `json:"token_raw"`
	TokenType string `json:"token_type"`
	Label     string `json:"label"`
}

type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func fail(status int, format string, args ...any) error {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

// ServeHTTP verifies a report, revokes the reported tokens that are ours and answers the
// feedback array. Nothing is read from the store, let alone changed, before the signature is
// verified.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	code := http.StatusOK
	defer func() { h.o.Metrics.AdminRequest("POST "+Path, code) }()
	fb, err := h.serve(w, r)
	if err != nil {
		var he *httpError
		if !errors.As(err, &he) {
			he = &httpError{status: http.StatusInternalServerError, msg: "internal error; see the rill-authd log"}
			if errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrClosed) {
				he = &httpError{status: http.StatusServiceUnavailable, msg: "the store cannot be reached: retry later"}
			}
			h.log.Error("secret scanning report failed", "err", err)
		}
		code = he.status
		if code == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "60")
		}
		writeJSON(w, code, struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		}{code, he.msg})
		return
	}
	writeJSON(w, http.StatusOK, fb)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) ([]Feedback, error) {
	if h.keys == nil {
		return nil, fail(http.StatusNotFound, "secret scanning reports are off: start rill-authd with --github-secret-scanning-keys-url")
	}
	id, sig := r.Header.Get("Github-Public-Key-Identifier"), r.Header.Get("Github-Public-Key-Signature")
	if id == "" || sig == "" {
		return nil, fail(http.StatusUnauthorized, "%v", ErrNoSignature)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.o.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, fail(http.StatusRequestEntityTooLarge, "the report is over %d bytes", h.o.MaxBody)
		}
		return nil, fail(http.StatusBadRequest, "read the report: %v", err)
	}
	if err := h.keys.verify(r.Context(), id, sig, body); err != nil {
		if errors.Is(err, ErrKeysUnavailable) {
			return nil, fail(http.StatusServiceUnavailable, "%v", ErrKeysUnavailable)
		}
		if h.refused.Allow("", slog.LevelWarn) {
			h.log.Warn("secret scanning: refused a report with a bad signature", "key_identifier", logSafe(id, 80), "why", err)
		}
		return nil, fail(http.StatusUnauthorized, "%v", err)
	}
	reps, err := h.parse(body)
	if err != nil {
		return nil, err
	}
	// The revocations and their audit events are finished even if GitHub hangs up half-way.
	return h.handle(context.WithoutCancel(r.Context()), reps)
}

// parse reads the payload: a JSON array of matches and nothing after it.
func (h *Handler) parse(body []byte) ([]report, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	var reps []report
	if err := dec.Decode(&reps); err != nil {
		return nil, fail(http.StatusBadRequest, "the report is not a JSON array of {token, type, url, source}: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fail(http.StatusBadRequest, "the report has data after its JSON array")
	}
	if reps == nil {
		return nil, fail(http.StatusBadRequest, "the report is not a JSON array of {token, type, url, source}")
	}
	if len(reps) > h.o.MaxTokens {
		return nil, fail(http.StatusRequestEntityTooLarge, "the report holds %d tokens; at most %d are taken in one report", len(reps), h.o.MaxTokens)
	}
	return reps, nil
}

// handle classifies every reported token and revokes ours. A token reported twice in one
// report is looked up once.
func (h *Handler) handle(ctx context.Context, reps []report) ([]Feedback, error) {
	fb := make([]Feedback, len(reps))
	labels := make(map[string]string, len(reps))
	for i, rep := range reps {
		label, seen := labels[rep.Token]
		if !seen {
			ours, err := h.revoke(ctx, rep)
			if err != nil {
				return nil, err
			}
			label = FalsePositive
			if ours {
				label = TruePositive
			}
			labels[rep.Token] = label
		}
		fb[i] = Feedback{TokenRaw: rep.Token, TokenType: rep.Type, Label: label}
	}
	return fb, nil
}

// revoke revokes rep's token if it is one of ours, and says whether it was. Only an error of
// the store is an error.
//
// A token already revoked (or whose owner was deleted) is not ours any more: its record, and
// with it the hash that would tell it from a forgery with its id, is gone, so it is a
// false_positive (GitHub reports the same leak again when it finds it elsewhere).
func (h *Handler) revoke(ctx context.Context, rep report) (bool, error) {
	tok, err := token.Parse(rep.Token)
	if err != nil {
		return false, nil // not ours: wrong prefix, bad checksum or length
	}
	rec, err := h.st.GetToken(ctx, tok.ID)
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrRevoked):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("look up a reported token: %w", err)
	}
	// Constant time, and the kind too, as the resolver compares them.
	if !tok.Matches(rec.Hash) || rec.Kind != tok.Kind {
		return false, nil
	}
	now := h.o.Now().UTC()
	l := Leak{TokenID: rec.ID, Kind: rec.Kind, OwnerID: rec.OwnerID, Target: h.target(ctx, rec),
		URL: logSafe(rep.URL, 2048), Source: logSafe(rep.Source, 64), Type: logSafe(rep.Type, 128), At: now}
	if err := h.delete(ctx, l); err != nil {
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrRevoked) {
			return true, nil // revoked in between (the same report on another replica): audited there
		}
		return false, fmt.Errorf("revoke a leaked token: %w", err)
	}
	h.o.Metrics.TokensRevoked(policy.KindOf(rec.Kind), 1)
	where := l.URL
	if where == "" {
		where = "(no URL)"
	}
	detail := "reported by GitHub secret scanning (" + l.Type + "), found at " + where
	if l.Source != "" {
		detail += " (source: " + l.Source + ")"
	}
	if err := h.st.AppendAudit(ctx, store.AuditEvent{Time: now, Actor: Actor, Action: "token.leaked", Target: l.Target,
		Outcome: "revoked", Detail: detail}); err != nil {
		return false, fmt.Errorf("write the audit event of a leaked token (it is revoked): %w", err)
	}
	h.log.Warn("token reported leaked by GitHub secret scanning: revoked", "target", l.Target, "url", l.URL, "source", l.Source)
	if h.o.OnLeak != nil {
		h.o.OnLeak(ctx, l)
	}
	return true, nil
}

// delete revokes l's token, with its notifications when there are any.
func (h *Handler) delete(ctx context.Context, l Leak) error {
	if h.o.Notifications == nil {
		return h.st.DeleteToken(ctx, l.TokenID)
	}
	ns, err := h.o.Notifications(l)
	if err != nil {
		return err
	}
	st, ok := h.st.(NotifyingStore)
	if !ok {
		return errors.New("the store cannot write notifications with a revoke")
	}
	return st.DeleteTokenNotify(ctx, l.TokenID, ns)
}

// target names rec as the audit log names tokens: its owner and its id.
func (h *Handler) target(ctx context.Context, rec store.Token) string {
	id := " token:" + rec.ID.String()
	switch rec.Kind {
	case token.Service:
		if s, err := h.st.GetService(ctx, rec.OwnerID); err == nil {
			return "service:" + s.Org + "/" + s.Name + id
		}
		return "service:" + rec.OwnerID + id
	case token.Magic:
		if rec.Magic != nil {
			return "project:" + rec.Magic.Org + "/" + rec.Magic.Project + id
		}
		return "project:" + rec.OwnerID + id
	}
	if u, err := h.st.GetUser(ctx, rec.OwnerID); err == nil {
		return "user:" + u.Email + id
	}
	return "user:" + rec.OwnerID + id
}

// logSafe is s fit for a log line and the audit log: control characters (NUL included, which
// PostgreSQL refuses) dropped, at most n bytes, cut on a rune boundary.
func logSafe(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
