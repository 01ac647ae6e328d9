package extauthz_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rill-authd/rill-authd/extauthz"
	"github.com/rill-authd/rill-authd/resolver"
)

// TestStaleStoreFailsClosed: while Config.Stale says the store may be behind, every check that
// would read it is a 503 with the reason given, in both modes, and costs no allocation; once it
// is current again checks are answered as before.
func TestStaleStoreFailsClosed(t *testing.T) {
	f := newFixture(t, resolver.Options{})
	var stale atomic.Bool
	const why = "this replica cannot confirm it is current"
	srv := extauthz.New(f.res, extauthz.Config{Stale: func() (string, bool) { return why, stale.Load() }})
	ctx := context.Background()
	req := envoyRequest("GET", "/v1/orgs/acme/projects/web/runtime/query", map[string]string{"authorization": "Bearer " + f.tokens["alice"]}, nil)
	if r := srv.Check(ctx, req); r.GetStatus().GetCode() != 0 {
		t.Fatalf("not allowed: %v", r.GetStatus())
	}
	if n := testing.AllocsPerRun(1000, func() { srv.Check(ctx, req) }); n != 0 {
		t.Fatalf("an allowed check with a Stale hook allocates %v times", n)
	}

	stale.Store(true)
	r := srv.Check(ctx, req)
	if r.GetStatus().GetCode() != 14 || r.GetDeniedResponse().GetStatus().GetCode() != 503 || !strings.Contains(r.GetStatus().GetMessage(), why) {
		t.Fatalf("stale: %v %v", r.GetStatus(), r.GetDeniedResponse().GetStatus())
	}
	if n := testing.AllocsPerRun(1000, func() { srv.Check(ctx, req) }); n != 0 {
		t.Fatalf("a stale check allocates %v times", n)
	}
	hr := httptest.NewRequest("GET", extauthz.HTTPPrefix+"/v1/orgs/acme/projects/web/runtime/query", nil)
	hr.Header.Set("Authorization", "Bearer "+f.tokens["alice"])
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, hr)
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), why) {
		t.Fatalf("HTTP mode, stale: %d %s", w.Code, w.Body)
	}
	// No credential needs no store: still a 401.
	none := envoyRequest("GET", "/v1/orgs/acme/projects/web/x", nil, nil)
	if r := srv.Check(ctx, none); r.GetDeniedResponse().GetStatus().GetCode() != 401 {
		t.Fatalf("no credential while stale: %v", r.GetDeniedResponse().GetStatus())
	}

	stale.Store(false)
	if r := srv.Check(ctx, req); r.GetStatus().GetCode() != 0 {
		t.Fatalf("current again, not allowed: %v", r.GetStatus())
	}
}
