package daemon_test

import (
	"crypto/hmac"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/adminapi/client"
	"github.com/rill-authd/rill-authd/internal/testenv"
	"github.com/rill-authd/rill-authd/notify"
)

// hookReceiver is a webhook receiver on 127.0.0.1 that checks each post as a receiver should
// (signature over timestamp "." body, a fresh timestamp) and answers with the next of codes.
type hookReceiver struct {
	t      *testing.T
	secret []byte
	mu     sync.Mutex
	codes  []int
	tried  []notify.Event
	bodies []string
	ok     []notify.Event
	url    string
}

func startHookReceiver(t *testing.T, secret []byte) *hookReceiver {
	r := &hookReceiver{t: t, secret: secret}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		ts, err := strconv.ParseInt(req.Header.Get(notify.TimestampHeader), 10, 64)
		if err != nil || time.Since(time.Unix(ts, 0)).Abs() > 5*time.Minute {
			r.t.Errorf("timestamp %q", req.Header.Get(notify.TimestampHeader))
			http.Error(w, "stale", http.StatusBadRequest)
			return
		}
		if !hmac.Equal([]byte(req.Header.Get(notify.SignatureHeader)), []byte(notify.Sign(r.secret, ts, body))) {
			r.t.Errorf("bad signature on %s", body)
			http.Error(w, "signature", http.StatusUnauthorized)
			return
		}
		var e notify.Event
		if err := json.Unmarshal(body, &e); err != nil {
			r.t.Errorf("post %s: %v", body, err)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.tried = append(r.tried, e)
		r.bodies = append(r.bodies, string(body))
		code := 200
		if len(r.codes) > 0 {
			code, r.codes = r.codes[0], r.codes[1:]
		}
		if code == 200 {
			r.ok = append(r.ok, e)
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL + "/hook"
	return r
}

// delivered counts the posts of type typ about token id answered 200, and all tried.
func (r *hookReceiver) delivered(typ, id string) (ok, tried int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.ok {
		if e.Type == typ && e.TokenID == id {
			ok++
		}
	}
	for _, e := range r.tried {
		if e.Type == typ && e.TokenID == id {
			tried++
		}
	}
	return ok, tried
}

func (r *hookReceiver) failNext(codes ...int) {
	r.mu.Lock()
	r.codes = append(r.codes, codes...)
	r.mu.Unlock()
}

// TestWebhookOnReplicas: two replicas on one PostgreSQL database, one webhook. A leaked token
// and a token about to expire are each posted once, signed, though both replicas deliver and
// every start scans for expiring tokens; an event pending when every replica stops is
// delivered by the next one to start.
func TestWebhookOnReplicas(t *testing.T) {
	secret := []byte("0123456789abcdef-webhook-secret")
	file := filepath.Join(t.TempDir(), "webhook-secret")
	if err := os.WriteFile(file, append(secret, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	recv := startHookReceiver(t, secret)
	g := startGitHubKeys(t)
	db, _ := testenv.PostgresDB(t, "")
	args := []string{"--store", db, "--github-secret-scanning-keys-url", g.url,
		"--webhook-url", recv.url, "--webhook-secret-file", file, "--webhook-allow-private"}
	a := testenv.Spawn(t, "", args...)
	a.WaitStarted(t)
	b := testenv.Spawn(t, "", args...)
	b.WaitStarted(t)
	ca := client.New(a.URL(), a.Token)

	leaked := acmeService(t, ca, "ci")
	if code, body := g.report(t, b, nil, leaked.Token); code != 200 || !strings.Contains(body, `"true_positive"`) {
		t.Fatalf("report: %d %s", code, body)
	}
	if within(20*time.Second, func() bool { ok, _ := recv.delivered(notify.TokenLeaked, leaked.ID); return ok > 0 }) < 0 {
		t.Fatal("no token.leaked post within 20s")
	}

	// A token that expires within --expiry-warning (168h): a replica's start scans for it.
	exp, err := ca.IssueToken(t.Context(), apiv1.TokenRequest{DisplayName: "soon", TTLMinutes: 60})
	if err != nil {
		t.Fatal(err)
	}
	recv.failNext(503) // its first attempt fails: it waits in the outbox
	c := testenv.Spawn(t, "", args...)
	c.WaitStarted(t)
	if within(20*time.Second, func() bool { _, tried := recv.delivered(notify.TokenExpiring, exp.ID); return tried > 0 }) < 0 {
		t.Fatal("no token.expiring attempt within 20s")
	}
	for _, d := range []*testenv.Daemon{a, b, c} {
		d.Stop(t)
	}
	if ok, _ := recv.delivered(notify.TokenExpiring, exp.ID); ok != 0 {
		t.Fatalf("delivered %d though the receiver refused it", ok)
	}
	// Every replica is down with the event pending; the next to start delivers it (after the
	// retry's backoff), and its own start's scan adds no second one.
	d := testenv.Spawn(t, "", args...)
	d.WaitStarted(t)
	if within(40*time.Second, func() bool { ok, _ := recv.delivered(notify.TokenExpiring, exp.ID); return ok > 0 }) < 0 {
		t.Fatal("the pending token.expiring was not delivered after the restart")
	}
	e := testenv.Spawn(t, "", args...)
	e.WaitStarted(t)
	time.Sleep(7 * time.Second) // more than a delivery interval (5s) of both replicas
	if ok, _ := recv.delivered(notify.TokenLeaked, leaked.ID); ok != 1 {
		t.Errorf("token.leaked delivered %d times, want 1", ok)
	}
	if ok, tried := recv.delivered(notify.TokenExpiring, exp.ID); ok != 1 || tried != 2 {
		t.Errorf("token.expiring delivered %d times in %d posts, want 1 in 2", ok, tried)
	}
	recv.mu.Lock()
	for _, b := range recv.bodies {
		for _, secret := range []string{leaked.Token, exp.Token} {
			if strings.Contains(b, secret) || strings.Contains(b, secret[len(secret)-20:]) {
				t.Errorf("a token's secret in a webhook post: %s", b)
			}
		}
	}
	ids := map[string]bool{}
	for _, ev := range recv.tried {
		if ev.TokenID == exp.ID {
			ids[ev.ID] = true
		}
	}
	recv.mu.Unlock()
	if len(ids) != 1 {
		t.Errorf("the retry of token.expiring carried another id: %v", ids)
	}
}

// TestWebhookFlagsChecked: a mistake in the notification flags stops the daemon at start, before
// a store is made, with one line that names the flag; a secret in the URL's query is not shown.
func TestWebhookFlagsChecked(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short")
	good := filepath.Join(dir, "good")
	if err := os.WriteFile(short, []byte("tooshort\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(good, []byte("0123456789abcdef0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--webhook-url", "https://hooks.example.com/x"}, "--webhook-url needs --webhook-secret-file"},
		{[]string{"--webhook-secret-file", good}, "--webhook-secret-file without --webhook-url"},
		{[]string{"--webhook-url", "https://hooks.example.com/x", "--webhook-secret-file", short}, "at least 16"},
		{[]string{"--webhook-url", "https://hooks.example.com/x", "--webhook-secret-file", filepath.Join(dir, "none")}, "--webhook-secret-file"},
		{[]string{"--webhook-url", "ftp://hooks.example.com/x?key=hunter2", "--webhook-secret-file", good}, "want http or https"},
		{[]string{"--webhook-url", "http://169.254.169.254/latest?key=hunter2", "--webhook-secret-file", good}, "refused"},
		{[]string{"--webhook-url", "http://127.0.0.1:9/x", "--webhook-secret-file", good}, "--webhook-allow-private"},
	} {
		data := filepath.Join(t.TempDir(), "data")
		cmd := exec.Command(testenv.Bin(t, "rill-authd"), append([]string{"--data-dir", data, "--grpc-addr", "127.0.0.1:0",
			"--http-addr", "127.0.0.1:0"}, c.args...)...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) || strings.Contains(string(out), "hunter2") {
			t.Errorf("%v: %v, %q; want an error saying %q", c.args, err, out, c.want)
		}
		if _, err := os.Stat(data); !os.IsNotExist(err) {
			t.Errorf("%v: the data directory was made (%v)", c.args, err)
		}
	}
}

// TestWebhookRefusedNetwork: a token bound to a network and used from elsewhere is refused, and
// the refusal reaches the webhook as a token.refused_network event, written by the resolver's
// background writer (here at shutdown's flush, as every minute otherwise) and delivered by the
// next start, once, however many checks were refused.
func TestWebhookRefusedNetwork(t *testing.T) {
	secret := []byte("0123456789abcdef-webhook-secret")
	file := filepath.Join(t.TempDir(), "webhook-secret")
	if err := os.WriteFile(file, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	recv := startHookReceiver(t, secret)
	dir := t.TempDir()
	args := []string{"--webhook-url", recv.url, "--webhook-secret-file", file, "--webhook-allow-private"}
	a := testenv.Spawn(t, dir, args...)
	a.WaitStarted(t)
	ca := client.New(a.URL(), a.Token)
	bound, err := ca.IssueToken(t.Context(), apiv1.TokenRequest{DisplayName: "office only", AllowedNetworks: []string{"10.0.0.0/8"}})
	if err != nil {
		t.Fatal(err)
	}
	free, err := ca.IssueToken(t.Context(), apiv1.TokenRequest{DisplayName: "anywhere"})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if code, body, err := tryCheck(a, bound.Token); err != nil || code != http.StatusForbidden || !strings.Contains(body, "network") {
			t.Fatalf("check from 127.0.0.1 with a token bound to 10.0.0.0/8: %d %s %v", code, body, err)
		}
	}
	tryCheck(a, free.Token) // refused or not for its permissions, never for its network
	a.Stop(t)
	b := testenv.Spawn(t, dir, args...)
	b.WaitStarted(t)
	if within(20*time.Second, func() bool { ok, _ := recv.delivered(notify.TokenRefusedNetwork, bound.ID); return ok > 0 }) < 0 {
		t.Fatal("no token.refused_network post within 20s of the restart")
	}
	time.Sleep(6 * time.Second) // more than a delivery interval (5s)
	if ok, _ := recv.delivered(notify.TokenRefusedNetwork, bound.ID); ok != 1 {
		t.Errorf("token.refused_network delivered %d times for three refused checks, want 1", ok)
	}
	if _, tried := recv.delivered(notify.TokenRefusedNetwork, free.ID); tried != 0 {
		t.Errorf("a token bound to no network was reported refused")
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	for _, e := range recv.ok {
		if e.TokenID == bound.ID && !strings.Contains(e.Detail, "127.0.0.1") {
			t.Errorf("the event does not say where the token was used from: %+v", e)
		}
	}
	for _, body := range recv.bodies {
		if strings.Contains(body, bound.Token) {
			t.Errorf("a token's secret in a webhook post: %s", body)
		}
	}
}
