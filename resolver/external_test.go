package resolver

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rill-authd/rill-authd/keys"
	"github.com/rill-authd/rill-authd/metrics"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/store/badger"
	"github.com/rill-authd/rill-authd/token"
)

// fakeIssuer is an external issuer: an httptest JWKS server and the keys behind it.
type fakeIssuer struct {
	mu       sync.Mutex
	keys     []keys.Key
	requests atomic.Int64
	srv      *httptest.Server
}

func newFakeIssuer(t *testing.T) *fakeIssuer {
	fi := &fakeIssuer{}
	fi.rotate(t)
	fi.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fi.requests.Add(1)
		fi.mu.Lock()
		defer fi.mu.Unlock()
		w.Write(keys.NewKeyset(fi.keys).JWKS())
	}))
	t.Cleanup(fi.srv.Close)
	return fi
}

func (fi *fakeIssuer) rotate(t *testing.T) {
	k, err := keys.Generate(time.Now())
	must(t, err)
	fi.mu.Lock()
	defer fi.mu.Unlock()
	for i := range fi.keys {
		fi.keys[i].SignedUntil = time.Now()
	}
	fi.keys = append(fi.keys, k)
}

func (fi *fakeIssuer) sign(t *testing.T, mod func(*token.Claims)) string {
	now := time.Now()
	c := &token.Claims{RegisteredClaims: jwt.RegisteredClaims{Issuer: "https://admin.rill.example", Audience: jwt.ClaimStrings{"rill-authd"},
		Subject: "embed@customer.io", IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)), ID: "x1"},
		Project: "web", Attr: map[string]any{"email": "embed@customer.io", "tenant": "t1"}}
	if mod != nil {
		mod(c)
	}
	fi.mu.Lock()
	ks := keys.NewKeyset(fi.keys)
	fi.mu.Unlock()
	raw, err := ks.Sign(c)
	must(t, err)
	return raw
}

