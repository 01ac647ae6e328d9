package token

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// testKey is an RSA key under a kid, as keys hands one to Sign.
type testKey struct {
	kid string
	key *rsa.PrivateKey
}

func mustKey(t testing.TB, kid string) testKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{kid, k}
}

func (k testKey) sign(t testing.TB, c *Claims) string {
	t.Helper()
	s, err := Sign(c, k.kid, k.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// only is a key lookup that knows k alone.
func only(k testKey) func(string) (*rsa.PublicKey, error) {
	return func(kid string) (*rsa.PublicKey, error) {
		if kid == k.kid {
			return &k.key.PublicKey, nil
		}
		return nil, ErrJWTUnknownKey
	}
}

func claimsAt(now time.Time, ttl time.Duration) *Claims {
	return &Claims{RegisteredClaims: jwt.RegisteredClaims{Issuer: "rill-authd", Audience: jwt.ClaimStrings{"rill"}, Subject: "u@x.io",
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)), ID: "j1"},
		Org: "acme", Project: "web", Attr: map[string]any{"email": "u@x.io"}, Permissions: []string{"read_prod"}, IssuedBy: "service:s1"}
}

func TestJWTAdversarial(t *testing.T) {
	k := mustKey(t, "k1")
	keyFor := only(k)
	good := k.sign(t, claimsAt(t0, time.Hour))
	if c, err := Verify(good, keyFor, "rill-authd", "rill", t0.Add(time.Minute)); err != nil || c.Attr["email"] != "u@x.io" || c.Org != "acme" {
		t.Fatalf("good token: %+v %v", c, err)
	}
	seg := strings.Split(good, ".")
	b64 := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }

	// HMAC keyed with the public key, the classic confusion attack.
	pubDER, _ := x509.MarshalPKIXPublicKey(&k.key.PublicKey)
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, claimsAt(t0, time.Hour))
	hs.Header["kid"] = k.kid
	hmacTok, _ := hs.SignedString(pubDER)
	// Signed by a stranger's key under our kid.
	stranger := mustKey(t, k.kid)
	forged := stranger.sign(t, claimsAt(t0, time.Hour))
	unknownKid := mustKey(t, "k2").sign(t, claimsAt(t0, time.Hour))
	sign := func(c *Claims) string { return k.sign(t, c) }
	wrongIss := claimsAt(t0, time.Hour)
	wrongIss.Issuer = "https://evil.example"
	wrongAud := claimsAt(t0, time.Hour)
	wrongAud.Audience = jwt.ClaimStrings{"someone-else"}
	noExp := claimsAt(t0, time.Hour)
	noExp.ExpiresAt = nil

	tests := []struct {
		name string
		raw  string
		at   time.Time
		want error
	}{
		{"alg none", b64(map[string]string{"alg": "none", "kid": k.kid}) + "." + seg[1] + ".", t0, ErrJWTAlg},
		{"alg None with signature", b64(map[string]string{"alg": "None"}) + "." + seg[1] + "." + seg[2], t0, ErrJWTAlg},
		{"HS256 keyed with the public key", hmacTok, t0, ErrJWTAlg},
		{"wrong key under our kid", forged, t0, ErrJWTSignature},
		{"unknown kid", unknownKid, t0, ErrJWTUnknownKey},
		{"no kid", b64(map[string]string{"alg": "RS256"}) + "." + seg[1] + "." + seg[2], t0, ErrJWTUnknownKey},
		{"tampered payload", seg[0] + "." + b64(map[string]any{"sub": "admin", "iss": "rill-authd", "aud": "rill", "exp": t0.Add(time.Hour).Unix()}) + "." + seg[2], t0, ErrJWTSignature},
		{"expired", good, t0.Add(time.Hour + Leeway + time.Second), ErrJWTExpired},
		{"not yet valid", good, t0.Add(-Leeway - time.Minute), ErrJWTNotYet},
		{"wrong issuer", sign(wrongIss), t0, ErrJWTIssuer},
		{"wrong audience", sign(wrongAud), t0, ErrJWTAudience},
		{"no exp", sign(noExp), t0, ErrJWTMalformed},
		{"truncated", good[:len(good)/2], t0, ErrJWTMalformed},
		{"two segments", seg[0] + "." + seg[1], t0, ErrJWTMalformed},
		{"garbage header", "%%%." + seg[1] + "." + seg[2], t0, ErrJWTMalformed},
		{"oversized header", strings.Repeat("A", 2000) + "." + seg[1] + "." + seg[2], t0, ErrJWTMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Verify(tc.raw, keyFor, "rill-authd", "rill", tc.at)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if strings.Contains(err.Error(), seg[2][:20]) {
				t.Errorf("error leaks the token: %v", err)
			}
		})
	}
	// Within the leeway both ways is fine.
	for _, at := range []time.Time{t0.Add(-Leeway + time.Second), t0.Add(time.Hour + Leeway - time.Second)} {
		if _, err := Verify(good, keyFor, "rill-authd", "rill", at); err != nil {
			t.Errorf("at %v (inside the leeway): %v", at, err)
		}
	}
}

// TestSignPutsTheKidInTheHeader: verifiers pick the key by it.
func TestSignPutsTheKidInTheHeader(t *testing.T) {
	k := mustKey(t, "kid-7")
	raw := k.sign(t, claimsAt(t0, time.Hour))
	tok, _, err := jwt.NewParser().ParseUnverified(raw, &Claims{})
	if err != nil || tok.Header["kid"] != "kid-7" || tok.Header["alg"] != "RS256" {
		t.Fatalf("header %v: %v", tok.Header, err)
	}
}

func BenchmarkVerifyRS256Cold(b *testing.B) {
	k := mustKey(b, "k1")
	keyFor := only(k)
	raw := k.sign(b, claimsAt(t0, time.Hour))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(raw, keyFor, "rill-authd", "rill", t0); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzJWT feeds arbitrary compact JWTs to the unverified issuer peek and to Verify: neither may
// panic, and Verify may accept only what our key signed (a mutation that still verifies must
// carry the same claims).
func FuzzJWT(f *testing.F) {
	k := mustKey(f, "k1")
	good := k.sign(f, claimsAt(t0, time.Hour))
	f.Add(good)
	f.Add(good[:len(good)-5])
	f.Add("eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.")
	f.Add("eyJhbGciOiJIUzI1NiJ9.e30.c2ln")
	f.Add("..")
	f.Add("e30.e30.e30.e30")
	f.Fuzz(func(t *testing.T, raw string) {
		_, _ = UnverifiedIssuer(raw)
		c, err := Verify(raw, only(k), "rill-authd", "rill", t0.Add(time.Minute))
		if err != nil {
			return
		}
		if c.Subject != "u@x.io" || c.Org != "acme" || c.ID != "j1" {
			t.Fatalf("Verify accepted a token with claims %+v that we never signed", c)
		}
	})
}
