package token

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func mustKey(t testing.TB, at time.Time) Key {
	t.Helper()
	k, err := GenerateKey(at)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func claimsAt(now time.Time, ttl time.Duration) *Claims {
	return &Claims{RegisteredClaims: jwt.RegisteredClaims{Issuer: "rill-authd", Audience: jwt.ClaimStrings{"rill"}, Subject: "u@x.io",
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)), ID: "j1"},
		Org: "acme", Project: "web", Attr: map[string]any{"email": "u@x.io"}, Permissions: []string{"read_prod"}, IssuedBy: "service:s1"}
}

func TestJWTAdversarial(t *testing.T) {
	k := mustKey(t, t0)
	ks := NewKeyset([]Key{k})
	good, err := ks.Sign(claimsAt(t0, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if c, err := ks.Verify(good, "rill-authd", "rill", t0.Add(time.Minute)); err != nil || c.Attr["email"] != "u@x.io" || c.Org != "acme" {
		t.Fatalf("good token: %+v %v", c, err)
	}
	seg := strings.Split(good, ".")
	b64 := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }

	// HMAC keyed with the public key, the classic confusion attack.
	pubDER, _ := x509.MarshalPKIXPublicKey(&k.Private.PublicKey)
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, claimsAt(t0, time.Hour))
	hs.Header["kid"] = k.KID
	hmacTok, _ := hs.SignedString(pubDER)
	// Signed by a stranger's key under our kid.
	stranger := mustKey(t, t0)
	stranger.KID = k.KID
	forged, _ := NewKeyset([]Key{stranger}).Sign(claimsAt(t0, time.Hour))
	unknownKid, _ := NewKeyset([]Key{mustKey(t, t0)}).Sign(claimsAt(t0, time.Hour))
	sign := func(c *Claims) string { s, _ := ks.Sign(c); return s }
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
		{"alg none", b64(map[string]string{"alg": "none", "kid": k.KID}) + "." + seg[1] + ".", t0, ErrJWTAlg},
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
			_, err := ks.Verify(tc.raw, "rill-authd", "rill", tc.at)
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
		if _, err := ks.Verify(good, "rill-authd", "rill", at); err != nil {
			t.Errorf("at %v (inside the leeway): %v", at, err)
		}
	}
}

func TestKeyRotationAndJWKS(t *testing.T) {
	old := mustKey(t, t0)
	before, _ := NewKeyset([]Key{old}).Sign(claimsAt(t0, time.Hour))
	old.RetiredAt = t0.Add(time.Minute)
	fresh := mustKey(t, t0.Add(time.Minute))
	ks := NewKeyset([]Key{fresh, old})
	after, _ := ks.Sign(claimsAt(t0.Add(time.Minute), time.Hour))
	for name, raw := range map[string]string{"signed by the retired key": before, "signed by the new key": after} {
		if _, err := ks.Verify(raw, "rill-authd", "rill", t0.Add(2*time.Minute)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	tok, _, _ := jwt.NewParser().ParseUnverified(after, &Claims{})
	if tok.Header["kid"] != fresh.KID {
		t.Errorf("new tokens signed by kid %v, want the new key %s", tok.Header["kid"], fresh.KID)
	}
	var set struct {
		Keys []struct{ Kty, Alg, Kid, N, E, Use string }
	}
	if err := json.Unmarshal(ks.JWKS(), &set); err != nil || len(set.Keys) != 2 {
		t.Fatalf("JWKS %s: %v", ks.JWKS(), err)
	}
	for _, k := range set.Keys {
		want := map[string]Key{old.KID: old, fresh.KID: fresh}[k.Kid]
		n, _ := base64.RawURLEncoding.DecodeString(k.N)
		e, _ := base64.RawURLEncoding.DecodeString(k.E)
		if want.Private == nil || k.Kty != "RSA" || k.Alg != "RS256" || k.Use != "sig" ||
			new(big.Int).SetBytes(n).Cmp(want.Private.N) != 0 || new(big.Int).SetBytes(e).Int64() != int64(want.Private.E) {
			t.Errorf("JWK %+v does not match its key", k)
		}
	}
	// A stored key round-trips.
	der, err := MarshalKey(fresh.Private)
	if err != nil {
		t.Fatal(err)
	}
	back, err := UnmarshalKey(der)
	if err != nil || !back.Equal(fresh.Private) {
		t.Fatalf("key round trip: %v", err)
	}
	if _, err := UnmarshalKey([]byte("junk")); err == nil {
		t.Error("junk key accepted")
	}
}

func BenchmarkVerifyRS256Cold(b *testing.B) {
	ks := NewKeyset([]Key{mustKey(b, t0)})
	raw, _ := ks.Sign(claimsAt(t0, time.Hour))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ks.Verify(raw, "rill-authd", "rill", t0); err != nil {
			b.Fatal(err)
		}
	}
}
