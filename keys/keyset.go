package keys

import (
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rill-authd/rill-authd/token"
)

// Keyset is an immutable set of keys: it signs with its newest unretired key and verifies with
// any of them. Its JWKS is encoded once, as it is served on every fetch.
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

// NewKeyset builds a keyset from keys (any order).
func NewKeyset(keys []Key) *Keyset {
	ks := &Keyset{keys: map[string]*rsa.PublicKey{}}
	sorted := append([]Key(nil), keys...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].CreatedAt.Before(sorted[j].CreatedAt) })
	set := struct {
		Keys []jwk `json:"keys"`
	}{Keys: []jwk{}}
	for i := range sorted {
		k := &sorted[i]
		ks.keys[k.KID] = &k.Private.PublicKey
		if k.RetiredAt.IsZero() {
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
