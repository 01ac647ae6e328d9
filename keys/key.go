// Package keys owns the RSA keys that sign rill-authd's JWTs: it makes them, ensures the first
// one exists, rotates and retires them, and serves the current signer, the verification keys by
// kid and the JWKS document from one cached snapshot of the store's keys. token/ mints and
// verifies given a key; which key, and for how long, is decided here.
package keys

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/rill-authd/rill-authd/store"
)

// Bits is the RSA modulus size: RS256 with 2048 bits is what the Rill runtime expects.
const Bits = 2048

// Key is an RS256 signing key and the times of its life (see store.SigningKey and Plan).
type Key struct {
	KID         string
	Private     *rsa.PrivateKey
	CreatedAt   time.Time
	ActivatesAt time.Time // zero: signs from CreatedAt
	SignedUntil time.Time // zero: until a later key activates
	RetiredAt   time.Time // zero: not retired
}

// Generate makes a new RSA-2048 key; its kid is derived from the public key, so it is the same
// on every replica that reads it.
func Generate(now time.Time) (Key, error) {
	k, err := rsa.GenerateKey(rand.Reader, Bits)
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

// Record is k as the store keeps it: the private key as PKCS#8 DER (the store encrypts it at
// rest when it has an encryption key).
func (k Key) Record() (store.SigningKey, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.Private)
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("encode signing key %s: %w", k.KID, err)
	}
	return store.SigningKey{KID: k.KID, PrivateKey: der, CreatedAt: k.CreatedAt, ActivatesAt: k.ActivatesAt,
		SignedUntil: k.SignedUntil, RetiredAt: k.RetiredAt}, nil
}

// FromRecord parses a stored key.
func FromRecord(rec store.SigningKey) (Key, error) {
	k, err := x509.ParsePKCS8PrivateKey(rec.PrivateKey)
	if err != nil {
		return Key{}, fmt.Errorf("parse signing key %s: %w", rec.KID, err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return Key{}, fmt.Errorf("signing key %s is a %T, not RSA", rec.KID, k)
	}
	return Key{KID: rec.KID, Private: rk, CreatedAt: rec.CreatedAt, ActivatesAt: rec.ActivatesAt,
		SignedUntil: rec.SignedUntil, RetiredAt: rec.RetiredAt}, nil
}
