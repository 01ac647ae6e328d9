package token

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// JWT errors a caller can report. None contains the token.
var (
	ErrJWTMalformed  = errors.New("malformed JWT")
	ErrJWTAlg        = errors.New("JWT algorithm not accepted (only RS256)")
	ErrJWTUnknownKey = errors.New("JWT signed by an unknown key")
	ErrJWTSignature  = errors.New("JWT signature is invalid")
	ErrJWTExpired    = errors.New("JWT expired")
	ErrJWTNotYet     = errors.New("JWT not valid yet")
	ErrJWTIssuer     = errors.New("JWT issuer not trusted")
	ErrJWTAudience   = errors.New("JWT audience is wrong")
)

// Leeway is the clock skew tolerated on exp, nbf and iat.
const Leeway = 30 * time.Second

// Key is an RS256 signing key. Retired keys no longer sign but still verify.
type Key struct {
	KID       string
	Private   *rsa.PrivateKey
	CreatedAt time.Time
	RetiredAt time.Time // zero while it is the signing key
}

// GenerateKey makes a new RSA-2048 key; its kid is derived from the public key.
func GenerateKey(now time.Time) (Key, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return Key{}, fmt.Errorf("generate signing key: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return Key{}, fmt.Errorf("generate signing key: %w", err)
	}
	sum := sha256.Sum256(der)
	return Key{KID: base64.RawURLEncoding.EncodeToString(sum[:12]), Private: k, CreatedAt: now.UTC()}, nil
}

// MarshalKey and UnmarshalKey convert a private key to and from PKCS#8 DER for storage.
func MarshalKey(k *rsa.PrivateKey) ([]byte, error) { return x509.MarshalPKCS8PrivateKey(k) }

// UnmarshalKey parses a PKCS#8 DER RSA private key.
func UnmarshalKey(der []byte) (*rsa.PrivateKey, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse signing key: %w", err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("signing key is a %T, not RSA", k)
	}
	return rk, nil
}

// Claims are the claims of the JWTs rill-authd mints for end users (ephemeral credentials).
type Claims struct {
	jwt.RegisteredClaims
	Org         string         `json:"org,omitempty"`
	Project     string         `json:"project,omitempty"`
	Attr        map[string]any `json:"attr,omitempty"`
	Permissions []string       `json:"permissions,omitempty"`
	// IssuedBy is the principal that asked for the token ("service:<id>" or "user:<id>"): the
	// token stops working when that principal is deleted or loses its access.
	IssuedBy string `json:"rill_issued_by,omitempty"`
}

// Keyset signs with its newest unretired key and verifies with any of its keys.
type Keyset struct {
	signer *Key
	keys   map[string]*rsa.PublicKey
	jwks   []byte
}

// NewKeyset builds a keyset from keys (any order).
func NewKeyset(keys []Key) *Keyset {
	ks := &Keyset{keys: map[string]*rsa.PublicKey{}}
	sorted := append([]Key(nil), keys...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].CreatedAt.Before(sorted[j].CreatedAt) })
	type jwk struct {
		Kty string `json:"kty"`
		Use string `json:"use"`
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		N   string `json:"n"`
		E   string `json:"e"`
	}
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

// Sign mints an RS256 JWT of c with the signing key.
func (ks *Keyset) Sign(c any) (string, error) {
	if ks.signer == nil {
		return "", errors.New("no signing key")
	}
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, c.(jwt.Claims))
	t.Header["kid"] = ks.signer.KID
	s, err := t.SignedString(ks.signer.Private)
	if err != nil {
		return "", fmt.Errorf("sign JWT: %w", err)
	}
	return s, nil
}

// PublicKey returns the public key of kid.
func (ks *Keyset) PublicKey(kid string) (*rsa.PublicKey, bool) {
	k, ok := ks.keys[kid]
	return k, ok
}

// Sign mints an RS256 JWT of c under kid, signed with key.
func Sign(c jwt.Claims, kid string, key *rsa.PrivateKey) (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
	t.Header["kid"] = kid
	s, err := t.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("sign JWT: %w", err)
	}
	return s, nil
}

// Verify checks a JWT in our Claims layout with the key keyFor returns for its kid.
func Verify(raw string, keyFor func(kid string) (*rsa.PublicKey, error), issuer, audience string, now time.Time) (*Claims, error) {
	var c Claims
	if err := VerifyRS256(raw, &c, keyFor, issuer, audience, now); err != nil {
		return nil, err
	}
	return &c, nil
}

// VerifyRS256 parses raw, checks its RS256 signature with keyFor(kid), its time claims (with
// Leeway), issuer and audience, and decodes it into claims.
func VerifyRS256(raw string, claims jwt.Claims, keyFor func(kid string) (*rsa.PublicKey, error), issuer, audience string, now time.Time) error {
	if err := checkAlg(raw); err != nil {
		return err
	}
	p := jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}), jwt.WithLeeway(Leeway), jwt.WithIssuer(issuer),
		jwt.WithAudience(audience), jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithTimeFunc(func() time.Time { return now }))
	_, err := p.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, fmt.Errorf("%w: no kid", ErrJWTUnknownKey)
		}
		return keyFor(kid)
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrJWTUnknownKey):
		return ErrJWTUnknownKey
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return ErrJWTSignature
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return ErrJWTAlg
	case errors.Is(err, jwt.ErrTokenExpired):
		return ErrJWTExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return ErrJWTNotYet
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return ErrJWTIssuer
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return ErrJWTAudience
	}
	return ErrJWTMalformed
}

// checkAlg refuses anything but RS256 before any key is looked at, so alg "none" and HMAC keyed
// with a public key get a reason of their own.
func checkAlg(raw string) error {
	i := 0
	for i < len(raw) && raw[i] != '.' {
		i++
	}
	if i == len(raw) || i > 1024 {
		return ErrJWTMalformed
	}
	hdr, err := base64.RawURLEncoding.DecodeString(raw[:i])
	if err != nil {
		return ErrJWTMalformed
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(hdr, &h) != nil {
		return ErrJWTMalformed
	}
	if h.Alg != "RS256" {
		return ErrJWTAlg
	}
	return nil
}

// Verify checks a JWT minted by this keyset.
func (ks *Keyset) Verify(raw string, issuer, audience string, now time.Time) (*Claims, error) {
	var c Claims
	err := VerifyRS256(raw, &c, func(kid string) (*rsa.PublicKey, error) {
		if k, ok := ks.keys[kid]; ok {
			return k, nil
		}
		return nil, ErrJWTUnknownKey
	}, issuer, audience, now)
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// ParseJWKS reads the RSA signing keys of a JSON Web Key Set, by kid.
func ParseJWKS(data []byte) (map[string]*rsa.PublicKey, error) {
	var set struct {
		Keys []struct {
			Kty, Kid, Use, N, E string
		} `json:"keys"`
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
		if pub.N.BitLen() < 2048 {
			return nil, fmt.Errorf("parse JWKS: key %q is %d bits; 2048 at least", k.Kid, pub.N.BitLen())
		}
		out[k.Kid] = pub
	}
	return out, nil
}

// UnverifiedIssuer reads the iss claim of a compact JWT without verifying anything, to choose
// the keys that will verify it.
func UnverifiedIssuer(raw string) (string, error) {
	parts := strings.SplitN(raw, ".", 3)
	if len(parts) != 3 || len(parts[1]) > 64<<10 {
		return "", ErrJWTMalformed
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", ErrJWTMalformed
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if json.Unmarshal(b, &c) != nil {
		return "", ErrJWTMalformed
	}
	return c.Iss, nil
}
