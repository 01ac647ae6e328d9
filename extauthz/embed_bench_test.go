package extauthz_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rill-authd/rill-authd/extauthz"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/resolver"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// BenchmarkCheckRestricted measures, in one run, what a member limited to some resources costs
// against the baselines: an allowed check by them against one by a plain service token, a check
// with token exchange by them (whose runtime JWT carries sec) against one by an unrestricted
// member, and the minting of a runtime JWT with their rules against one without; and the same
// for a public URL (a magic token, whose sec holds a row filter and fields): its check against a
// service token's, its exchange against an unrestricted member's. It prints the ratios (targets:
// within 1.1x).
func BenchmarkCheckRestricted(b *testing.B) {
	ctx := context.Background()
	f := newFixture(b, resolver.Options{Issuer: "https://authd.example", Audience: "rill"})
	if _, err := f.res.Keys().Ensure(ctx); err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	if err := f.st.CreateUser(ctx, store.User{ID: "u-rita", Email: "rita@acme.io", OrgRoles: map[string]policy.Role{"acme": policy.Guest},
		ProjectRoles: map[string]policy.Role{"acme/web": policy.Viewer}, CreatedAt: now, UpdatedAt: now,
		Restricted: map[string]store.Restricted{"acme/web": {Resources: []token.ResourceName{{Kind: token.KindExplore, Name: "sales"}, {Kind: token.KindCanvas, Name: "exec"}}}}}); err != nil {
		b.Fatal(err)
	}
	f.addToken(b, "rita", token.User, "u-rita", time.Time{})
	f.addMagic(b, "url", "web", time.Time{}) // a public URL with a resource, a row filter and fields
	plain := extauthz.New(f.res, extauthz.Config{})
	exch := extauthz.New(f.res, extauthz.Config{Exchange: &extauthz.Exchange{Issuer: "https://authd.example", Audience: "rill-runtime",
		InstanceID: "default", TTL: time.Hour, Keys: f.res.Keys().Keyset, Projects: f.st}})
	perOp := map[string]float64{}
	for _, c := range []struct {
		name string
		srv  *extauthz.Server
		who  string
	}{{"check/service-token", plain, "svc"}, {"check/restricted-member", plain, "rita"}, {"check/magic-token", plain, "url"},
		{"exchange/member", exch, "alice"}, {"exchange/restricted-member", exch, "rita"}, {"exchange/magic-token", exch, "url"}} {
		b.Run(c.name, func(b *testing.B) {
			req := envoyRequest("GET", "/v1/orgs/acme/projects/web/runtime/query", map[string]string{"authorization": "Bearer " + f.tokens[c.who]}, nil)
			if r := c.srv.Check(ctx, req); r.GetStatus().GetCode() != 0 {
				b.Fatalf("not allowed: %v", r.GetStatus())
			}
			b.ReportAllocs()
			for b.Loop() {
				c.srv.Check(ctx, req)
			}
			perOp[c.name] = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		})
	}
	ks, err := f.res.Keys().Keyset(ctx)
	if err != nil {
		b.Fatal(err)
	}
	rules := policy.RulesFromResources(true, []token.ResourceName{{Kind: token.KindExplore, Name: "sales"}, {Kind: token.KindCanvas, Name: "exec"}})
	for _, withSec := range []bool{false, true} {
		name := map[bool]string{false: "mint/no-sec", true: "mint/sec"}[withSec]
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				c := &token.Claims{RegisteredClaims: jwt.RegisteredClaims{Issuer: "https://authd.example", Subject: "u-rita",
					Audience: jwt.ClaimStrings{"rill-runtime"}, ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))},
					Instances: map[string][]int{"default": {0x15, 0x17, 0x19, 0x1B}}, Attr: map[string]any{"email": "rita@acme.io"}}
				if withSec {
					sec, err := token.EncodeSec(rules)
					if err != nil {
						b.Fatal(err)
					}
					c.Security = sec
				}
				if _, err := ks.Sign(c); err != nil {
					b.Fatal(err)
				}
			}
			perOp[name] = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		})
	}
	ratio := func(what, x, base string) {
		if perOp[x] > 0 && perOp[base] > 0 {
			fmt.Printf("%s: %.0f ns vs %.0f ns = %.2fx (target within 1.1x)\n", what, perOp[x], perOp[base], perOp[x]/perOp[base])
		}
	}
	ratio("check by a restricted member vs a service token", "check/restricted-member", "check/service-token")
	ratio("check by a magic token (public URL) vs a service token", "check/magic-token", "check/service-token")
	ratio("exchange with sec vs without", "exchange/restricted-member", "exchange/member")
	ratio("exchange by a magic token (row filter, fields) vs a member without sec", "exchange/magic-token", "exchange/member")
	ratio("minting a runtime JWT with sec vs without", "mint/sec", "mint/no-sec")
}
