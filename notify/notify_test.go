package notify_test

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/notify"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/store/badger"
)

var secret = []byte("receiver-shared-secret")

func openStore(t *testing.T) *badger.DB {
	t.Helper()
	s, err := badger.Open(badger.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// clock is a time tests move by hand, so a retry's backoff passes at once.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// receiver is a webhook receiver on 127.0.0.1 that verifies what a receiver should: the
// signature over timestamp "." body with the shared secret, and a fresh timestamp. It answers
// each post with the next of codes (200 once they run out).
type receiver struct {
	t     *testing.T
	now   func() time.Time
	mu    sync.Mutex
	codes []int
	got   []notify.Event // every post that verified, whatever the answer
	ok    []notify.Event // the posts answered 2xx
	conns atomic.Int32
	srv   *httptest.Server
}

func newReceiver(t *testing.T, now func() time.Time, codes ...int) *receiver {
	r := &receiver{t: t, now: now, codes: codes}
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	r.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			r.conns.Add(1)
		}
	}
	r.srv.Start()
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	ts, err := strconv.ParseInt(req.Header.Get(notify.TimestampHeader), 10, 64)
	if err != nil {
		r.t.Errorf("timestamp %q: %v", req.Header.Get(notify.TimestampHeader), err)
		http.Error(w, "timestamp", http.StatusBadRequest)
		return
	}
	if age := r.now().Unix() - ts; age < -1 || age > 300 {
		r.t.Errorf("timestamp %d is %ds from now", ts, age)
	}
	if !hmac.Equal([]byte(req.Header.Get(notify.SignatureHeader)), []byte(notify.Sign(secret, ts, body))) {
		r.t.Errorf("bad signature %q", req.Header.Get(notify.SignatureHeader))
		http.Error(w, "signature", http.StatusUnauthorized)
		return
	}
	if strings.Contains(string(body), "rill_") {
		r.t.Errorf("a token secret in the body: %s", body)
	}
	var e notify.Event
	if err := json.Unmarshal(body, &e); err != nil {
		r.t.Errorf("body %s: %v", body, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, e)
	code := 200
	if len(r.codes) > 0 {
		code, r.codes = r.codes[0], r.codes[1:]
	}
	if code/100 == 2 {
		r.ok = append(r.ok, e)
	}
	w.WriteHeader(code)
}

func (r *receiver) posts() (got, ok []notify.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]notify.Event(nil), r.got...), append([]notify.Event(nil), r.ok...)
}

func newNotifier(t *testing.T, st notify.Store, c *clock, o notify.Options, urls ...string) *notify.Notifier {
	t.Helper()
	for _, u := range urls {
		w, err := notify.NewWebhook(u, notify.WebhookOptions{Secret: secret, AllowPrivate: true, Now: c.Now})
		if err != nil {
			t.Fatal(err)
		}
		o.Webhooks = append(o.Webhooks, w)
	}
	o.Now = c.Now
	return notify.New(st, o)
}

func leakEvent(id string) notify.Event {
	return notify.Event{ID: id, Type: notify.TokenLeaked, TokenID: "tok123", TokenKind: "user", OwnerID: "u1",
		Target: "user:a@b.c token:tok123", URL: "https://github.com/x/y/blob/main/.env"}
}

func TestWebhookSignedDelivery(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	c := &clock{t: time.Now()}
	r := newReceiver(t, c.Now)
	n := newNotifier(t, st, c, notify.Options{}, r.srv.URL+"/hook")
	if added, err := n.Publish(ctx, leakEvent("ev-1")); err != nil || !added {
		t.Fatalf("publish: %v, %v", added, err)
	}
	// Publishing the same event again (another replica, a second report) adds nothing.
	if added, err := n.Publish(ctx, leakEvent("ev-1")); err != nil || added {
		t.Fatalf("publish again: %v, %v; want nothing added", added, err)
	}
	got, err := n.DeliverDue(ctx)
	if err != nil || got != 2 {
		t.Fatalf("deliver: %d, %v; want the webhook and the audit log", got, err)
	}
	_, ok := r.posts()
	if len(ok) != 1 || ok[0].ID != "ev-1" || ok[0].TokenID != "tok123" || ok[0].Type != notify.TokenLeaked {
		t.Fatalf("received %+v", ok)
	}
	if got, _ := n.DeliverDue(ctx); got != 0 {
		t.Fatalf("delivered %d again", got)
	}
	audit, err := st.ListAudit(ctx, store.AuditFilter{Actor: notify.Actor})
	if err != nil || len(audit) != 1 || audit[0].Action != "notify.token.leaked" || audit[0].Target != "user:a@b.c token:tok123" {
		t.Fatalf("audit sink: %+v, %v", audit, err)
	}
}

