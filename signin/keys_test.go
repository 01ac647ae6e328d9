package signin

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"testing"

	"github.com/rill-authd/rill-authd/internal/testenv"
)

// TestKeysUnavailable: when the provider's signing keys cannot be fetched (the provider, or
// its key server, went down after discovery), the ID token is not called forged: the refusal
// is a 502 that says the provider could not be reached, as the README promises of a provider
// that is down, not a 401 "its signature does not verify".
func TestKeysUnavailable(t *testing.T) {
	op := testenv.StartOIDCProvider(t)
	s := discoveredOne(t, op)
	if ps := s.Providers(); len(ps) != 1 || !ps[0].Available {
		t.Fatalf("provider not discovered: %+v", ps)
	}
	op.Stop()
	enc := base64.RawURLEncoding.EncodeToString
	raw := enc([]byte(`{"alg":"RS256","kid":"k1"}`)) + "." + enc([]byte(`{"iss":"`+op.Issuer+`","aud":"c","exp":4102444800}`)) + "." + enc([]byte("signature"))
	_, err := s.VerifyIDToken(context.Background(), "test", raw, "n")
	var ref *Refusal
	if !errors.As(err, &ref) || ref.Status != http.StatusBadGateway || ref.Reason != "keys_unavailable" {
		t.Fatalf("verify with the provider's keys unreachable: %v (%+v), want a 502 keys_unavailable", err, ref)
	}
}