func TestTrustedExternalIssuer(t *testing.T) {
	fi := newFakeIssuer(t)
	m := metrics.New()
	f := setup(t, Options{Issuer: "rill-authd", Audience: "rill", JWKSRefresh: time.Hour, Metrics: m,
		Trusted: []TrustedIssuer{{Issuer: "https://admin.rill.example", JWKSURL: fi.srv.URL, Audience: "rill-authd", Org: "acme"}}})

	res, err := f.r.Resolve(ctx, fi.sign(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	p := res.Principal
	if a := p.AccessTo("acme", "web"); p.Kind != policy.KindEphemeral || p.Subject != "embed@customer.io" || a.Perms != EphemeralPerms || p.Attributes["tenant"] != "t1" {
		t.Fatalf("external principal %+v access %+v", p, a)
	}
	if a := p.AccessTo("acme", "data"); a.Perms != 0 {
		t.Errorf("external token reads another project: %v", a.Perms)
	}
	if n := fi.requests.Load(); n != 1 {
		t.Errorf("%d JWKS fetches, want 1", n)
	}

	// The issuer rotates. Within the refresh interval an unknown kid is refused without a fetch...
	fi.rotate(t)
	rotated := fi.sign(t, nil)
	if _, err := f.r.Resolve(ctx, rotated); !errors.Is(err, token.ErrJWTUnknownKey) {
		t.Fatalf("new kid within the refresh interval: %v", err)
	}
	if n := fi.requests.Load(); n != 1 {
		t.Errorf("refetched within the interval: %d fetches", n)
	}
	// ...and once the interval has passed, the unknown kid refetches once and passes.
	(*f.r.trusted.Load())["https://admin.rill.example"].mu.Lock()
	(*f.r.trusted.Load())["https://admin.rill.example"].fetched = time.Now().Add(-2 * time.Hour)
	(*f.r.trusted.Load())["https://admin.rill.example"].mu.Unlock()
	if _, err := f.r.Resolve(ctx, rotated); err != nil {
		t.Fatalf("after the interval: %v", err)
	}
	if n := fi.requests.Load(); n != 2 {
		t.Errorf("%d JWKS fetches, want 2", n)
	}
	// A flood of unknown kids costs no more fetches.
	impostor := newFakeIssuer(t) // same iss claim, keys the issuer never published
	for range 20 {
		if _, err := f.r.Resolve(ctx, impostor.sign(t, nil)); err == nil {
			t.Fatal("token signed by an unpublished key accepted")
		}
	}
	if n := fi.requests.Load(); n != 2 {
		t.Errorf("unknown-kid flood caused %d fetches", n-2)
	}

	for _, tc := range []struct {
		name string
		mod  func(*token.Claims)
		want error
	}{
		{"wrong audience", func(c *token.Claims) { c.Audience = jwt.ClaimStrings{"someone-else"} }, token.ErrJWTAudience},
		{"untrusted issuer", func(c *token.Claims) { c.Issuer = "https://evil.example" }, token.ErrJWTIssuer},
		{"another org", func(c *token.Claims) { c.Org = "other" }, ErrJWTScope},
		{"expired", func(c *token.Claims) { c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Hour)) }, token.ErrJWTExpired},
	} {
		if _, err := f.r.Resolve(ctx, fi.sign(t, tc.mod)); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}

	// An issuer whose JWKS is down is a failure of ours, not a refusal.
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(502) }))
	defer down.Close()
	g := setup(t, Options{Metrics: m, Trusted: []TrustedIssuer{{Issuer: "https://admin.rill.example", JWKSURL: down.URL, Audience: "rill-authd", Org: "acme"}}})
	_, err = g.r.Resolve(ctx, fi.sign(t, nil))
	if !errors.Is(err, ErrJWKSUnavailable) || IsAuthError(err) {
		t.Errorf("JWKS down: %v (auth error: %v)", err, IsAuthError(err))
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{`rill_authd_jwks_refreshes_total{result="ok"} 2`, `rill_authd_jwks_refreshes_total{result="error"} 1`} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestOwnKeys: the resolver verifies its own JWTs with the ring it is given, sees a key written
// to the store after it loaded the keyset (the change feed invalidates the ring), and refuses
// tokens of a key retired longer ago than the ring's max TTL.
func TestOwnKeys(t *testing.T) {
	now := time.Now()
	st, err := badger.Open(badger.Options{InMemory: true})
	must(t, err)
	ring := keys.NewRing(st, keys.Options{MaxTTL: time.Hour, Now: func() time.Time { return now }})
	r := New(st, Options{Issuer: "rill-authd", Audience: "rill", Keys: ring, Now: func() time.Time { return now }, TouchInterval: -1})
	t.Cleanup(func() { r.Close(); st.Close() })
	if r.Keys() != ring {
		t.Fatal("the resolver does not use the ring it was given")
	}
	must(t, st.CreateOrg(ctx, store.Org{Name: "acme"}))
	must(t, st.CreateService(ctx, store.Service{ID: "s-admin", Org: "acme", Name: "robot", OrgRole: "admin"}))
	// signed puts a key in the store, past the ring, and signs a live token with it.
	made := 0
	signed := func(retired time.Time) string {
		made++ // each key made after the one before, as rotations make them
		k, err := keys.Generate(now.Add(-3*time.Hour + time.Duration(made)*time.Minute))
		must(t, err)
		k.SignedUntil = retired
		rec, err := k.Record()
		must(t, err)
		must(t, st.PutSigningKey(ctx, rec))
		k.SignedUntil = time.Time{} // to sign with it
		raw, err := keys.NewKeyset([]keys.Key{k}).Sign(&token.Claims{RegisteredClaims: jwt.RegisteredClaims{Issuer: "rill-authd",
			Audience: jwt.ClaimStrings{"rill"}, Subject: "u@x.io", IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
			ID: token.NewID()}, Org: "acme", Project: "web", IssuedBy: "service:s-admin"})
		must(t, err)
		return raw
	}
	for _, tc := range []struct {
		name    string
		retired time.Time
		want    error
	}{
		{"signing key", time.Time{}, nil},
		{"a second key, written after the keyset was loaded", time.Time{}, nil},
		{"retired 30m ago: may have live tokens", now.Add(-30 * time.Minute), nil},
		{"retired 2h ago: every token it signed has expired", now.Add(-2 * time.Hour), token.ErrJWTUnknownKey},
	} {
		if _, err := r.Resolve(ctx, signed(tc.retired)); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestSetTrusted: a reload that drops a trusted issuer refuses its tokens at once, cached ones
// included; one that trusts it for another org gives that org; one that leaves it unchanged
// keeps its fetched JWKS (no refetch) and its cached principals.
func TestSetTrusted(t *testing.T) {
	fi := newFakeIssuer(t)
	ti := TrustedIssuer{Issuer: "https://admin.rill.example", JWKSURL: fi.srv.URL, Audience: "rill-authd", Org: "acme"}
	f := setup(t, Options{Issuer: "rill-authd", Audience: "rill", JWKSRefresh: time.Hour, Trusted: []TrustedIssuer{ti}})
	raw := fi.sign(t, nil)
	org := func() (string, error) {
		res, err := f.r.Resolve(ctx, raw)
		if err != nil {
			return "", err
		}
		if res.Principal.AccessTo("acme", "web").Perms != 0 {
			return "acme", nil
		}
		if res.Principal.AccessTo("globex", "web").Perms != 0 {
			return "globex", nil
		}
		return "", nil
	}
	if o, err := org(); err != nil || o != "acme" {
		t.Fatalf("before: %q %v", o, err)
	}

	f.r.SetTrusted([]TrustedIssuer{ti}) // unchanged
	if o, err := org(); err != nil || o != "acme" || fi.requests.Load() != 1 || f.r.Stats().Drops != 0 {
		t.Fatalf("after an unchanged set: %q %v, %d fetches, %d drops", o, err, fi.requests.Load(), f.r.Stats().Drops)
	}

	other := ti
	other.Org = "globex"
	f.r.SetTrusted([]TrustedIssuer{other})
	if o, err := org(); err != nil || o != "globex" {
		t.Fatalf("trusted for globex now: %q %v (a cached principal of acme answered?)", o, err)
	}

	f.r.SetTrusted(nil)
	if o, err := org(); !errors.Is(err, token.ErrJWTIssuer) {
		t.Fatalf("issuer no longer trusted: %q %v, want %v", o, err, token.ErrJWTIssuer)
	}
}
