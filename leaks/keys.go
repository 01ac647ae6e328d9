package leaks

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Errors of signature verification. Every one of them is a 401 to the sender: none says more
// than that the report was not signed by a key GitHub publishes.
var (
	ErrNoSignature  = errors.New("no Github-Public-Key-Identifier or Github-Public-Key-Signature header")
	ErrUnknownKey   = errors.New("the signing key is not among GitHub's published keys")
	ErrBadSignature = errors.New("the signature does not verify")
	// ErrKeysUnavailable is a failure to fetch GitHub's keys when none is known: the report
	// cannot be verified now (503: GitHub retries).
	ErrKeysUnavailable = errors.New("GitHub's secret scanning public keys cannot be fetched")
)

// maxKeysBody bounds the key document: GitHub's is a few kilobytes.
const maxKeysBody = 1 << 20

// keySet is GitHub's published secret scanning keys, fetched from a URL and cached. The keys
// come only from that URL, never from a request: a report names the key it was signed with
// (Github-Public-Key-Identifier) and is verified only if GitHub lists a key of that id.
//
// An id we do not know makes us refetch (GitHub rotates its keys and publishes a new one
// before it signs with it), but at most once per minRefetch: a flood of reports with made-up
// ids cannot make us hammer the URL (api.github.com allows 60 unauthenticated requests an
// hour). A set older than maxAge is refetched on the next report, so a key GitHub withdrew
// stops verifying; if that fetch fails the old set stays in use.
type keySet struct {
	url        string
	client     *http.Client
	log        *slog.Logger
	now        func() time.Time
	minRefetch time.Duration
	maxAge     time.Duration

	fetchMu sync.Mutex // one fetch at a time; held across the request

	mu        sync.RWMutex
	keys      map[string]*ecdsa.PublicKey
	fetched   time.Time // last successful fetch (or 304)
	attempted time.Time // last fetch attempt, successful or not
	etag      string
}

// publicKeys is the document GitHub serves at https://api.github.com/meta/public_keys/secret_scanning.
type publicKeys struct {
	PublicKeys []struct {
		KeyIdentifier string `json:"key_identifier"`
		Key           string `json:"key"`
		IsCurrent     bool   `json:"is_current"`
	} `json:"public_keys"`
}

// verify checks that sig (base64 of an ASN.1 DER ECDSA signature) is id's signature of the
// SHA-256 of body, ECDSA-NIST-P256V1-SHA256 as GitHub signs.
func (s *keySet) verify(ctx context.Context, id, sig string, body []byte) error {
	if id == "" || sig == "" {
		return ErrNoSignature
	}
	der, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || len(der) == 0 || len(der) > 256 {
		return ErrBadSignature
	}
	key, err := s.key(ctx, id)
	if err != nil {
		return err
	}
	digest := sha256.Sum256(body)
	if !ecdsa.VerifyASN1(key, digest[:], der) {
		return ErrBadSignature
	}
	return nil
}

// key returns the published key id, fetching the set when it is unknown or old, within the
// refetch rate.
func (s *keySet) key(ctx context.Context, id string) (*ecdsa.PublicKey, error) {
	if k, fresh := s.cached(id); k != nil && fresh {
		return k, nil
	}
	s.fetchMu.Lock()
	defer s.fetchMu.Unlock()
	// Another report may have fetched while this one waited.
	k, fresh := s.cached(id)
	if k != nil && fresh {
		return k, nil
	}
	s.mu.RLock()
	known, attempted := s.keys != nil, s.attempted
	s.mu.RUnlock()
	if !attempted.IsZero() && s.now().Sub(attempted) < s.minRefetch {
		// Not due yet, whether the last attempt failed or found no such key.
		switch {
		case k != nil:
			return k, nil // old, but still GitHub's as far as we know
		case !known:
			return nil, fmt.Errorf("%w (the last attempt failed less than %v ago)", ErrKeysUnavailable, s.minRefetch)
		}
		return nil, ErrUnknownKey
	}
	// Not cut short by the report's sender hanging up: the attempt counts against the rate.
	if err := s.fetch(context.WithoutCancel(ctx)); err != nil {
		switch {
		case k != nil:
			s.log.Warn("secret scanning: refetching GitHub's public keys failed; using the ones fetched before", "url", s.url, "err", err)
			return k, nil
		case !known:
			s.log.Error("secret scanning: cannot fetch GitHub's public keys", "url", s.url, "err", err)
			return nil, fmt.Errorf("%w: %v", ErrKeysUnavailable, err)
		}
		s.log.Warn("secret scanning: refetching GitHub's public keys for an unknown key id failed", "url", s.url, "err", err)
		return nil, ErrUnknownKey
	}
	if k, _ := s.cached(id); k != nil {
		return k, nil
	}
	return nil, ErrUnknownKey
}

// cached returns the cached key id (nil if unknown) and whether the set is younger than maxAge.
func (s *keySet) cached(id string) (*ecdsa.PublicKey, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.keys[id], s.keys != nil && s.now().Sub(s.fetched) < s.maxAge
}

// fetch reads the key document and replaces the set with it. It asks with the last ETag, so an
// unchanged document costs GitHub a 304.
func (s *keySet) fetch(ctx context.Context) error {
	s.mu.Lock()
	s.attempted = s.now()
	etag := s.etag
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", s.url, err)
	}
	req.Header.Set("Accept", "application/json")
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("fetch keys: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified && etag != "" {
		s.mu.Lock()
		s.fetched = s.now()
		s.mu.Unlock()
		return nil
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetch %s: %s", s.url, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxKeysBody+1))
	if err != nil {
		return fmt.Errorf("fetch %s: read: %w", s.url, err)
	}
	if len(b) > maxKeysBody {
		return fmt.Errorf("fetch %s: the document is over %d bytes", s.url, maxKeysBody)
	}
	keys, err := parseKeys(b)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", s.url, err)
	}
	s.mu.Lock()
	s.keys, s.fetched, s.etag = keys, s.now(), resp.Header.Get("ETag")
	s.mu.Unlock()
	s.log.Info("secret scanning: fetched GitHub's public keys", "url", s.url, "keys", len(keys))
	return nil
}

// parseKeys reads GitHub's key document: every key must be a PEM "PUBLIC KEY" (PKIX) of an
// ECDSA P-256 key. A document with a key we cannot read is refused whole rather than used in
// part, and so is one without keys.
func parseKeys(b []byte) (map[string]*ecdsa.PublicKey, error) {
	var doc publicKeys
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("not a public_keys document: %w", err)
	}
	if len(doc.PublicKeys) == 0 {
		return nil, errors.New("the document lists no public_keys")
	}
	keys := make(map[string]*ecdsa.PublicKey, len(doc.PublicKeys))
	for i, k := range doc.PublicKeys {
		if k.KeyIdentifier == "" {
			return nil, fmt.Errorf("public_keys[%d] has no key_identifier", i)
		}
		block, _ := pem.Decode([]byte(k.Key))
		if block == nil || block.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("key %s is not a PEM public key", k.KeyIdentifier)
		}
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", k.KeyIdentifier, err)
		}
		ec, ok := pub.(*ecdsa.PublicKey)
		if !ok || ec.Curve != elliptic.P256() {
			return nil, fmt.Errorf("key %s is not an ECDSA P-256 key", k.KeyIdentifier)
		}
		keys[k.KeyIdentifier] = ec
	}
	return keys, nil
}
