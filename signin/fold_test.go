package signin_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/rill-authd/rill-authd/internal/testenv"
	"github.com/rill-authd/rill-authd/signin"
)

// TestIDTokenEmailThatLowersToAnother: a provider's verified email that lower-casing turns into
// another address (U+0130 İ becomes i; IDNA makes it "i̇", another domain) is refused by the
// verification, before it could be the existing user or match a domain rule.
func TestIDTokenEmailThatLowersToAnother(t *testing.T) {
	const elsewhere = "http://127.0.0.1:1/cb" // never dialed: the redirect is read, not followed
	op := testenv.StartOIDCProvider(t,
		testenv.OPUser{Username: "eve", Password: password, Email: "root@acm\u0130.io", EmailVerified: true},
		testenv.OPUser{Username: "ana", Password: password, Email: "Ana@Acme.io", EmailVerified: true})
	op.AddClient(clientID, clientSecret, elsewhere)
	svc := discoveredService(t, op)
	ctx := context.Background()
	p, err := oidc.NewProvider(ctx, op.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	idToken := func(user, nonce string) string {
		conf := oauth2.Config{ClientID: clientID, ClientSecret: clientSecret, Endpoint: p.Endpoint(), RedirectURL: elsewhere, Scopes: []string{"openid", "email"}}
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		v := oauth2.GenerateVerifier()
		cb := op.Login(t, c, conf.AuthCodeURL("st", oidc.Nonce(nonce), oauth2.S256ChallengeOption(v)), user, password, elsewhere)
		u, _ := url.Parse(cb)
		tok, err := conf.Exchange(ctx, u.Query().Get("code"), oauth2.VerifierOption(v))
		if err != nil {
			t.Fatal(err)
		}
		return tok.Extra("id_token").(string)
	}
	// An ASCII address in capitals is lower-cased as before.
	if id, err := svc.VerifyIDToken(ctx, "test", idToken("ana", "n1"), "n1"); err != nil || id.Email != "ana@acme.io" {
		t.Fatalf("Ana@Acme.io: %+v, %v", id, err)
	}
	id, err := svc.VerifyIDToken(ctx, "test", idToken("eve", "n2"), "n2")
	var ref *signin.Refusal
	if !errors.As(err, &ref) || ref.Reason != "email_unusable" || ref.Status != http.StatusForbidden {
		t.Fatalf("root@acm\u0130.io: %+v, %v; want a 403 refusal email_unusable", id, err)
	}
	if want := `The email "root@acm\u0130.io" from test is not an address rill-authd can use: lower-cased, it would read as another one.`; ref.Msg != want {
		t.Errorf("message %q, want %q", ref.Msg, want)
	}
}
