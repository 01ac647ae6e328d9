package store_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rill-authd/rill-authd/store"
)

func TestCleanIP(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"10.0.0.1", "10.0.0.1"},
		{"10.0.0.1:443", "10.0.0.1"},
		{"::ffff:10.0.0.1", "10.0.0.1"},
		{"[2001:DB8::1]:8443", "2001:db8::1"},
		{"[2001:db8::1]", "2001:db8::1"},
		{"fe80::1%eth0", "fe80::1"},
		{"", ""},
		{"localhost", ""},
		{"10.0.0.256", ""},
		{"/run/envoy.sock", ""},
		{"10.0.0.1\x00", ""},
	} {
		if got := store.CleanIP(tc.in); got != tc.want {
			t.Errorf("CleanIP(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCleanUserAgent(t *testing.T) {
	long := strings.Repeat("a", 300)
	for _, tc := range []struct{ name, in, want string }{
		{"plain", "curl/8.5.0", "curl/8.5.0"},
		{"spaces trimmed", "  curl/8  ", "curl/8"},
		{"unicode kept", "app ✓ 1.0", "app ✓ 1.0"},
		{"NUL", "a\x00b", "a\uFFFDb"},
		{"escape sequence", "\x1b[2Jx", "\uFFFD[2Jx"},
		{"newline", "a\r\nb", "a\uFFFD\uFFFDb"},
		{"not UTF-8", "a\xffb", "a\uFFFDb"},
		{"C1", "a\u0085b", "a\uFFFDb"},
		{"bidi override", "a\u202eb\u2066c", "a\uFFFDb\uFFFDc"},
		{"long ASCII", long, strings.Repeat("a", store.MaxUserAgent-3) + "…"},
		{"exactly the bound", long[:store.MaxUserAgent], long[:store.MaxUserAgent]},
		{"long multibyte cut at a boundary", "x" + strings.Repeat("é", 200), "x" + strings.Repeat("é", 126) + "…"},
	} {
		got := store.CleanUserAgent(tc.in)
		if got != tc.want {
			t.Errorf("%s: CleanUserAgent(%q) = %q, want %q", tc.name, tc.in, got, tc.want)
		}
		if len(got) > store.MaxUserAgent || !utf8.ValidString(got) || store.CheckText("ua", got) != nil {
			t.Errorf("%s: %q breaks the bound or the text rule", tc.name, got)
		}
	}
}

// FuzzCleanUserAgent: whatever a client sends, what is kept is bounded, UTF-8 and storable.
func FuzzCleanUserAgent(f *testing.F) {
	for _, s := range []string{"curl/8", "a\x00\xff\u202e", strings.Repeat("é", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := store.CleanUserAgent(s)
		if len(got) > store.MaxUserAgent || store.CheckText("ua", got) != nil {
			t.Fatalf("CleanUserAgent(%q) = %q", s, got)
		}
		for _, r := range got {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("CleanUserAgent(%q) kept control %U", s, r)
			}
		}
	})
}
