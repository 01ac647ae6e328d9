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
	"github.com/rill-authd/rill-authd/store/badger"
)

// TestIDTokenOfAnotherClient: a real ID token the provider issued to another client (another
// audience), with the right nonce, is refused by the verification a sign-in runs after the
// code exchange. (Through the callback, the provider already refuses the other client's code:
// TestSignInRefused.)
func TestIDTokenOfAnotherClient(t *testing.T) {
	op := testenv.StartOIDCProvider(t, testenv.OPUser{Username: "ana", Password: password, Email: "ana@acme.io", EmailVerified: true})
	const elsewhere = "http://127.0.0.1:1/cb" // never dialed: the redirect is read, not followed
	op.AddClient("other-client", "other-secret", elsewhere)
	op.AddClient(clientID, clientSecret, elsewhere)
	svc := discoveredService(t, op)

	idToken := func(id, secret, nonce string) string {
		ctx := context.Background()
		p, err := oidc.NewProvider(ctx, op.Issuer)
		if err != nil {
			t.Fatal(err)
		}
		conf := oauth2.Config{ClientID: id, ClientSecret: secret, Endpoint: p.Endpoint(), RedirectURL: elsewhere, Scopes: []string{"openid", "email"}}
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		v := oauth2.GenerateVerifier()
		cb := op.Login(t, c, conf.AuthCodeURL("st", oidc.Nonce(nonce), oauth2.S256ChallengeOption(v)), "ana", password, elsewhere)
		u, _ := url.Parse(cb)
		tok, err := conf.Exchange(ctx, u.Query().Get("code"), oauth2.VerifierOption(v))
		if err != nil {
			t.Fatal(err)
		}
		return tok.Extra("id_token").(string)
	}
	ctx := context.Background()
	if id, err := svc.VerifyIDToken(ctx, "test", idToken(clientID, clientSecret, "n1"), "n1"); err != nil || id.Email != "ana@acme.io" {
		t.Fatalf("our own client's token: %+v, %v", id, err)
	}
	for _, tc := range []struct {
		name, raw, nonce, reason string
	}{
		{"another audience", idToken("other-client", "other-secret", "n2"), "n2", "id_token_invalid"},
		{"another nonce", idToken(clientID, clientSecret, "n3"), "n4", "nonce_mismatch"},
		{"not a JWT", "e30.e30.e30", "n", "id_token_invalid"},
	} {
		_, err := svc.VerifyIDToken(ctx, "test", tc.raw, tc.nonce)
		var ref *signin.Refusal
		if !errors.As(err, &ref) || ref.Reason != tc.reason || ref.Status != http.StatusUnauthorized {
			t.Errorf("%s: %v, want a 401 refusal %s", tc.name, err, tc.reason)
		}
		if tc.name == "another audience" && ref != nil && ref.Msg != "The ID token from test was refused: it was issued to another client (aud)." {
			t.Errorf("%s: %q", tc.name, ref.Msg)
		}
	}
}

// discoveredService is a Service over an in-memory store with op as its one provider ("test",
// our client id, the secret from the environment), discovered.
func discoveredService(t *testing.T, op *testenv.OP) *signin.Service {
	t.Helper()
	st, err := badger.Open(badger.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	t.Setenv(signin.SecretEnv("test"), clientSecret)
	svc, err := signin.New(signin.Options{Store: st, CallbackBase: "http://127.0.0.1:1",
		Providers: []signin.ProviderConfig{{Name: "test", Issuer: op.Issuer, ClientID: clientID}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	svc.WaitDiscovered(10e9)
	return svc
}
