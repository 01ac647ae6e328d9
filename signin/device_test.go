package signin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/store/badger"
	"github.com/rill-authd/rill-authd/token"
)

// clock is a settable now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// deviceFlow is the device flow over a real Badger store, served on loopback, on a clock the test
// moves.
func deviceFlow(t *testing.T) (*Device, *badger.DB, *clock, string) {
	t.Helper()
	st, err := badger.Open(badger.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := &clock{t: time.Now()}
	d := NewDevice(st, DeviceOptions{Now: clk.now, Revoke: func(ctx context.Context, id string) error {
		tid, err := token.ParseID(id)
		if err != nil {
			return err
		}
		return st.DeleteToken(ctx, tid)
	}})
	mux := http.NewServeMux()
	d.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return d, st, clk, srv.URL
}

func postForm(t *testing.T, u string, form url.Values, out any) int {
	t.Helper()
	resp, err := http.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode
}

func authorize(t *testing.T, base string) apiv1.DeviceAuthorization {
	t.Helper()
	var a apiv1.DeviceAuthorization
	if s := postForm(t, base+DeviceAuthPath, url.Values{"client_id": {ClientID}, "host": {"box"}}, &a); s != 200 {
		t.Fatalf("authorize: %d", s)
	}
	return a
}

func pollOnce(t *testing.T, base, code string) (int, apiv1.OAuthError) {
	t.Helper()
	var e apiv1.OAuthError
	s := postForm(t, base+TokenPath, url.Values{"client_id": {ClientID}, "grant_type": {GrantType}, "device_code": {code}}, &e)
	return s, e
}

// TestExpiredCode: a code not approved within 10 minutes is expired_token at the token
// endpoint and refused by the approval; a sweep deletes it.
func TestExpiredCode(t *testing.T) {
	d, _, clk, base := deviceFlow(t)
	a := authorize(t, base)
	clk.add(codeTTL)
	if s, e := pollOnce(t, base, a.DeviceCode); s != 400 || e.Error != "expired_token" {
		t.Fatalf("poll an expired code: %d %+v", s, e)
	}
	if _, err := d.Lookup(context.Background(), "u1", a.UserCode); !errors.Is(err, ErrExpiredCode) {
		t.Fatalf("look up an expired code: %v", err)
	}
	if err := d.Approve(context.Background(), a.UserCode, Approval{UserID: "u", Token: "rill_usr_x"}); !errors.Is(err, ErrExpiredCode) {
		t.Fatalf("approve an expired code: %v", err)
	}
	clk.add(2 * time.Minute)
	if err := d.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Lookup(context.Background(), "u1", a.UserCode); !errors.Is(err, ErrUnknownCode) {
		t.Fatalf("a swept code: %v, want unknown", err)
	}
	if s, e := pollOnce(t, base, a.DeviceCode); s != 400 || e.Error != "invalid_grant" {
		t.Fatalf("poll a swept code: %d %+v", s, e)
	}
}

// TestSweepRevokesUncollected: a token approved but never collected by rillctl dies with its
// code.
func TestSweepRevokesUncollected(t *testing.T) {
	d, st, clk, base := deviceFlow(t)
	ctx := context.Background()
	if err := st.CreateUser(ctx, store.User{ID: "u1", Email: "dev@acme.io"}); err != nil {
		t.Fatal(err)
	}
	tok, err := token.New(token.User)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateToken(ctx, store.NewToken(tok, "u1", "rillctl on box", "user:dev@acme.io", clk.now(), 0)); err != nil {
		t.Fatal(err)
	}
	a := authorize(t, base)
	if err := d.Approve(ctx, a.UserCode, Approval{UserID: "u1", Token: tok.Encode(), TokenID: tok.ID.String()}); err != nil {
		t.Fatal(err)
	}
	// What the store holds is not the token: neither its text nor anything that opens it.
	rec, err := st.GetDeviceCodeByUserCode(ctx, UserCodeID(strings.ReplaceAll(a.UserCode, "-", "")))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(rec)
	if strings.Contains(string(raw), tok.Encode()) || strings.Contains(string(raw), a.DeviceCode) || strings.Contains(string(raw), a.UserCode) {
		t.Fatalf("the stored request holds a secret: %s", raw)
	}
	clk.add(codeTTL + 2*time.Minute)
	if err := d.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetToken(ctx, tok.ID); err == nil {
		t.Fatal("the uncollected token is still live after the sweep")
	}
}

// TestSlowDownGrows: each poll inside the interval adds 5 s to it (RFC 8628 section 3.5);
// a poll that waits the grown interval is pending again.
func TestSlowDownGrows(t *testing.T) {
	_, _, clk, base := deviceFlow(t)
	a := authorize(t, base)
	if s, e := pollOnce(t, base, a.DeviceCode); s != 400 || e.Error != "authorization_pending" {
		t.Fatalf("first poll: %d %+v", s, e)
	}
	for i, want := range []string{"10 seconds", "15 seconds"} {
		clk.add(time.Second)
		if s, e := pollOnce(t, base, a.DeviceCode); s != 400 || e.Error != "slow_down" || !strings.Contains(e.Description, want) {
			t.Fatalf("fast poll %d: %d %+v, want slow_down, %s", i, s, e, want)
		}
	}
	clk.add(15 * time.Second)
	if s, e := pollOnce(t, base, a.DeviceCode); s != 400 || e.Error != "authorization_pending" {
		t.Fatalf("poll after the grown interval: %d %+v", s, e)
	}
}

func TestUserCodes(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		c := newUserCode()
		if len(c) != userCodeLen || strings.Trim(c, userCodeAlphabet) != "" {
			t.Fatalf("user code %q", c)
		}
		seen[c] = true
	}
	if len(seen) < 199 {
		t.Fatalf("%d distinct codes of 200", len(seen))
	}
	for in, want := range map[string]string{"BCDF-GHJK": "BCDFGHJK", "bcdf ghjk": "BCDFGHJK", "bcdfghjk": "BCDFGHJK",
		"BCDF-GHJ": "", "BCDF-GHJKL": "", "ABCD-EFGH": "", "BCDF-GHJ0": "", "": "", "<script>": ""} {
		got, err := NormalizeUserCode(in)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("NormalizeUserCode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	// Eight letters with a vowel are refused too: the page must not answer "a code is 8
	// letters" to someone who typed 8 letters.
	if _, err := NormalizeUserCode("AAAA-BBBB"); err == nil || !strings.Contains(err.Error(), "without vowels") {
		t.Errorf("NormalizeUserCode(AAAA-BBBB): %v; want it to say which letters a code has", err)
	}
}

func TestSealOpen(t *testing.T) {
	priv, err := sealKey("device-code")
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := seal(priv.PublicKey().Bytes(), "rill_usr_secret")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := open(priv, sealed); err != nil || got != "rill_usr_secret" {
		t.Fatalf("open: %q %v", got, err)
	}
	other, _ := sealKey("another-code")
	if _, err := open(other, sealed); err == nil {
		t.Fatal("another device code opened the sealed token")
	}
	for _, bad := range [][]byte{nil, sealed[:20], append(append([]byte{}, sealed[:len(sealed)-1]...), sealed[len(sealed)-1]^1)} {
		if _, err := open(priv, bad); err == nil {
			t.Fatalf("opened a damaged seal (%d bytes)", len(bad))
		}
	}
}
