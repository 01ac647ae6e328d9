package extauthz_test

import (
	"context"
	"crypto/rsa"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rill-authd/rill-authd/extauthz"
	"github.com/rill-authd/rill-authd/keys"
	"github.com/rill-authd/rill-authd/resolver"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

type runtimeClaims struct {
	jwt.RegisteredClaims
	Ins  map[string][]int `json:"ins"`
	Attr map[string]any   `json:"attr"`
}

// TestTokenExchange checks that an allowed request reaches the upstream with a runtime JWT
// an unmodified Rill runtime would accept, reused until close to expiry.
func TestTokenExchange(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, resolver.Options{Issuer: "https://authd.example", Audience: "rill"})
	if _, err := f.res.Keys().Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	// acme/imported runs on a runtime of its own (as imported from its Rill deployment).
	if err := f.st.CreateProject(ctx, store.Project{Org: "acme", Name: "imported", InstanceID: "inst-imported", RuntimeAudience: "https://rt.acme.example"}); err != nil {
		t.Fatal(err)
	}
	srv := extauthz.New(f.res, extauthz.Config{Now: clock, Exchange: &extauthz.Exchange{Issuer: "https://authd.example",
		Audience: "rill-runtime", InstanceID: "default", TTL: 5 * time.Minute, Keys: f.res.Keys().Keyset, Projects: f.st}})
	ks, _ := f.res.Keys().Keyset(ctx)

	project, audience := "web", "rill-runtime"
	check := func(name string, ext map[string]string, spoof map[string]string) (string, runtimeClaims, []string) {
		t.Helper()
		h := map[string]string{"authorization": "Bearer " + f.tokens[name]}
		for k, v := range spoof {
			h[k] = v
		}
		resp := srv.Check(ctx, envoyRequest("GET", "/v1/orgs/acme/projects/"+project+"/runtime/query", h, ext))
		ok := resp.GetOkResponse()
		if ok == nil {
			t.Fatalf("%s refused: %v", name, resp.GetStatus())
		}
		hdr := headerMap(ok.GetHeaders())
		if hdr["x-rill-subject"] == "" {
			t.Errorf("x-rill headers gone with the exchange: %v", hdr)
		}
		bearer := hdr["authorization"]
		var c runtimeClaims
		err := token.VerifyRS256(bearer[len("Bearer "):], &c, func(kid string) (*rsa.PublicKey, error) {
			k, ok := ks.PublicKey(kid)
			if !ok {
				return nil, token.ErrJWTUnknownKey
			}
			return k, nil
		}, "https://authd.example", audience, clock())
		if err != nil {
			t.Fatalf("runtime token does not verify against our JWKS: %v", err)
		}
		return bearer, c, ok.GetHeadersToRemove()
	}

	b1, c, _ := check("alice", nil, nil)
	// sub is the user's id, never a name; permissions as runtime_jwt.go grants a prod reader.
	if c.Subject != "u-alice" || !reflect.DeepEqual(c.Ins, map[string][]int{"default": {0x15, 0x17, 0x19, 0x1B}}) || c.Attr["email"] != "alice@example.com" {
		t.Errorf("viewer's runtime claims: %+v", c)
	}
	// iat and nbf a little in the past (the runtime allows no leeway), exp a full TTL ahead.
	if c.IssuedAt.After(clock().Add(-time.Second)) || !c.NotBefore.Equal(c.IssuedAt.Time) || c.ExpiresAt.Sub(clock()) < 5*time.Minute-time.Second {
		t.Errorf("runtime token times: iat %v nbf %v exp %v, now %v", c.IssuedAt, c.NotBefore, c.ExpiresAt, clock())
	}
	_, c, _ = check("bob", map[string]string{"instance_id": "inst-7"}, nil)
	// An org admin manages the project and prod: ReadResolvers, EditTrigger and ReadInstance too.
	if c.Subject != "u-bob" || !reflect.DeepEqual(c.Ins, map[string][]int{"inst-7": {0x15, 0x17, 0x19, 0x1B, 0x1A, 0x20, 0x11}}) {
		t.Errorf("project admin's runtime claims: %+v", c)
	}
	_, c, _ = check("svc", nil, nil)
	if c.Subject != "s-ci" || c.Attr["name"] != "ci" || !reflect.DeepEqual(c.Ins, map[string][]int{"default": {0x15, 0x17, 0x19, 0x1B}}) {
		t.Errorf("service's runtime claims: %+v", c)
	}
	// A project with a runtime of its own: its audience and instance.
	project, audience = "imported", "https://rt.acme.example"
	if _, c, _ = check("bob", nil, nil); !reflect.DeepEqual(c.Audience, jwt.ClaimStrings{"https://rt.acme.example"}) || c.Ins["inst-imported"] == nil {
		t.Errorf("imported project's runtime claims: %+v", c)
	}
	if _, c, _ = check("bob", map[string]string{"instance_id": "inst-7"}, nil); c.Ins["inst-7"] == nil {
		t.Errorf("the route's instance_id did not win: %+v", c.Ins)
	}
	project, audience = "web", "rill-runtime"
	// Reused while fresh (also when the response must remove spoofed headers)...
	b2, _, remove := check("alice", nil, map[string]string{"x-rill-evil": "1"})
	if b2 != b1 || len(remove) != 1 || remove[0] != "x-rill-evil" {
		t.Errorf("fresh token not reused (%v) or removals %v", b2 == b1, remove)
	}
	// ...and replaced once less than a fifth of its life is left.
	mu.Lock()
	now = now.Add(4*time.Minute + time.Second)
	mu.Unlock()
	if b3, _, _ := check("alice", nil, nil); b3 == b1 {
		t.Error("runtime token not renewed near expiry")
	}
}

