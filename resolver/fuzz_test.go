package resolver_test

import (
	"strings"
	"testing"

	"github.com/rill-authd/rill-authd/resolver"
)

// FuzzBearerFromHeader feeds arbitrary Authorization values to the bearer parser: it must not
// panic, and what it accepts is a non-empty credential with no surrounding space, taken from
// after a case-insensitive "Bearer " scheme.
func FuzzBearerFromHeader(f *testing.F) {
	for _, s := range []string{"Bearer rill_usr_abc", "bearer  x ", "Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "", " \t",
		"BEARER eyJ.e30.sig", "Bearerx", "Bearer a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tok, err := resolver.BearerFromHeader(h)
		if err != nil {
			if tok != "" {
				t.Fatalf("BearerFromHeader(%q) refused (%v) but returned %q", h, err, tok)
			}
			return
		}
		if tok == "" || tok != strings.TrimSpace(tok) {
			t.Fatalf("BearerFromHeader(%q) = %q", h, tok)
		}
		if trimmed := strings.TrimSpace(h); !strings.EqualFold(trimmed[:7], "bearer ") || !strings.HasSuffix(trimmed, tok) {
			t.Fatalf("BearerFromHeader(%q) = %q, not the part after the scheme", h, tok)
		}
	})
}
