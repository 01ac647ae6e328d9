package keys

import (
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// Keyset is an immutable set of published keys: it signs with the one key that signs at the
// moment it was built and verifies with any of them. Its JWKS is encoded once, as it is served
// on every fetch.
type Keyset struct {
	signer *Key
	keys   map[string]*rsa.PublicKey
	jwks   []byte
}

// jwk is one public key of a JSON Web Key Set (RFC 7517), as we publish and read them.
type jwk struct {
	Kty string `json:"kty"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// NewKeyset builds a keyset from keys (any order) as of now: every key not retired is
// published, and the one Plan says signs now signs (by activation time; a key that stopped
// signing stays published here whatever its age: a Ring drops those).
func NewKeyset(keys []Key) *Keyset {
	return keysetAt(keys, time.Now(), math.MaxInt64)
}

// keysetAt builds the keyset of keys at now: the keys Plan publishes, and its signer.
func keysetAt(keys []Key, now time.Time, keep time.Duration) *Keyset {
	recs := make([]store.SigningKey, len(keys))
	byKID := make(map[string]*Key, len(keys))
	for i := range keys {
		k := &keys[i]
		recs[i] = store.SigningKey{KID: k.KID, CreatedAt: k.CreatedAt, ActivatesAt: k.ActivatesAt, SignedUntil: k.SignedUntil, RetiredAt: k.RetiredAt}
		byKID[k.KID] = k
	}
	return fromPlan(Plan(recs, now, keep), byKID)
}

// fromPlan is the keyset of the published keys of plan (in its order: oldest first).
func fromPlan(plan []Status, byKID map[string]*Key) *Keyset {
	ks := &Keyset{keys: map[string]*rsa.PublicKey{}}
	set := struct {
		Keys []jwk `json:"keys"`
	}{Keys: []jwk{}}
	for _, st := range plan {
		k := byKID[st.KID]
		if !st.Published() || k == nil {
			continue
		}
		ks.keys[k.KID] = &k.Private.PublicKey
		if st.State == Signing {
			ks.signer = k
		}
		set.Keys = append(set.Keys, jwk{Kty: "RSA", Use: "sig", Alg: "RS256", Kid: k.KID,
			N: base64.RawURLEncoding.EncodeToString(k.Private.N.Bytes()),
			E: base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.Private.E)).Bytes())})
	}
	ks.jwks, _ = json.Marshal(set)
	return ks
}

// JWKS is the keyset's public keys as a JSON Web Key Set.
func (ks *Keyset) JWKS() []byte { return ks.jwks }

// SignerCreated is when the signing key was made (zero without one).
func (ks *Keyset) SignerCreated() time.Time {
	if ks.signer == nil {
		return time.Time{}
	}
	return ks.signer.CreatedAt
}

// SignerKID is the kid of the signing key ("" without one).
func (ks *Keyset) SignerKID() string {
	if ks.signer == nil {
		return ""
	}
	return ks.signer.KID
}

// CanSign reports whether the keyset has a signing key.
func (ks *Keyset) CanSign() bool { return ks.signer != nil }

// Sign mints an RS256 JWT of c with the signing key, its kid in the header.
func (ks *Keyset) Sign(c jwt.Claims) (string, error) {
	if ks.signer == nil {
		return "", errors.New("no signing key")
	}
	return token.Sign(c, ks.signer.KID, ks.signer.Private)
}

// PublicKey returns the public key of kid.
func (ks *Keyset) PublicKey(kid string) (*rsa.PublicKey, bool) {
	k, ok := ks.keys[kid]
	return k, ok
}

// Verify checks a JWT minted with a key of this keyset.
func (ks *Keyset) Verify(raw string, issuer, audience string, now time.Time) (*token.Claims, error) {
	return token.Verify(raw, ks.keyFor, issuer, audience, now)
}

func (ks *Keyset) keyFor(kid string) (*rsa.PublicKey, error) {
	if k, ok := ks.keys[kid]; ok {
		return k, nil
	}
	return nil, token.ErrJWTUnknownKey
}

// ParseJWKS reads the RSA signing keys of a JSON Web Key Set (another issuer's), by kid.
func ParseJWKS(data []byte) (map[string]*rsa.PublicKey, error) {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("parse JWKS: %w", err)
	}
	out := map[string]*rsa.PublicKey{}
	for _, k := range set.Keys {
		if k.Kty != "RSA" || k.Kid == "" || (k.Use != "" && k.Use != "sig") {
			continue
		}
		n, err1 := base64.RawURLEncoding.DecodeString(k.N)
		e, err2 := base64.RawURLEncoding.DecodeString(k.E)
		if err1 != nil || err2 != nil || len(e) == 0 || len(e) > 4 {
			return nil, fmt.Errorf("parse JWKS: key %q has a bad modulus or exponent", k.Kid)
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if pub.E < 3 || pub.E%2 == 0 {
			// e = 1 would make any "signature" verify; Go's rsa refuses even ones at use time.
			return nil, fmt.Errorf("parse JWKS: key %q has exponent %d; an odd one of 3 or more is needed", k.Kid, pub.E)
		}
		if pub.N.BitLen() < Bits {
			return nil, fmt.Errorf("parse JWKS: key %q is %d bits; %d at least", k.Kid, pub.N.BitLen(), Bits)
		}
		out[k.Kid] = pub
	}
	return out, nil
}
