package keys

import (
	"encoding/base64"
	"encoding/json"
	"math/big"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func mustKey(t testing.TB, at time.Time) Key {
	t.Helper()
	k, err := Generate(at)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func claimsAt(now time.Time, ttl time.Duration) *token.Claims {
	return &token.Claims{RegisteredClaims: jwt.RegisteredClaims{Issuer: "rill-authd", Audience: jwt.ClaimStrings{"rill"}, Subject: "u@x.io",
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)), ID: "j1"},
		Org: "acme", Project: "web", Attr: map[string]any{"email": "u@x.io"}, Permissions: []string{"read_prod"}, IssuedBy: "service:s1"}
}

// kidOf reads the kid header of a JWT.
func kidOf(t testing.TB, raw string) string {
	t.Helper()
	tok, _, err := jwt.NewParser().ParseUnverified(raw, &token.Claims{})
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := tok.Header["kid"].(string)
	return kid
}

func TestKeyRotationAndJWKS(t *testing.T) {
	old := mustKey(t, t0)
	before, _ := NewKeyset([]Key{old}).Sign(claimsAt(t0, time.Hour))
	old.SignedUntil = t0.Add(time.Minute)
	fresh := mustKey(t, t0.Add(time.Minute))
	ks := NewKeyset([]Key{fresh, old})
	after, _ := ks.Sign(claimsAt(t0.Add(time.Minute), time.Hour))
	for name, raw := range map[string]string{"signed by the retired key": before, "signed by the new key": after} {
		if _, err := ks.Verify(raw, "rill-authd", "rill", t0.Add(2*time.Minute)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if kid := kidOf(t, after); kid != fresh.KID {
		t.Errorf("new tokens signed by kid %v, want the new key %s", kid, fresh.KID)
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
	// Our JWKS reads back as the same public keys (ParseJWKS reads other issuers' sets).
	parsed, err := ParseJWKS(ks.JWKS())
	if err != nil || len(parsed) != 2 || !parsed[old.KID].Equal(&old.Private.PublicKey) || !parsed[fresh.KID].Equal(&fresh.Private.PublicKey) {
		t.Errorf("ParseJWKS of our own set: %v %v", parsed, err)
	}
	// A stored key round-trips.
	rec, err := fresh.Record()
	if err != nil {
		t.Fatal(err)
	}
	back, err := FromRecord(rec)
	if err != nil || !back.Private.Equal(fresh.Private) || back.KID != fresh.KID || !back.CreatedAt.Equal(fresh.CreatedAt) {
		t.Fatalf("key round trip: %+v %v", back, err)
	}
	if _, err := FromRecord(store.SigningKey{KID: "junk", PrivateKey: []byte("junk")}); err == nil {
		t.Error("junk key accepted")
	}
}

func TestNoSigner(t *testing.T) {
	retired := mustKey(t, t0)
	retired.RetiredAt = t0
	for name, ks := range map[string]*Keyset{"empty": NewKeyset(nil), "only retired": NewKeyset([]Key{retired})} {
		if ks.CanSign() || !ks.SignerCreated().IsZero() {
			t.Errorf("%s: can sign", name)
		}
		if _, err := ks.Sign(claimsAt(t0, time.Hour)); err == nil {
			t.Errorf("%s: signed without a signing key", name)
		}
	}
	if got := string(NewKeyset(nil).JWKS()); got != `{"keys":[]}` {
		t.Errorf("empty JWKS is %s", got)
	}
}
