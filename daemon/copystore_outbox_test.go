package daemon_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/adminapi/client"
	"github.com/rill-authd/rill-authd/internal/testenv"
	"github.com/rill-authd/rill-authd/notify"
)

// TestCopyStoreOutbox: the notification outbox moves with copy-store, both ways (Badger ->
// PostgreSQL -> Badger). A token.leaked event whose webhook post failed (the receiver answered
// 503) is pending when the daemon stops; the daemon on the copy delivers it, once. An expiry
// warning delivered before the copies is not delivered again, though every start's scan finds
// the same token expiring: the copied row's id refuses the repeat.
func TestCopyStoreOutbox(t *testing.T) {
	secret := []byte("0123456789abcdef-webhook-secret")
	file := filepath.Join(t.TempDir(), "webhook-secret")
	if err := os.WriteFile(file, append(secret, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	recv := startHookReceiver(t, secret)
	g := startGitHubKeys(t)
	args := []string{"--webhook-url", recv.url, "--webhook-secret-file", file, "--webhook-allow-private", "--github-secret-scanning-keys-url", g.url}
	db, _ := testenv.PostgresDB(t, "")
	dir := t.TempDir()
	ctx := t.Context()
	wait := func(what string, cond func() bool) {
		t.Helper()
		if within(40*time.Second, cond) < 0 {
			t.Fatalf("%s: not within 40s", what)
		}
	}
	// leakPending reports a new service token of d leaked; the post of its token.leaked event
	// fails, so the event waits in the outbox when d stops.
	leakPending := func(d *testenv.Daemon, c *client.Client, name string) string {
		t.Helper()
		leaked := acmeService(t, c, name)
		recv.failNext(503)
		if code, body := g.report(t, d, nil, leaked.Token); code != 200 || !strings.Contains(body, `"true_positive"`) {
			t.Fatalf("report: %d %s", code, body)
		}
		wait("a token.leaked attempt", func() bool { _, tried := recv.delivered(notify.TokenLeaked, leaked.ID); return tried > 0 })
		d.Stop(t)
		if ok, _ := recv.delivered(notify.TokenLeaked, leaked.ID); ok != 0 {
			t.Fatalf("token.leaked delivered %d times though the receiver refused it", ok)
		}
		return leaked.ID
	}
	// onCopy checks a daemon started on a copy: the pending event delivered once (after the
	// failed post: 2 posts), the expiry warning not again.
	var soon string
	onCopy := func(where, pending string) {
		t.Helper()
		wait(where+": the pending token.leaked delivered", func() bool { ok, _ := recv.delivered(notify.TokenLeaked, pending); return ok > 0 })
		time.Sleep(6 * time.Second) // more than a delivery interval (5s)
		if ok, tried := recv.delivered(notify.TokenLeaked, pending); ok != 1 || tried != 2 {
			t.Errorf("%s: token.leaked delivered %d times in %d posts, want once in 2", where, ok, tried)
		}
		if ok, tried := recv.delivered(notify.TokenExpiring, soon); ok != 1 || tried != 1 {
			t.Errorf("%s: the expiry warning delivered before the copy: %d deliveries in %d posts, want 1 in 1", where, ok, tried)
		}
	}

	// On Badger: a token expiring soon, warned of (delivered) by the next start's scan; then a
	// leak whose event is left pending.
	src := filepath.Join(dir, "badger")
	d := testenv.Start(t, src, args...)
	boot := d.Token
	tok, err := client.New(d.URL(), boot).IssueToken(ctx, apiv1.TokenRequest{DisplayName: "soon", TTLMinutes: 60})
	if err != nil {
		t.Fatal(err)
	}
	soon = tok.ID
	d.Stop(t)
	d = testenv.Start(t, src, args...)
	wait("the expiry warning delivered", func() bool { ok, _ := recv.delivered(notify.TokenExpiring, soon); return ok > 0 })
	first := leakPending(d, client.New(d.URL(), boot), "ci")

	// Badger -> PostgreSQL.
	out, err := copyStore(t, "--from", src, "--to", db)
	if err != nil || !strings.Contains(out, "4 notifications") { // two events, each a webhook row and an audit row
		t.Fatalf("copy-store to PostgreSQL: %v\n%s", err, out)
	}
	p := testenv.Start(t, "", append([]string{"--store", db}, args...)...)
	onCopy("on PostgreSQL", first)
	second := leakPending(p, client.New(p.URL(), boot), "etl")

	// PostgreSQL -> Badger.
	back := filepath.Join(dir, "back")
	if out, err := copyStore(t, "--from", db, "--to", back); err != nil {
		t.Fatalf("copy-store to Badger: %v\n%s", err, out)
	}
	b := testenv.Start(t, back, args...)
	onCopy("on Badger", second)
	if ok, tried := recv.delivered(notify.TokenLeaked, first); ok != 1 || tried != 2 {
		t.Errorf("on Badger: the leak delivered on PostgreSQL: %d deliveries in %d posts, want 1 in 2", ok, tried)
	}
	b.Stop(t)
}
