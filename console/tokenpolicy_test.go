package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/store"
)

// TestTokenPolicyInConsole: with acme's token policy set, Token hygiene lists the service token
// that never expires with a finding naming the limit (and its own filter), and issuing a service
// token in the console beyond the policy is refused with the API's words, within it issued.
func TestTokenPolicyInConsole(t *testing.T) {
	e := setup(t, false)
	ctx := context.Background()
	if _, err := e.st.SetTokenPolicy(ctx, "acme", store.TokenPolicy{MaxServiceTokenTTLMinutes: 60}); err != nil {
		t.Fatal(err)
	}
	a := e.browser(t)
	a.signIn(e.tokens["admin"])
	const finding = "beyond the token policy: never expires; org acme allows 1 hour"
	for _, path := range []string{"/ui/hygiene?org=acme", "/ui/hygiene?org=acme&show=beyond"} {
		if r := a.get(path); r.code != 200 || !strings.Contains(r.body, finding) || !strings.Contains(r.body, "beyond the org's token policy") {
			t.Errorf("%s: %d, lacks the finding %q:\n%s", path, r.code, finding, r.body)
		}
	}
	if r := a.get("/ui/hygiene?org=acme&show=expiring"); strings.Contains(r.body, finding) {
		t.Error("the expiring filter shows a token only beyond the policy")
	}
	a.get("/ui/services/etl?org=acme")
	for _, tc := range []struct{ ttl, want string }{
		{"0", "the token policy of org acme: service tokens must expire within 1 hour (60 minutes)"},
		{"1440", "service tokens may live at most 1 hour (60 minutes), not 1 day"},
		{"60", "rill_svc_"},
	} {
		r := a.post("/ui/services/etl/tokens", url.Values{"org": {"acme"}, "ttl_minutes": {tc.ttl}})
		if r.code != http.StatusSeeOther {
			t.Fatalf("issue with ttl %s: %d %s", tc.ttl, r.code, r.body)
		}
		if page := a.get(r.h.Get("Location")); !strings.Contains(page.body, tc.want) {
			t.Errorf("issue with ttl %s: the page lacks %q", tc.ttl, tc.want)
		}
	}
	s, err := e.st.GetServiceByName(ctx, "acme", "etl")
	if err != nil {
		t.Fatal(err)
	}
	toks, _ := e.st.ListTokens(ctx, s.ID)
	n := 0
	for _, tk := range toks {
		if !tk.ExpiresAt.IsZero() && tk.ExpiresAt.Sub(tk.CreatedAt) == time.Hour {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d tokens of an hour, want the one issued within the policy", n)
	}
}
