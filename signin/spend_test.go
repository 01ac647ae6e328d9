package signin

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/internal/testenv"
	"github.com/rill-authd/rill-authd/store/badger"
)

// TestSpentStatesBounded: anyone can start a sign-in (a GET) and bring its state back to the
// callback without any code; each such answer is remembered as spent until its flow expires.
// The memory of spent states stays bounded under a flood of them, whatever their number
// (and the work: it was a scan of every state per callback past 1024 of them).
func TestSpentStatesBounded(t *testing.T) {
	op := testenv.StartOIDCProvider(t)
	s := discoveredOne(t, op)
	defer func(n int) { maxSpent = n }(maxSpent)
	maxSpent = 1024
	for i := range 3 * maxSpent {
		w := httptest.NewRecorder()
		if err := s.Start(w, httptest.NewRequest("GET", "/ui/oidc/test/start", nil), "test", "/ui/"); err != nil {
			t.Fatal(err)
		}
		loc, _ := url.Parse(w.Header().Get("Location"))
		r := httptest.NewRequest("GET", "/ui/oidc/test/callback?"+url.Values{"state": {loc.Query().Get("state")}}.Encode(), nil)
		for _, c := range w.Result().Cookies() {
			r.AddCookie(c)
		}
		_, err := s.Finish(httptest.NewRecorder(), r, "test")
		if ref, ok := err.(*Refusal); !ok || ref.Reason != "no_code" || ref.Status != http.StatusBadRequest {
			t.Fatalf("callback %d without a code: %v", i, err)
		}
	}
	s.mu.Lock()
	n := len(s.used)
	s.mu.Unlock()
	if n > maxSpent {
		t.Fatalf("%d spent states remembered after %d forged callbacks, want at most %d", n, 3*maxSpent, maxSpent)
	}
}

// discoveredOne is a Service over an in-memory store with op as its one provider ("test", client
// "c"), discovered.
func discoveredOne(t *testing.T, op *testenv.OP) *Service {
	t.Helper()
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := badger.Open(badger.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s, err := New(Options{Providers: []ProviderConfig{{Name: "test", Issuer: op.Issuer, ClientID: "c", ClientSecretFile: secret}},
		CallbackBase: "http://127.0.0.1:1", Store: st})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	s.WaitDiscovered(10 * time.Second)
	return s
}
