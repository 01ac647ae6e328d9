package client_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"

	"github.com/rill-authd/rill-authd/adminapi/client"
)

// TestTokenNotSentToAnotherServer: rillctl's token goes only to the server it is for. A
// redirect to another server (here another port of the same host: net/http keeps the
// Authorization header on those, and on another scheme) or a device code posted on with a 307
// is not followed.
func TestTokenNotSentToAnotherServer(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path+" auth="+r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"kind":"user","subject":"x@acme.io"}`))
	}))
	defer other.Close()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/whoami":
			http.Redirect(w, r, other.URL+"/v1/whoami", http.StatusTemporaryRedirect)
		case "/auth/oauth/token":
			http.Redirect(w, r, other.URL+"/auth/oauth/token", http.StatusPermanentRedirect)
		}
	}))
	defer api.Close()
	c := client.New(api.URL, "rill_usr_secret")
	if _, err := c.Whoami(context.Background()); err == nil {
		t.Error("whoami followed a redirect to another server")
	}
	if _, err := c.DeviceToken(context.Background(), api.URL+"/auth/oauth/token", "the-device-code"); err == nil {
		t.Error("the token poll followed a redirect to another server")
	}
	mu.Lock()
	if len(seen) > 0 {
		t.Errorf("the other server was sent: %q", seen)
	}
	mu.Unlock()
	if a, b := mustURL(t, api.URL), mustURL(t, other.URL); a.Hostname() != b.Hostname() {
		t.Fatalf("the two servers are not on one host: %s %s", api.URL, other.URL)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
