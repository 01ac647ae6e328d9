package adminapi

import "testing"

// TestTokenLabelRoundTrip: a token's label in an audit Detail reads back to its prefix and
// name, whatever the name holds; text that is no label reads as none.
func TestTokenLabelRoundTrip(t *testing.T) {
	for _, tc := range []struct{ prefix, name string }{
		{"rill_usr_AbCdEfGhIj", "ci laptop"},
		{"rill_svc_0123456789", ""},
		{"rill_usr_AbCdEfGhIj", `quote " and \ backslash; via: ui`},
		{"rill_mgc_zzzzzzzzzz", "ünïcode …"},
	} {
		detail := TokenLabel(tc.prefix, tc.name) + "; via: ui"
		p, n, ok := ParseTokenLabel(detail)
		if !ok || p != tc.prefix || n != tc.name {
			t.Errorf("%q: read back %q %q %v", detail, p, n, ok)
		}
	}
	for _, d := range []string{"", "via: ui", "revoked by its holder (POST /v1/revoke, RFC 7009)", "token rill_usr_x", "token <script>…"} {
		if _, _, ok := ParseTokenLabel(d); ok {
			t.Errorf("%q read as a label", d)
		}
	}
}
