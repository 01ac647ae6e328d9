package signin_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestSignInWithoutJavaScript is the whole flow with a plain HTTP client: the daemon's start,
// the provider's login form, the callback's landing page, then the console as ana.
func TestSignInWithoutJavaScript(t *testing.T) {
	e := start(t, "")
	a := e.agent(t)
	cb := a.login(a.authorizeURL("test"), "ana")
	p := a.get(cb)
	if p.status != http.StatusOK || !strings.Contains(p.body, "Signed in with test as ana@acme.io") || !strings.Contains(p.body, `href="/ui/tokens"`) {
		t.Fatalf("callback: %d:\n%s", p.status, p.body)
	}
	if !a.signedIn() {
		t.Fatal("no session cookie after the callback")
	}
	if p := a.get(e.d.URL() + "/ui/tokens"); p.status != http.StatusOK || !strings.Contains(p.body, "ana@acme.io") {
		t.Fatalf("console after sign-in: %d:\n%s", p.status, p.body)
	}
}

// TestSignInRefused: every way a sign-in can be wrong is a clear page with its status, opens
// no session, and leaves no code, state or secret in the log.
func TestSignInRefused(t *testing.T) {
	e := start(t, "")
	e.op.AddClient("other-client", "other-secret", e.d.URL()+"/ui/oidc/test/callback")
	var secrets []string // what must never reach the log
	for _, tc := range []struct {
		name   string
		run    func(a *agent) page
		status int
		want   string
	}{
		{"forged state", func(a *agent) page {
			cb := a.login(a.authorizeURL("test"), "ana")
			u, _ := url.Parse(cb)
			q := u.Query()
			secrets = append(secrets, q.Get("code"), q.Get("state"))
			q.Set("state", "forged-"+q.Get("state"))
			u.RawQuery = q.Encode()
			return a.get(u.String())
		}, http.StatusBadRequest, "its state differs"},
		{"callback without a sign-in in progress (another browser's answer)", func(a *agent) page {
			cb := a.login(a.authorizeURL("test"), "ana")
			return a.e.agent(a.t).get(cb)
		}, http.StatusBadRequest, "No sign-in with test was in progress"},
		{"replayed callback URL", func(a *agent) page {
			cb := a.login(a.authorizeURL("test"), "ana")
			if p := a.get(cb); p.status != http.StatusOK {
				a.t.Fatalf("first use: %d:\n%s", p.status, p.body)
			}
			a.jar.SetCookies(mustURL(a.e.d.URL()+"/ui/"), []*http.Cookie{{Name: "rill_console", Value: "", MaxAge: -1}})
			return a.get(cb)
		}, http.StatusBadRequest, "No sign-in with test was in progress"},
		{"replayed callback URL with a copy of the flow cookie", func(a *agent) page {
			au := a.authorizeURL("test")
			saved := a.jar.Cookies(mustURL(a.e.d.URL() + "/ui/oidc/test/callback"))
			cb := a.login(au, "ana")
			if p := a.get(cb); p.status != http.StatusOK {
				a.t.Fatalf("first use: %d:\n%s", p.status, p.body)
			}
			a.jar.SetCookies(mustURL(a.e.d.URL()+"/ui/"), []*http.Cookie{{Name: "rill_console", Value: "", MaxAge: -1}})
			a.jar.SetCookies(mustURL(a.e.d.URL()+"/ui/oidc/test/callback"), saved)
			return a.get(cb)
		}, http.StatusBadRequest, "already used"},
		{"wrong nonce", func(a *agent) page {
			u, _ := url.Parse(a.authorizeURL("test"))
			q := u.Query()
			q.Set("nonce", "a-nonce-of-another-sign-in")
			u.RawQuery = q.Encode()
			return a.get(a.login(u.String(), "ana"))
		}, http.StatusUnauthorized, "nonce differs"},
		{"code of another client", func(a *agent) page {
			u, _ := url.Parse(a.authorizeURL("test"))
			q := u.Query()
			q.Set("client_id", "other-client")
			u.RawQuery = q.Encode()
			return a.get(a.login(u.String(), "ana"))
		}, http.StatusBadRequest, "refused the authorization code"},
		{"unverified email", func(a *agent) page { return a.get(a.login(a.authorizeURL("test"), "unverified")) },
			http.StatusForbidden, "is not verified"},
		{"email outside allowed_domains", func(a *agent) page { return a.get(a.login(a.authorizeURL("test"), "outsider")) },
			http.StatusForbidden, "only addresses at acme.io may"},
		{"not a user here", func(a *agent) page { return a.get(a.login(a.authorizeURL("test"), "stranger")) },
			http.StatusForbidden, "is not a user here"},
		{"unknown provider (start)", func(a *agent) page { return a.get(a.e.d.URL() + "/ui/oidc/nope/start") },
			http.StatusNotFound, `no identity provider named &#34;nope&#34;`},
		{"unknown provider (callback)", func(a *agent) page { return a.get(a.e.d.URL() + "/ui/oidc/nope/callback?code=x&state=y") },
			http.StatusNotFound, `no identity provider named &#34;nope&#34;`},
		{"provider's error", func(a *agent) page {
			u, _ := url.Parse(a.authorizeURL("test"))
			return a.get(a.e.d.URL() + "/ui/oidc/test/callback?" + url.Values{"error": {"access_denied"},
				"error_description": {"<b>the user said no</b>"}, "state": {u.Query().Get("state")}}.Encode())
		}, http.StatusForbidden, "did not sign you in (&#34;access_denied&#34;: &#34;&lt;b&gt;the user said no&lt;/b&gt;&#34;)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := e.agent(t)
			p := tc.run(a)
			if p.status != tc.status || !strings.Contains(p.body, tc.want) {
				t.Fatalf("%d, want %d with %q:\n%s", p.status, tc.status, tc.want, p.body)
			}
			if !strings.Contains(p.body, "<h1>Sign-in refused</h1>") && tc.status != http.StatusNotFound {
				t.Errorf("not the refusal page:\n%s", p.body)
			}
			if a.signedIn() {
				t.Error("a refused sign-in left a session cookie")
			}
		})
	}
	toks, err := e.admin.ListTokens(context.Background(), "ana@acme.io")
	if err != nil {
		t.Fatal(err)
	}
	if len(toks) != 2 { // the two replay cases' first, good, uses
		t.Errorf("ana holds %d tokens, want the 2 of the successful first uses: %+v", len(toks), toks)
	}
	log := e.d.Stderr()
	for _, s := range append(secrets, e.secret) {
		if s != "" && strings.Contains(log, s) {
			t.Errorf("the log holds a secret (%.6s…)", s)
		}
	}
	for _, reason := range []string{"state_mismatch", "state_replayed", "no_flow", "nonce_mismatch", "code_refused", "email_unverified", "domain_not_allowed", "not_admitted", "unknown_provider"} {
		if !strings.Contains(log, "reason="+reason) {
			t.Errorf("no refusal logged with reason=%s", reason)
		}
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
