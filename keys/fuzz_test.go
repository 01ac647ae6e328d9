package keys

import (
	"strings"
	"testing"
	"time"
)

// FuzzParseJWKS feeds arbitrary documents, as a trusted issuer's JWKS endpoint could serve,
// to ParseJWKS: it must not panic, and every key it returns is an RSA key of Bits or more with a
// usable exponent.
func FuzzParseJWKS(f *testing.F) {
	k, err := Generate(time.Unix(1_700_000_000, 0))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(NewKeyset([]Key{k}).JWKS())
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"a","n":"AQAB","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"a","n":"","e":"AAAAAAAA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","kid":"b","crv":"P-256"}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"one","e":"AQ","n":"` + strings.Repeat("_", 344) + `"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ks, err := ParseJWKS(b)
		if err != nil {
			return
		}
		for kid, pub := range ks {
			if pub.N.BitLen() < Bits || pub.E < 3 || pub.E%2 == 0 {
				t.Fatalf("key %q accepted with %d bits, e=%d", kid, pub.N.BitLen(), pub.E)
			}
		}
	})
}
