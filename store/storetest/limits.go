package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// testTokenCap: CreateTokenCapped refuses at the cap with ErrTooManyTokens, counts only the
// owner's live tokens (not expired, not revoked, not another owner's), and holds under
// concurrent issues.
func testTokenCap(t *testing.T, su suite) {
	s, c := su.fresh(t), t.Context()
	w := populate(t, s) // svc has 2 tokens, svc2 one
	const max = 4
	first := newToken(t, token.Service, w.svc.ID)
	must(t, s.CreateTokenCapped(c, first, max))
	must(t, s.CreateTokenCapped(c, newToken(t, token.Service, w.svc.ID), max))
	over := newToken(t, token.Service, w.svc.ID)
	err := s.CreateTokenCapped(c, over, max)
	if !errors.Is(err, store.ErrTooManyTokens) {
		t.Fatalf("a token past the cap of %d: %v, want ErrTooManyTokens", max, err)
	}
	if _, err := s.GetToken(c, over.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the refused token was stored: %v", err)
	}
	must(t, s.CreateTokenCapped(c, newToken(t, token.Service, w.svc2.ID), max)) // another owner's count
	must(t, s.CreateToken(c, over))                                             // no cap: CreateToken
	wantErr(t, "a token past the cap after an uncapped one", s.CreateTokenCapped(c, newToken(t, token.Service, w.svc.ID), max), store.ErrTooManyTokens)
	must(t, s.DeleteToken(c, first.ID))
	must(t, s.DeleteToken(c, over.ID))
	must(t, s.CreateTokenCapped(c, newToken(t, token.Service, w.svc.ID), max)) // revoking frees a place
	wantErr(t, "a token past the cap after revokes", s.CreateTokenCapped(c, newToken(t, token.Service, w.svc.ID), max), store.ErrTooManyTokens)
	must(t, s.CreateTokenCapped(c, newToken(t, token.Service, w.svc.ID), 0)) // 0: no cap

	// Expired tokens do not count.
	for range max {
		tk := newToken(t, token.User, w.user2.ID)
		tk.ExpiresAt = now().Add(-time.Minute)
		must(t, s.CreateToken(c, tk))
	}
	must(t, s.CreateTokenCapped(c, newToken(t, token.User, w.user2.ID), max))

	// Issues at once never pass the cap.
	var wg sync.WaitGroup
	var mu sync.Mutex
	made, refused := 0, 0
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.CreateTokenCapped(c, newToken(t, token.Service, w.svc3.ID), max)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				made++
			case errors.Is(err, store.ErrTooManyTokens):
				refused++
			default:
				t.Errorf("a concurrent capped issue: %v", err)
			}
		}()
	}
	wg.Wait()
	if made != max || refused != 12-max { // svc3 held none
		t.Errorf("12 issues at once under a cap of %d: %d made, %d refused; want %d made", max, made, refused, max)
	}
	countsAgree(t, s)
}
