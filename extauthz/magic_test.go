package extauthz_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/rill-authd/rill-authd/extauthz"
	"github.com/rill-authd/rill-authd/resolver"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// addMagic issues a public URL (a magic token) of acme/project into f, under name.
func (f *fixture) addMagic(tb testing.TB, name, project string, expires time.Time) {
	tb.Helper()
	tok, err := token.New(token.Magic)
	if err != nil {
		tb.Fatal(err)
	}
	rec := store.Token{ID: tok.ID, Kind: token.Magic, OwnerID: store.MagicOwner("acme", project), DisplayName: name, Prefix: tok.Display(),
		Hash: tok.Hash(), CreatedAt: time.Now().UTC(), ExpiresAt: expires,
		Magic: &store.Magic{Org: "acme", Project: project, Resources: []token.ResourceName{{Kind: token.KindExplore, Name: "sales"}},
			Filters:    map[string]string{"sales_mv": `{"cond":{"op":"OPERATION_EQ","exprs":[{"ident":"country"},{"val":"DK"}]}}`},
			Fields:     []string{"country", "revenue"},
			Attributes: map[string]any{"email": "ed@acme.io", "admin": false}}}
	if err := f.st.CreateToken(context.Background(), rec); err != nil {
		tb.Fatal(err)
	}
	f.tokens[name], f.ids[name] = tok.Encode(), tok.ID
}

// TestMagicTokenAdversarial: a public URL's token opens read_project and read_prod on its one
// project; a mangled one is refused before any store read, and a revoked, expired or retyped one
// is a 401, another project or a permission it lacks a 403.
func TestMagicTokenAdversarial(t *testing.T) {
	f := newFixture(t, resolver.Options{})
	ctx := context.Background()
	f.addMagic(t, "url", "web", time.Time{})
	f.addMagic(t, "old", "web", time.Now().Add(-time.Minute))
	f.addMagic(t, "gone", "web", time.Time{})
	if err := f.st.DeleteToken(ctx, f.ids["gone"]); err != nil {
		t.Fatal(err)
	}
	good := f.tokens["url"]
	flip := func(s string, i int) string {
		b := []byte(s)
		b[i] = map[bool]byte{true: 'b', false: 'a'}[b[i] == 'a']
		return string(b)
	}
	// Rill's own form of the same id and secret is the same token (it was not imported so:
	// its hash matches, as an imported Rill link's does).
	parsed, err := token.Parse(good)
	if err != nil {
		t.Fatal(err)
	}
	rillForm := parsed
	rillForm.Rill = true
	// An unknown token of the right shape.
	stranger, _ := token.New(token.Magic)

	check := func(bearer, path string, ext map[string]string) (codes.Code, int, string) {
		t.Helper()
		r := f.srv.Check(ctx, envoyRequest("GET", path, map[string]string{"authorization": "Bearer " + bearer}, ext))
		return codes.Code(r.GetStatus().GetCode()), int(r.GetDeniedResponse().GetStatus().GetCode()), r.GetStatus().GetMessage()
	}
	web := "/v1/orgs/acme/projects/web/runtime/api/x"
	for _, c := range []struct {
		name, bearer, path string
		ext                map[string]string
		code               codes.Code
		status             int
		reason             string
	}{
		{"its project", good, web, nil, codes.OK, 0, ""},
		{"its project, Rill's form", rillForm.Encode(), web, nil, codes.OK, 0, ""},
		{"read_project", good, web, map[string]string{"permission": "read_project"}, codes.OK, 0, ""},
		{"wrong prefix", "rill-mgc_" + good[9:], web, nil, codes.Unauthenticated, 401, "not a rill token or JWT"},
		{"unknown type", "rill_mgk_" + good[9:], web, nil, codes.Unauthenticated, 401, token.ErrUnknownType.Error()},
		{"bad checksum", flip(good, len(good)-1), web, nil, codes.Unauthenticated, 401, token.ErrBadChecksum.Error()},
		{"typo in payload", flip(good, 20), web, nil, codes.Unauthenticated, 401, token.ErrBadChecksum.Error()},
		{"too long", good + "a", web, nil, codes.Unauthenticated, 401, token.ErrBadLength.Error()},
		{"truncated", good[:len(good)-1], web, nil, codes.Unauthenticated, 401, token.ErrBadLength.Error()},
		{"retyped as a user token", "rill_usr_" + good[9:], web, nil, codes.Unauthenticated, 401, token.ErrBadChecksum.Error()},
		{"unknown", stranger.Encode(), web, nil, codes.Unauthenticated, 401, resolver.ErrUnknown.Error()},
		{"revoked", f.tokens["gone"], web, nil, codes.Unauthenticated, 401, resolver.ErrRevoked.Error()},
		{"expired", f.tokens["old"], web, nil, codes.Unauthenticated, 401, resolver.ErrExpired.Error()},
		{"another project", good, "/v1/orgs/acme/projects/data/runtime/api/x", nil, codes.PermissionDenied, 403, "no access to project acme/data"},
		{"another org", good, "/v1/orgs/other/projects/web/runtime/api/x", nil, codes.PermissionDenied, 403, "no access to project other/web"},
		// As Rill's OrganizationPermissionsForMagicAuthToken: read_org on its own org, a guest.
		{"its org", good, "/v1/orgs/acme/projects", map[string]string{"org": "acme", "permission": "read_org"}, codes.OK, 0, ""},
		{"its org's projects", good, "/v1/orgs/acme/projects", map[string]string{"org": "acme", "permission": "read_projects"}, codes.PermissionDenied, 403, ""},
		{"another org", good, "/v1/orgs/other/projects", map[string]string{"org": "other", "permission": "read_org"}, codes.PermissionDenied, 403, "no access to org other"},
		{"manage_prod", good, web, map[string]string{"permission": "manage_prod"}, codes.PermissionDenied, 403, "missing permission manage_prod on project acme/web"},
		{"read_dev", good, web, map[string]string{"permission": "read_dev"}, codes.PermissionDenied, 403, "missing permission read_dev on project acme/web"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, status, reason := check(c.bearer, c.path, c.ext)
			if code != c.code || status != c.status || (c.reason != "" && reason != c.reason) {
				t.Errorf("check: %v %d %q, want %v %d %q", code, status, reason, c.code, c.status, c.reason)
			}
			if strings.Contains(reason, "rill_mgc_") {
				t.Errorf("reason leaks the token: %q", reason)
			}
		})
	}

	// Revocation is immediate: the next check after the delete refuses it.
	if code, _, _ := check(good, web, nil); code != codes.OK {
		t.Fatalf("warm-up: %v", code)
	}
	if err := f.st.DeleteToken(ctx, f.ids["url"]); err != nil {
		t.Fatal(err)
	}
	if code, status, reason := check(good, web, nil); code != codes.Unauthenticated || status != 401 || reason != resolver.ErrRevoked.Error() {
		t.Errorf("after revoke: %v %d %q", code, status, reason)
	}
}