// TestExchangeFollowsTheSigner: an exchanged runtime token is re-minted as soon as another key
// signs, even when no write tells the cache (a scheduled key's activation comes by the clock):
// it carries the signing key's kid, never one a later retire could take out of the JWKS while
// the token is still handed out.
func TestExchangeFollowsTheSigner(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, resolver.Options{Issuer: "https://authd.example", Audience: "rill"})
	if _, err := f.res.Keys().Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	srv := extauthz.New(f.res, extauthz.Config{Exchange: &extauthz.Exchange{Issuer: "https://authd.example",
		Audience: "rill-runtime", InstanceID: "default", TTL: 5 * time.Minute, Keys: f.res.Keys().Keyset, Projects: f.st}})
	kid := func() string {
		t.Helper()
		resp := srv.Check(ctx, envoyRequest("GET", "/v1/orgs/acme/projects/web/runtime/query", map[string]string{"authorization": "Bearer " + f.tokens["alice"]}, nil))
		ok := resp.GetOkResponse()
		if ok == nil {
			t.Fatalf("refused: %v", resp.GetStatus())
		}
		tok, _, err := jwt.NewParser().ParseUnverified(headerMap(ok.GetHeaders())["authorization"][len("Bearer "):], &runtimeClaims{})
		if err != nil {
			t.Fatal(err)
		}
		return tok.Header["kid"].(string)
	}
	first := kid()
	// A key that signs a moment from now, written as a scheduled rotation writes it.
	activates := time.Now().Add(time.Second)
	next, err := keys.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	next.ActivatesAt = activates
	rec, err := next.Record()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.st.PutSigningKey(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if got := kid(); got != first {
		t.Fatalf("before the activation the exchange signs with %s, want %s", got, first)
	}
	time.Sleep(time.Until(activates) + 50*time.Millisecond)
	if got := kid(); got != next.KID {
		t.Errorf("after the activation the exchange hands out a token of %s, want one of the signing key %s", got, next.KID)
	}
}

// BenchmarkCheckExchange is an allowed check with token exchange on and the runtime token
// reused (the common case): what the exchange adds to a cached decision.
func BenchmarkCheckExchange(b *testing.B) {
	ctx := context.Background()
	f := newFixture(b, resolver.Options{Issuer: "https://authd.example", Audience: "rill"})
	if _, err := f.res.Keys().Ensure(ctx); err != nil {
		b.Fatal(err)
	}
	srv := extauthz.New(f.res, extauthz.Config{Exchange: &extauthz.Exchange{Issuer: "https://authd.example",
		Audience: "rill-runtime", InstanceID: "default", TTL: 5 * time.Minute, Keys: f.res.Keys().Keyset, Projects: f.st}})
	req := envoyRequest("GET", "/v1/orgs/acme/projects/web/runtime/query", map[string]string{"authorization": "Bearer " + f.tokens["alice"]}, nil)
	if r := srv.Check(ctx, req); r.GetOkResponse() == nil {
		b.Fatalf("not allowed: %v", r.GetStatus())
	}
	b.ReportAllocs()
	for b.Loop() {
		srv.Check(ctx, req)
	}
}