func TestWebhookRetry(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	c := &clock{t: time.Now()}
	r := newReceiver(t, c.Now, 500, 200)
	n := newNotifier(t, st, c, notify.Options{Backoff: time.Minute}, r.srv.URL)
	if _, err := n.Publish(ctx, leakEvent("ev-retry")); err != nil {
		t.Fatal(err)
	}
	if _, err := n.DeliverDue(ctx); err != nil {
		t.Fatal(err)
	}
	if got, ok := r.posts(); len(got) != 1 || len(ok) != 0 {
		t.Fatalf("first attempt: %d posts, %d ok; want 1 answered 500", len(got), len(ok))
	}
	// Not due again before the backoff.
	c.Add(30 * time.Second)
	if _, err := n.DeliverDue(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.posts(); len(got) != 1 {
		t.Fatalf("retried before the backoff: %d posts", len(got))
	}
	c.Add(31 * time.Second)
	if _, err := n.DeliverDue(ctx); err != nil {
		t.Fatal(err)
	}
	c.Add(time.Hour)
	if _, err := n.DeliverDue(ctx); err != nil {
		t.Fatal(err)
	}
	got, ok := r.posts()
	if len(got) != 2 || len(ok) != 1 {
		t.Fatalf("%d posts, %d delivered; want 2 posts, one delivery", len(got), len(ok))
	}
	if got[0].ID != "ev-retry" || got[1].ID != got[0].ID {
		t.Fatalf("ids %q, %q: a retry must carry the same id", got[0].ID, got[1].ID)
	}
}

func TestDropAfterLimit(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	c := &clock{t: time.Now()}
	r := newReceiver(t, c.Now, 500, 503, 500, 500, 500)
	n := newNotifier(t, st, c, notify.Options{MaxAttempts: 3, Backoff: time.Second}, r.srv.URL+"/hook?key=query-secret")
	if _, err := n.Publish(ctx, leakEvent("ev-drop")); err != nil {
		t.Fatal(err)
	}
	for range 6 {
		if _, err := n.DeliverDue(ctx); err != nil {
			t.Fatal(err)
		}
		c.Add(time.Hour)
	}
	if got, ok := r.posts(); len(got) != 3 || len(ok) != 0 {
		t.Fatalf("%d posts, %d ok; want exactly 3 attempts", len(got), len(ok))
	}
	audit, err := st.ListAudit(ctx, store.AuditFilter{Actor: notify.Actor})
	if err != nil {
		t.Fatal(err)
	}
	var drops []store.AuditEvent
	for _, e := range audit {
		if e.Action == "notification.dropped" {
			drops = append(drops, e)
		}
	}
	if len(drops) != 1 || !strings.Contains(drops[0].Target, "ev-drop") || !strings.Contains(drops[0].Detail, "HTTP 500") {
		t.Fatalf("drop audit: %+v", drops)
	}
	if strings.Contains(drops[0].Detail, "query-secret") {
		t.Fatalf("the URL's query is in the audit: %s", drops[0].Detail)
	}
}

// TestWebhookRefusesPrivate: without --webhook-allow-private, an address in a refused range is
// refused when the URL is read (a literal) or at the dial, after the name is resolved and
// before any connection: the receiver sees none, and the dial never gets past the check.
func TestWebhookRefusesPrivate(t *testing.T) {
	for _, u := range []string{
		"http://127.0.0.1/", "http://10.1.2.3/", "http://172.16.0.1/", "http://192.168.1.1/",
		"http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/", "http://[::1]/",
		"http://[::ffff:169.254.169.254]/", "http://0.0.0.0/", "http://100.100.100.200/", "http://168.63.129.16/",
		"http://[fe80::1]/", "http://[64:ff9b::a9fe:a9fe]/",
	} {
		_, err := notify.NewWebhook(u, notify.WebhookOptions{Secret: secret})
		if !errors.Is(err, notify.ErrRefusedAddress) {
			t.Errorf("NewWebhook(%s): %v; want ErrRefusedAddress", u, err)
		}
	}
	for _, u := range []string{"ftp://example.com/", "http:///x", "http://user:pw@example.com/"} {
		if _, err := notify.NewWebhook(u, notify.WebhookOptions{Secret: secret}); err == nil {
			t.Errorf("NewWebhook(%s) accepted", u)
		}
	}
	if _, err := notify.NewWebhook("https://hooks.example.com/", notify.WebhookOptions{}); err == nil {
		t.Error("a webhook without a secret was accepted")
	}

	// A name that resolves to a refused address (localhost: /etc/hosts, no DNS) passes the
	// URL check and is refused at the dial.
	r := newReceiver(t, time.Now)
	_, port, _ := net.SplitHostPort(r.srv.Listener.Addr().String())
	var dials atomic.Int32
	w, err := notify.NewWebhook("http://localhost:"+port+"/hook", notify.WebhookOptions{Secret: secret,
		Control: func(string, string, syscall.RawConn) error { dials.Add(1); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	err = w.Post(context.Background(), []byte(`{"id":"x"}`))
	if !errors.Is(err, notify.ErrRefusedAddress) {
		t.Fatalf("post to localhost: %v; want ErrRefusedAddress", err)
	}
	if dials.Load() != 0 || r.conns.Load() != 0 {
		t.Fatalf("%d dials past the check, %d connections at the receiver; want none", dials.Load(), r.conns.Load())
	}
	// Allowed, the same URL is posted to.
	w, err = notify.NewWebhook("http://localhost:"+port+"/hook", notify.WebhookOptions{Secret: secret, AllowPrivate: true,
		Control: func(_, addr string, _ syscall.RawConn) error {
			if !strings.HasPrefix(addr, "127.0.0.1:") {
				return errors.New("test dials only 127.0.0.1")
			}
			dials.Add(1)
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Post(context.Background(), []byte(`{"id":"x"}`)); err != nil {
		t.Fatalf("allowed post: %v", err)
	}
	if dials.Load() == 0 {
		t.Fatal("the allowed post never dialed")
	}
}

// TestRefusedNetworkRateLimited: a token refused from its networks again and again is told of
// once an hour.
func TestRefusedNetworkRateLimited(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	c := &clock{t: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)}
	n := newNotifier(t, st, c, notify.Options{})
	added := 0
	for i := range 120 { // one refusal a minute for two hours
		at := c.Now().Add(time.Duration(i) * time.Minute)
		ok, err := n.Publish(ctx, notify.RefusedNetworkEvent("tok1", "user", "u1", "user:u1 token:tok1", "203.0.113.9", at))
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			added++
		}
	}
	if added != 2 {
		t.Fatalf("%d events for two hours of refusals; want 2", added)
	}
}

// TestStopReleasesClaims: a replica stopped while posting hands its claimed rows back, so the
// next replica delivers them at once rather than after their lease.
func TestStopReleasesClaims(t *testing.T) {
	st := openStore(t)
	c := &clock{t: time.Now()}
	posted := make(chan struct{}, 16)
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		posted <- struct{}{}
		select { // answers only after the replica stopped
		case <-req.Context().Done():
		case <-time.After(3 * time.Second):
		}
	}))
	t.Cleanup(hang.Close)
	a := newNotifier(t, st, c, notify.Options{}, hang.URL)
	for _, id := range []string{"ev-stop-1", "ev-stop-2"} {
		if _, err := a.Publish(context.Background(), leakEvent(id)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := a.DeliverDue(ctx); done <- err }()
	<-posted // the first row is being posted, the second claimed with it
	stop()
	if err := <-done; err == nil {
		t.Fatal("an interrupted delivery returned no error")
	}
	// Another replica, at the same instant (no lease has run out), takes both.
	rows, err := st.ClaimNotifications(context.Background(), c.Now(), time.Minute, 8)
	if err != nil {
		t.Fatal(err)
	}
	hooked := 0
	for _, row := range rows {
		if !strings.Contains(row.LastError, "interrupted") {
			t.Errorf("row %s (%s): last error %q; want the interruption", row.ID, row.Sink, row.LastError)
		}
		if row.Sink == hang.URL {
			hooked++
		}
	}
	if hooked != 2 {
		t.Fatalf("claimed %d webhook rows after the stop; want both (their leases handed back)", hooked)
	}
}