// TestMagicTokenHeaders: an allowed check by a public URL names it as such to the upstream.
func TestMagicTokenHeaders(t *testing.T) {
	f := newFixture(t, resolver.Options{})
	f.addMagic(t, "url", "web", time.Time{})
	r := f.srv.Check(context.Background(), envoyRequest("GET", "/v1/orgs/acme/projects/web/x", map[string]string{"authorization": "Bearer " + f.tokens["url"]}, nil))
	h := headerMap(r.GetOkResponse().GetHeaders())
	want := map[string]string{extauthz.HeaderKind: "magic", extauthz.HeaderProject: "web", extauthz.HeaderPermissions: "read_org,read_project,read_prod",
		extauthz.HeaderTokenID: f.ids["url"].String(), extauthz.HeaderOrgRole: "guest", extauthz.HeaderProjectRole: "viewer"}
	for k, v := range want {
		if h[k] != v {
			t.Errorf("%s = %q, want %q (all: %v)", k, h[k], v, fmt.Sprint(h))
		}
	}
}

// TestMagicTokenWithBrokenRules: a public URL whose stored rules cannot be built (an imported
// one whose filter Rill accepted and we cannot encode) is refused as that token, 401, not
// answered 503 "auth store unavailable" as if the daemon were down.
func TestMagicTokenWithBrokenRules(t *testing.T) {
	f := newFixture(t, resolver.Options{})
	ctx := context.Background()
	tok, err := token.New(token.Magic)
	if err != nil {
		t.Fatal(err)
	}
	rec := store.Token{ID: tok.ID, Kind: token.Magic, OwnerID: store.MagicOwner("acme", "web"), Prefix: tok.Display(),
		Hash: tok.Hash(), CreatedAt: time.Now().UTC(),
		Magic: &store.Magic{Org: "acme", Project: "web", Filters: map[string]string{"": `{"ident":"x"}`}}}
	if err := f.st.CreateToken(ctx, rec); err != nil {
		t.Fatal(err)
	}
	for range 2 { // and again: not a failure that goes away
		r := f.srv.Check(ctx, envoyRequest("GET", "/v1/orgs/acme/projects/web/runtime/api/x", map[string]string{"authorization": "Bearer " + tok.Encode()}, nil))
		if got := int(r.GetDeniedResponse().GetStatus().GetCode()); got != 401 || !strings.Contains(r.GetStatus().GetMessage(), "access rules are invalid") {
			t.Fatalf("check of a public URL with broken rules: %d %q, want 401", got, r.GetStatus().GetMessage())
		}
	}
}
