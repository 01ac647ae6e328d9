package postgres

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/rill-authd/rill-authd/store"
)

func newAEAD(key []byte) (cipher.AEAD, error) {
	switch len(key) {
	case 16, 24, 32:
	default:
		return nil, fmt.Errorf("encryption key: want 16, 24 or 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("encryption key: %w", err)
	}
	return cipher.NewGCM(block)
}

// seal encrypts a private key as nonce || ciphertext, bound to its kid so a ciphertext copied
// onto another key's row does not decrypt.
func (s *DB) seal(kid string, plain []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return s.aead.Seal(nonce, nonce, plain, []byte(kid)), nil
}

var errWrongKey = errors.New("cannot decrypt: wrong encryption key, or none given")

func (s *DB) open1(kid string, sealed []byte, encrypted bool) ([]byte, error) {
	if !encrypted {
		return sealed, nil // written before an encryption key was configured
	}
	if s.aead == nil || len(sealed) < s.aead.NonceSize() {
		return nil, fmt.Errorf("signing key %s: %w", kid, errWrongKey)
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(kid))
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", kid, errWrongKey)
	}
	return plain, nil
}

// checkEncryption refuses to open with a key that does not decrypt the stored signing keys
// (or with none when they are encrypted), as the embedded engine refuses a wrong key.
func (s *DB) checkEncryption(ctx context.Context) error {
	var (
		kid    string
		sealed []byte
	)
	err := s.pool.QueryRow(ctx, "SELECT kid, private_key FROM signing_keys WHERE encrypted LIMIT 1").Scan(&kid, &sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read signing keys: %w", err)
	}
	_, err = s.open1(kid, sealed, true)
	return err
}

func (s *DB) PutSigningKey(ctx context.Context, k store.SigningKey) error {
	priv, encrypted := k.PrivateKey, false
	if s.aead != nil {
		var err error
		if priv, err = s.seal(k.KID, k.PrivateKey); err != nil {
			return fmt.Errorf("put signing key: encrypt: %w", err)
		}
		encrypted = true
	}
	meta := k
	meta.PrivateKey = nil
	doc, err := json.Marshal(meta)
	if err != nil {
		return fmt.Errorf("put signing key: encode: %w", err)
	}
	err = s.write(ctx, func(w *wtx) error {
		_, err := w.Exec(ctx, `INSERT INTO signing_keys (kid, private_key, encrypted, created_at, doc) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (kid) DO UPDATE SET private_key = excluded.private_key, encrypted = excluded.encrypted,
				created_at = excluded.created_at, doc = excluded.doc`,
			k.KID, priv, encrypted, nanos(k.CreatedAt), doc)
		if err != nil {
			return err
		}
		w.change(store.ChangeKey, store.OpPut, k.KID)
		return nil
	})
	if err != nil {
		return fmt.Errorf("put signing key: %w", err)
	}
	return nil
}

// ListSigningKeys returns every signing key, oldest first, decrypted.
func (s *DB) ListSigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	if err := s.closedErr(); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, "SELECT kid, private_key, encrypted, doc FROM signing_keys ORDER BY created_at, kid COLLATE \"C\"")
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", unavail(err))
	}
	var (
		out       []store.SigningKey
		kid       string
		priv, doc []byte
		encrypted bool
	)
	_, err = pgx.ForEachRow(rows, []any{&kid, &priv, &encrypted, &doc}, func() error {
		var k store.SigningKey
		if err := json.Unmarshal(doc, &k); err != nil {
			return fmt.Errorf("signing key %s: %w", kid, err)
		}
		p, err := s.open1(kid, priv, encrypted)
		if err != nil {
			return err
		}
		k.KID, k.PrivateKey = kid, p
		out = append(out, k)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", unavail(err))
	}
	return out, nil
}
