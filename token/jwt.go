package token

import (
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
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

// IssuedAtSkew is how far back iat and nbf of a minted JWT are set: the Rill runtime checks
// them with no leeway (golang-jwt v4), so a runtime whose clock is a little behind ours must
// still find them in the past.
const IssuedAtSkew = 5 * time.Second

// Claims are the claims of the JWTs rill-authd mints: the Rill runtime's layout (rilldata/rill
// runtime/server/auth/claims.go, jwtClaims: sys, ins, attr, sec), which the runtime reads, and ours (org, project, permissions, rill_issued_by), which it ignores and our
// check reads. Runtime tokens of the token exchange carry only the runtime's.
type Claims struct {
	jwt.RegisteredClaims
	// System and Instances are runtime permission numbers (policy.RuntimePerms): for the whole
	// runtime, and per runtime instance id.
	System    []int            `json:"sys,omitempty"`
	Instances map[string][]int `json:"ins,omitempty"`
	// Attr is what the runtime's security policies see as {{ .user }}.
	Attr map[string]any `json:"attr,omitempty"`
	// Security is the sec claim: rill.runtime.v1.SecurityRules in protojson (EncodeSec), absent
	// for a principal Rill would not restrict.
	Security    []json.RawMessage `json:"sec,omitempty"`
	Org         string            `json:"org,omitempty"`
	Project     string            `json:"project,omitempty"`
	Permissions []string          `json:"permissions,omitempty"`
	// IssuedBy is the principal that asked for the token ("service:<id>" or "user:<id>"): the
	// token stops working when that principal is deleted or loses its access.
	IssuedBy string `json:"rill_issued_by,omitempty"`
	// AllowedOrigins (canonical origins, store.NormalizeOrigins) are the only web origins whose
	// pages may present the token at our check (iframe and credentials requests with
	// allowed_origins): a claim of ours, which Rill's runtime ignores as it ignores every claim it
	// does not know.
	AllowedOrigins []string `json:"rill_allowed_origins,omitempty"`
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

// UnverifiedIssuer reads the iss claim of a compact JWT without verifying anything, to choose
// the keys that will verify it.
func UnverifiedIssuer(raw string) (string, error) {
	p, err := Unverified(raw)
	return p.Issuer, err
}

// Peeked is what Unverified reads of a JWT: trust none of it before verification.
type Peeked struct {
	Issuer, Org, Project string
}

// Unverified reads the iss, org and project claims of a compact JWT without verifying anything,
// to choose the keys and the audience that will verify it.
func Unverified(raw string) (Peeked, error) {
	parts := strings.SplitN(raw, ".", 3)
	if len(parts) != 3 || len(parts[1]) > 64<<10 {
		return Peeked{}, ErrJWTMalformed
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return Peeked{}, ErrJWTMalformed
	}
	var c struct {
		Iss     string `json:"iss"`
		Org     string `json:"org"`
		Project string `json:"project"`
	}
	if json.Unmarshal(b, &c) != nil {
		return Peeked{}, ErrJWTMalformed
	}
	return Peeked{Issuer: c.Iss, Org: c.Org, Project: c.Project}, nil
}
