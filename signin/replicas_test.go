package signin_test

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/adminapi/client"
	"github.com/rill-authd/rill-authd/internal/testenv"
)

// TestSignInAcrossReplicas: two replicas on one PostgreSQL database behind one --public-url
// (as behind a load balancer): a sign-in started on one is finished on the other (the flow
// cookie is sealed with a key every replica derives from the client secret), and the session
// opens there. The same callback replayed on the first replica, with a copy of the cookie, is
// refused: that replica never saw the state used, but the provider refuses the code's second
// use.
func TestSignInAcrossReplicas(t *testing.T) {
	dbURL, _ := testenv.PostgresDB(t, "")
	op := testenv.StartOIDCProvider(t, testenv.OPUser{Username: "ana", Password: password, Email: "ana@acme.io", EmailVerified: true})
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte("oidc_providers:\n  - {name: test, issuer: "+op.Issuer+", client_id: "+clientID+"}\n"), 0o600)
	t.Setenv("RILL_AUTHD_OIDC_TEST_CLIENT_SECRET", clientSecret)
	portA := testenv.FreeLoopbackPort(t)
	public := "http://127.0.0.1:" + strconv.Itoa(portA)
	spawn := func(httpAddr string) *testenv.Daemon {
		return testenv.SpawnArgs(t, "", "--store", dbURL, "--config", cfg, "--public-url", public,
			"--grpc-addr", "127.0.0.1:0", "--http-addr", httpAddr)
	}
	a := spawn("127.0.0.1:" + strconv.Itoa(portA))
	a.WaitStarted(t)
	b := spawn("127.0.0.1:0")
	b.WaitStarted(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log("replica a:\n" + a.Stderr() + "\nreplica b:\n" + b.Stderr())
		}
	})
	tok := a.Token // the replica that bootstrapped printed it
	if tok == "" {
		tok = b.Token
	}
	admin := client.New(a.URL(), tok)
	ctx := context.Background()
	if _, err := admin.CreateUser(ctx, apiv1.UserRequest{Email: "ana@acme.io"}); err != nil {
		t.Fatal(err)
	}
	op.AddClient(clientID, clientSecret, public+"/ui/oidc/test/callback")

	e := &env{d: a, op: op}
	ag := e.agent(t)
	au := ag.authorizeURL("test")
	saved := ag.jar.Cookies(mustURL(a.URL() + "/ui/oidc/test/callback"))
	cb := ag.login(au, "ana")
	onB := strings.Replace(cb, a.URL(), b.URL(), 1)
	if p := ag.get(onB); p.status != http.StatusOK || !strings.Contains(p.body, "Signed in with test as ana@acme.io") {
		t.Fatalf("callback on replica b: %d:\n%s", p.status, p.body)
	}
	if p := ag.get(b.URL() + "/ui/tokens"); p.status != http.StatusOK || !strings.Contains(p.body, "ana@acme.io") {
		t.Fatalf("replica b's console after the sign-in: %d:\n%s", p.status, p.body)
	}
	if !b.WaitFor("console: signed in", time.Second) || strings.Contains(a.Stderr(), "console: signed in") {
		t.Fatal("the sign-in was not finished on replica b alone")
	}

	replay := e.agent(t)
	replay.jar.SetCookies(mustURL(a.URL()+"/ui/oidc/test/callback"), saved)
	u, _ := url.Parse(cb)
	if p := replay.get(u.String()); p.status != http.StatusBadRequest || !strings.Contains(p.body, "refused the authorization code") || replay.signedIn() {
		t.Fatalf("the callback replayed on replica a: %d:\n%s", p.status, p.body)
	}
}
