package leaks_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/leaks"
	"github.com/rill-authd/rill-authd/resolver"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/store/badger"
	"github.com/rill-authd/rill-authd/token"
)

// keyServer publishes ECDSA P-256 keys in GitHub's format
// ({"public_keys":[{"key_identifier","key","is_current"}]}) on 127.0.0.1, as
// https://api.github.com/meta/public_keys/secret_scanning does, and counts its fetches.
type keyServer struct {
	*httptest.Server
	mu      sync.Mutex
	keys    []signer
	fetches atomic.Int64
	down    atomic.Bool
	// notModified counts the 304s answered to a fetch with the ETag of the keys it has (the
	// ETag is the number of keys: the tests only ever add or remove).
	notModified atomic.Int64
}

type signer struct {
	id  string
	key *ecdsa.PrivateKey
}

func newSigner(t testing.TB) signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	sum := sha256.Sum256(der)
	return signer{id: fmt.Sprintf("%x", sum), key: k}
}

// sign is GitHub's signature of body: base64 of the ASN.1 DER ECDSA signature of SHA-256(body).
func (s signer) sign(t testing.TB, body []byte) string {
	t.Helper()
	d := sha256.Sum256(body)
	sig, err := ecdsa.SignASN1(rand.Reader, s.key, d[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

func startKeyServer(t testing.TB, keys ...signer) *keyServer {
	ks := &keyServer{keys: keys}
	ks.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ks.fetches.Add(1)
		if ks.down.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		ks.mu.Lock()
		defer ks.mu.Unlock()
		etag := fmt.Sprintf(`"%d"`, len(ks.keys))
		if r.Header.Get("If-None-Match") == etag {
			ks.notModified.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		type pk struct {
			ID      string `json:"key_identifier"`
			Key     string `json:"key"`
			Current bool   `json:"is_current"`
		}
		var doc struct {
			PublicKeys []pk `json:"public_keys"`
		}
		for i, k := range ks.keys {
			der, _ := x509.MarshalPKIXPublicKey(&k.key.PublicKey)
			doc.PublicKeys = append(doc.PublicKeys, pk{ID: k.id, Key: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
				Current: i == len(ks.keys)-1})
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(doc)
	}))
	t.Cleanup(ks.Close)
	return ks
}

func (ks *keyServer) publish(s signer) {
	ks.mu.Lock()
	ks.keys = append(ks.keys, s)
	ks.mu.Unlock()
}

// env is a Badger store with org acme, project web, a user, a service, and one live token of
// each kind (ours), an imported token in Rill's form, and the handler served on 127.0.0.1.
type env struct {
	st     *badger.DB
	res    *resolver.Resolver
	url    string
	keys   *keyServer
	gh     signer
	toks   map[string]string // user, service, magic, rill
	ids    map[string]token.ID
	leaked []leaks.Leak
	mu     sync.Mutex
}

func newEnv(t testing.TB, o leaks.Options) *env {
	t.Helper()
	st, err := badger.Open(badger.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	now := time.Now().UTC()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.CreateOrg(ctx, store.Org{Name: "acme", CreatedAt: now}))
	must(st.CreateProject(ctx, store.Project{Org: "acme", Name: "web", CreatedAt: now}))
	must(st.CreateUser(ctx, store.User{ID: token.NewID(), Email: "ann@acme.test", CreatedAt: now, UpdatedAt: now}))
	u, err := st.GetUserByEmail(ctx, "ann@acme.test")
	must(err)
	svc := store.Service{ID: token.NewID(), Org: "acme", Name: "ci", CreatedAt: now, UpdatedAt: now}
	must(st.CreateService(ctx, svc))

	e := &env{st: st, toks: map[string]string{}, ids: map[string]token.ID{}}
	issue := func(name string, tok token.Token, owner string, magic *store.Magic) {
		t.Helper()
		rec := store.NewToken(tok, owner, name, "test", now, 0)
		if name == "expired" {
			rec = store.NewToken(tok, owner, name, "test", now.Add(-2*time.Hour), time.Hour)
		}
		rec.Magic = magic
		if magic != nil {
			must(st.CreateMagicTokenCapped(ctx, rec, 0, 0))
		} else {
			must(st.CreateToken(ctx, rec))
		}
		e.toks[name], e.ids[name] = tok.Encode(), tok.ID
	}
	newTok := func(k token.Kind) token.Token {
		tok, err := token.New(k)
		must(err)
		return tok
	}
	issue("user", newTok(token.User), u.ID, nil)
	issue("service", newTok(token.Service), svc.ID, nil)
	issue("magic", newTok(token.Magic), store.MagicOwner("acme", "web"), &store.Magic{Org: "acme", Project: "web"})
	rill := newTok(token.User)
	rill.Rill = true // imported from Rill: no checksum
	issue("rill", rill, u.ID, nil)
	issue("expired", newTok(token.User), u.ID, nil)

	e.gh = newSigner(t)
	e.keys = startKeyServer(t, e.gh)
	o.KeysURL = e.keys.URL + "/meta/public_keys/secret_scanning"
	o.OnLeak = func(_ context.Context, l leaks.Leak) { e.mu.Lock(); e.leaked = append(e.leaked, l); e.mu.Unlock() }
	mux := http.NewServeMux()
	leaks.New(st, o).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	e.url = srv.URL
	e.res = resolver.New(st, resolver.Options{TouchInterval: -1})
	t.Cleanup(e.res.Close)
	return e
}

type answer struct {
	code int
	body string
	fb   []leaks.Feedback
}

// post sends body with the given key id and signature headers ("" leaves one out).
func (e *env) post(t *testing.T, body []byte, keyID, sig string) answer {
	t.Helper()
	req, _ := http.NewRequest("POST", e.url+leaks.Path, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	if keyID != "" {
		req.Header.Set("Github-Public-Key-Identifier", keyID)
	}
	if sig != "" {
		req.Header.Set("Github-Public-Key-Signature", sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{code: resp.StatusCode, body: string(b)}
	if a.code == 200 {
		if err := json.Unmarshal(b, &a.fb); err != nil {
			t.Fatalf("feedback %q: %v", b, err)
		}
	}
	return a
}

// signed sends body signed by GitHub's published key.
func (e *env) signed(t *testing.T, body []byte) answer {
	t.Helper()
	return e.post(t, body, e.gh.id, e.gh.sign(t, body))
}

func payload(t testing.TB, toks ...string) []byte {
	var reps []map[string]string
	for i, tok := range toks {
		reps = append(reps, map[string]string{"token": tok, "type": "rill_token",
			"url": fmt.Sprintf("https://github.com/octo/leak/blob/abc/f%d.env", i), "source": "content"})
	}
	b, err := json.Marshal(reps)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// live reports whether the token named name still resolves.
func (e *env) live(t *testing.T, name string) bool {
	t.Helper()
	_, err := e.res.Resolve(context.Background(), e.toks[name])
	switch {
	case err == nil, errors.Is(err, resolver.ErrExpired): // expired, but not revoked
		return true
	case errors.Is(err, resolver.ErrRevoked):
		return false
	}
	t.Fatalf("resolve %s: %v", name, err)
	return false
}

func (e *env) leakAudits(t *testing.T) []store.AuditEvent {
	t.Helper()
	evs, err := e.st.ListAudit(context.Background(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var out []store.AuditEvent
	for _, ev := range evs {
		if ev.Action == "token.leaked" {
			out = append(out, ev)
		}
	}
	return out
}

func (e *env) allLive(t *testing.T) {
	t.Helper()
	for name := range e.toks {
		if !e.live(t, name) {
			t.Errorf("%s token was revoked", name)
		}
	}
	if a := e.leakAudits(t); len(a) != 0 {
		t.Errorf("token.leaked audited: %+v", a)
	}
}

// TestReportRevokesOurTokens: a signed report of each kind of our tokens (user, service,
// public URL, an imported Rill token without checksum, and an expired one) revokes it (the resolver, whose
// cache held it, then refuses it as revoked), audits token.leaked with the URL, calls the
// notification hook and labels it true_positive; tokens that are not ours in the same report
// are false_positive and the answer carries exactly the reported tokens, in order.
func TestReportRevokesOurTokens(t *testing.T) {
	for _, name := range []string{"user", "service", "magic", "rill", "expired"} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, leaks.Options{})
			for n := range e.toks {
				if !e.live(t, n) { // and now cached
					t.Fatalf("%s not live before the report", n)
				}
			}
			other, _ := token.New(token.Service)
			notOurs := []string{
				"rill_usr_" + strings.Repeat("A", 60), // our shape, bad checksum
				other.Encode(),                        // well-formed, unknown id
				"ghp_notatokenofours",
				"",
			}
			toks := append([]string{e.toks[name]}, notOurs...)
			a := e.signed(t, payload(t, toks...))
			if a.code != 200 {
				t.Fatalf("signed report: %d %s", a.code, a.body)
			}
			if len(a.fb) != len(toks) {
				t.Fatalf("feedback %+v, want %d entries", a.fb, len(toks))
			}
			for i, f := range a.fb {
				want := leaks.FalsePositive
				if i == 0 {
					want = leaks.TruePositive
				}
				if f.TokenRaw != toks[i] || f.TokenType != "rill_token" || f.Label != want {
					t.Errorf("feedback[%d] = %+v, want %q %s", i, f, toks[i], want)
				}
			}
			for n := range e.toks {
				if got := e.live(t, n); got != (n != name) {
					t.Errorf("%s token live = %v after reporting the %s token", n, got, name)
				}
			}
			evs := e.leakAudits(t)
			if len(evs) != 1 || evs[0].Actor != leaks.Actor || !strings.Contains(evs[0].Target, "token:"+e.ids[name].String()) ||
				!strings.Contains(evs[0].Detail, "https://github.com/octo/leak/blob/abc/f0.env") || evs[0].Outcome != "revoked" {
				t.Fatalf("token.leaked events: %+v", evs)
			}
			if strings.Contains(evs[0].Detail+evs[0].Target, e.toks[name]) {
				t.Fatal("the audit event holds the secret")
			}
			e.mu.Lock()
			leaked := e.leaked
			e.mu.Unlock()
			if len(leaked) != 1 || leaked[0].TokenID != e.ids[name] || leaked[0].URL != "https://github.com/octo/leak/blob/abc/f0.env" || leaked[0].Source != "content" {
				t.Fatalf("OnLeak calls: %+v", leaked)
			}

			// GitHub reports it again (found in a fork): no second revoke or audit; the record,
			// and with it what would tell it from a forgery, is gone.
			a = e.signed(t, payload(t, e.toks[name], e.toks[name]))
			if a.code != 200 || len(a.fb) != 2 || a.fb[0].Label != leaks.FalsePositive {
				t.Fatalf("second report: %d %+v", a.code, a.fb)
			}
			if n := len(e.leakAudits(t)); n != 1 {
				t.Fatalf("%d token.leaked events after the second report, want 1", n)
			}
		})
	}
}

// TestReportNotOurs: a signed report of nothing of ours changes nothing: a wrong secret with a
// live token's id (ours in every other way), a token of another kind with a live id, and a
// duplicate are all false_positive.
func TestReportNotOurs(t *testing.T) {
	e := newEnv(t, leaks.Options{})
	id := e.ids["user"]
	forged := token.Token{Kind: token.User, ID: id} // the live id, a zero secret
	wrongKind := token.Token{Kind: token.Service, ID: id}
	real, _ := token.Parse(e.toks["user"])
	wrongKind.Secret = real.Secret // right secret, wrong kind
	toks := []string{forged.Encode(), wrongKind.Encode(), forged.Encode()}
	a := e.signed(t, payload(t, toks...))
	if a.code != 200 || len(a.fb) != 3 {
		t.Fatalf("%d %s", a.code, a.body)
	}
	for i, f := range a.fb {
		if f.Label != leaks.FalsePositive || f.TokenRaw != toks[i] {
			t.Errorf("feedback[%d] = %+v", i, f)
		}
	}
	e.allLive(t)
	if a := e.signed(t, []byte(`[]`)); a.code != 200 || a.body != "[]\n" {
		t.Errorf("empty report: %d %q", a.code, a.body)
	}
}

// TestReportRefused: a report that is not GitHub's, or not a report, is refused with the
// right status before anything is read from the store, and revokes nothing.
func TestReportRefused(t *testing.T) {
	e := newEnv(t, leaks.Options{MaxBody: 4096, MaxTokens: 3})
	body := payload(t, e.toks["user"])
	impostor := newSigner(t) // never published
	good := e.gh.sign(t, body)
	other := e.gh.sign(t, append([]byte(" "), body...))
	raw, _ := base64.StdEncoding.DecodeString(good)
	flipped := append([]byte(nil), raw...)
	flipped[len(flipped)-1] ^= 1
	big := payload(t, e.toks["user"], strings.Repeat("x", 5000))
	many := payload(t, e.toks["user"], "a", "b", "c")
	for _, c := range []struct {
		name      string
		body      []byte
		id, sig   string
		code      int
		inMessage string
	}{
		{"no headers", body, "", "", 401, "Github-Public-Key-Signature"},
		{"no signature", body, e.gh.id, "", 401, "header"},
		{"no key id", body, "", good, 401, "header"},
		{"signature of another body", body, e.gh.id, other, 401, "does not verify"},
		{"flipped signature", body, e.gh.id, base64.StdEncoding.EncodeToString(flipped), 401, "does not verify"},
		{"not base64", body, e.gh.id, "%%%", 401, "does not verify"},
		{"not DER", body, e.gh.id, base64.StdEncoding.EncodeToString([]byte("hello")), 401, "does not verify"},
		{"unpublished key", body, impostor.id, impostor.sign(t, body), 401, "not among"},
		{"unpublished key under the published id", body, e.gh.id, impostor.sign(t, body), 401, "does not verify"},
		{"oversized", big, e.gh.id, e.gh.sign(t, big), 413, "over 4096 bytes"},
		{"too many tokens", many, e.gh.id, e.gh.sign(t, many), 413, "at most 3"},
		{"malformed JSON", []byte(`[{"token":`), e.gh.id, e.gh.sign(t, []byte(`[{"token":`)), 400, "JSON array"},
		{"an object", []byte(`{"token":"x"}`), e.gh.id, e.gh.sign(t, []byte(`{"token":"x"}`)), 400, "JSON array"},
		{"null", []byte(`null`), e.gh.id, e.gh.sign(t, []byte(`null`)), 400, "JSON array"},
		{"trailing data", []byte(`[] []`), e.gh.id, e.gh.sign(t, []byte(`[] []`)), 400, "after"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := e.post(t, c.body, c.id, c.sig)
			if a.code != c.code || !strings.Contains(a.body, c.inMessage) {
				t.Errorf("%d %s, want %d with %q", a.code, a.body, c.code, c.inMessage)
			}
			if strings.Contains(a.body, e.toks["user"]) {
				t.Error("the refusal echoes the token")
			}
		})
	}
	e.allLive(t)
	// Only the first report asked for the keys: the impostor's id did not make us refetch
	// (a minute has not passed).
	if n := e.keys.fetches.Load(); n != 1 {
		t.Errorf("%d fetches of the key document, want 1", n)
	}
}

// TestKeyRotation: a report signed by a key GitHub published after our fetch is verified
// after one refetch; a flood of unknown ids causes at most one fetch per MinRefetch; a key
// GitHub withdrew stops verifying once the set is older than MaxKeyAge; a key server that is
// down leaves the keys fetched before in use, and before any fetch the answer is 503.
func TestKeyRotation(t *testing.T) {
	now := time.Now()
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	tick := func(d time.Duration) { clock.Add(int64(d)) }
	e := newEnv(t, leaks.Options{MinRefetch: time.Minute, MaxKeyAge: time.Hour, Now: func() time.Time { return time.Unix(0, clock.Load()) }})
	empty := []byte(`[]`)
	if a := e.signed(t, empty); a.code != 200 {
		t.Fatalf("first report: %d %s", a.code, a.body)
	}
	// Rotation: GitHub publishes a new key and signs with it.
	next := newSigner(t)
	e.keys.publish(next)
	tick(2 * time.Minute)
	if a := e.post(t, empty, next.id, next.sign(t, empty)); a.code != 200 {
		t.Fatalf("report signed by the new key: %d %s", a.code, a.body)
	}
	if n := e.keys.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches after the rotation, want 2", n)
	}
	// A flood of made-up ids: one refetch at most per minute.
	tick(2 * time.Minute)
	for i := range 50 {
		x := newSigner(t)
		if a := e.post(t, empty, x.id+fmt.Sprint(i), x.sign(t, empty)); a.code != 401 {
			t.Fatalf("unknown key: %d %s", a.code, a.body)
		}
	}
	if n := e.keys.fetches.Load(); n != 3 {
		t.Fatalf("%d fetches after a flood of unknown key ids, want 3", n)
	}
	// A key published within the minute of the last fetch waits for the next minute.
	late := newSigner(t)
	e.keys.publish(late)
	if a := e.post(t, empty, late.id, late.sign(t, empty)); a.code != 401 {
		t.Fatalf("a key published within the refetch interval: %d %s", a.code, a.body)
	}
	tick(time.Minute)
	if a := e.post(t, empty, late.id, late.sign(t, empty)); a.code != 200 {
		t.Fatalf("the same key a minute later: %d %s", a.code, a.body)
	}
	// An unchanged document after MaxKeyAge: a conditional fetch, a 304, and the keys stay.
	tick(2 * time.Hour)
	before := e.keys.notModified.Load()
	if a := e.post(t, empty, late.id, late.sign(t, empty)); a.code != 200 || e.keys.notModified.Load() != before+1 {
		t.Fatalf("after MaxKeyAge with the document unchanged: %d %s, %d 304s, want %d", a.code, a.body, e.keys.notModified.Load(), before+1)
	}
	// GitHub withdraws the first key (and publishes one more, so the document differs): after
	// MaxKeyAge the first no longer verifies.
	e.keys.mu.Lock()
	e.keys.keys = append(e.keys.keys[1:], newSigner(t), newSigner(t))
	e.keys.mu.Unlock()
	if a := e.signed(t, empty); a.code != 200 {
		t.Fatalf("withdrawn key within MaxKeyAge: %d %s", a.code, a.body)
	}
	tick(2 * time.Hour)
	if a := e.signed(t, empty); a.code != 401 {
		t.Fatalf("withdrawn key after MaxKeyAge: %d %s", a.code, a.body)
	}
	// The key server goes down: the keys fetched before keep verifying.
	e.keys.down.Store(true)
	tick(2 * time.Hour)
	if a := e.post(t, empty, next.id, next.sign(t, empty)); a.code != 200 {
		t.Fatalf("with the key server down: %d %s", a.code, a.body)
	}
}

// TestKeysUnavailable: before any fetch succeeds a report cannot be verified: 503 with
// Retry-After (GitHub retries), no more than one fetch per MinRefetch, and nothing revoked.
func TestKeysUnavailable(t *testing.T) {
	e := newEnv(t, leaks.Options{})
	e.keys.down.Store(true)
	body := payload(t, e.toks["user"])
	for range 3 {
		if a := e.signed(t, body); a.code != 503 {
			t.Fatalf("%d %s, want 503", a.code, a.body)
		}
	}
	if n := e.keys.fetches.Load(); n != 1 {
		t.Errorf("%d fetches, want 1", n)
	}
	e.allLive(t)
}

// TestOff: without a key URL the endpoint answers 404 and looks at nothing.
func TestOff(t *testing.T) {
	st, err := badger.Open(badger.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	mux := http.NewServeMux()
	leaks.New(st, leaks.Options{}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := http.Post(srv.URL+leaks.Path, "application/json", strings.NewReader(`[]`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || !strings.Contains(string(b), "--github-secret-scanning-keys-url") {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
}

// TestSameReportAtOnce: GitHub's report arriving several times at once (retries, or one per
// replica) revokes the token once, audits it once, and never answers an error.
func TestSameReportAtOnce(t *testing.T) {
	e := newEnv(t, leaks.Options{})
	body := payload(t, e.toks["service"])
	sig := e.gh.sign(t, body)
	var wg sync.WaitGroup
	var truePos atomic.Int64
	for range 8 {
		wg.Go(func() {
			a := e.post(t, body, e.gh.id, sig)
			if a.code != 200 || len(a.fb) != 1 {
				t.Errorf("%d %s", a.code, a.body)
				return
			}
			if a.fb[0].Label == leaks.TruePositive {
				truePos.Add(1)
			}
		})
	}
	wg.Wait()
	if truePos.Load() < 1 {
		t.Error("no answer said true_positive")
	}
	if e.live(t, "service") {
		t.Error("the service token is live")
	}
	if n := len(e.leakAudits(t)); n != 1 {
		t.Errorf("%d token.leaked events, want 1", n)
	}
}

// FuzzReport: whatever a correctly signed body holds, the answer is 200 with one feedback
// entry per reported token, or 400/413, never a panic or a 5xx; and nothing but a token of
// ours is revoked.
func FuzzReport(f *testing.F) {
	f.Add([]byte(`[{"token":"rill_usr_x","type":"t","url":"u","source":"content"}]`))
	f.Add([]byte(`[{"token":"\u0000","url":"\ud800"}]`))
	f.Add([]byte(`[1,2]`))
	f.Add([]byte(`[{"token":{"a":1}}]`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[{}] x`))
	e := newEnv(f, leaks.Options{})
	f.Fuzz(func(t *testing.T, body []byte) {
		a := e.signed(t, body)
		switch a.code {
		case 200, 400, 413:
		default:
			t.Fatalf("%q: %d %s", body, a.code, a.body)
		}
		for _, name := range []string{"user", "service", "magic", "rill"} {
			if !e.live(t, name) {
				t.Fatalf("%q revoked the %s token", body, name)
			}
		}
	})
}

// TestReportNotifiesWithTheRevoke: with Options.Notifications, a revoked token's outbox rows are
// written by the revoke itself; a report that revokes nothing writes none.
func TestReportNotifiesWithTheRevoke(t *testing.T) {
	var asked []leaks.Leak
	e := newEnv(t, leaks.Options{Notifications: func(l leaks.Leak) ([]store.Notification, error) {
		asked = append(asked, l)
		return []store.Notification{{ID: "leak:" + l.TokenID.String(), Sink: "audit", Body: []byte(`{"url":"` + l.URL + `"}`)}}, nil
	}})
	if a := e.signed(t, payload(t, e.toks["service"])); a.code != 200 || a.fb[0].Label != leaks.TruePositive {
		t.Fatalf("report: %d %s", a.code, a.body)
	}
	n, err := e.st.GetNotification(context.Background(), "leak:"+e.ids["service"].String())
	if err != nil || !strings.Contains(string(n.Body), "github.com") {
		t.Fatalf("the leak's notification: %+v, %v", n, err)
	}
	if e.live(t, "service") {
		t.Fatal("the token is live after the report")
	}
	// Again: nothing left to revoke, so nothing more is written.
	if a := e.signed(t, payload(t, e.toks["service"])); a.code != 200 || a.fb[0].Label != leaks.FalsePositive {
		t.Fatalf("second report: %d %s", a.code, a.body)
	}
	if len(asked) != 1 {
		t.Fatalf("Notifications asked %d times, want 1", len(asked))
	}
}
