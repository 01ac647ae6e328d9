package console_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/rill-authd/rill-authd/token"
)

// TestMyTokenNetworks: My tokens issues a token bound to networks, shows them, changes and
// clears them; a bad CIDR is shown next to its field and issues nothing.
func TestMyTokenNetworks(t *testing.T) {
	e := setup(t, false)
	b := e.browser(t)
	b.signIn(e.tokens["admin"])
	before := tokenCount(t, e, "u-admin")
	r := b.post("/ui/tokens", url.Values{"display_name": {"office"}, "ttl_minutes": {"60"}, "allowed_networks": {"10.1.2.3/8, 2001:db8::/32"}})
	if r.code != http.StatusSeeOther {
		t.Fatalf("issue: %d %s", r.code, r.body)
	}
	page := b.get(r.h.Get("Location"))
	if !strings.Contains(page.body, "10.0.0.0/8 2001:db8::/32") {
		t.Errorf("the page does not show the token's networks:\n%s", page.body)
	}
	toks, err := e.st.ListTokens(context.Background(), "u-admin")
	if err != nil {
		t.Fatal(err)
	}
	var id string
	for _, tk := range toks {
		if tk.DisplayName == "office" {
			id = tk.ID.String()
			if !slices.Equal(tk.AllowedNetworks, []string{"10.0.0.0/8", "2001:db8::/32"}) {
				t.Errorf("stored networks %q", tk.AllowedNetworks)
			}
		}
	}
	if id == "" {
		t.Fatal("no token issued")
	}
	r = b.post("/ui/tokens", url.Values{"display_name": {"bad"}, "ttl_minutes": {"60"}, "allowed_networks": {"10.0.0.300/8"}})
	if page := b.get(r.h.Get("Location")); !strings.Contains(page.body, `id="allowed_networks-err"`) || !strings.Contains(page.body, "is not a CIDR") {
		t.Errorf("a bad network is not shown next to its field:\n%s", page.body)
	}
	if n := tokenCount(t, e, "u-admin"); n != before+1 {
		t.Errorf("%d tokens after a refused issue, want %d", n, before+1)
	}
	for _, tc := range []struct{ in, notice string }{{"192.0.2.0/24", "192.0.2.0/24 only"}, {"", "any network"}} {
		r = b.post("/ui/tokens/networks", url.Values{"id": {id}, "allowed_networks": {tc.in}})
		if page := b.get(r.h.Get("Location")); !strings.Contains(page.body, tc.notice) {
			t.Errorf("edit to %q: the page says\n%s", tc.in, page.body)
		}
	}
	tid, err := token.ParseID(id)
	if err != nil {
		t.Fatal(err)
	}
	if tk, err := e.st.GetToken(context.Background(), tid); err != nil || tk.AllowedNetworks != nil {
		t.Errorf("after clearing: %q, %v", tk.AllowedNetworks, err)
	}
}
