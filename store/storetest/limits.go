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

// testMagicTokenCap: CreateMagicTokenCapped counts a public URL against its creator
// (CreatedBy), so one member at their cap holds no one else back, and against the project's
// much higher cap; expired and revoked ones do not count, and issues at once pass neither cap.
func testMagicTokenCap(t *testing.T, su suite) {
	s, c := su.fresh(t), t.Context()
	w := populate(t, s)
	org, project := w.project.Org, w.project.Name
	mk := func(by string) store.Token {
		tk := newMagic(t, org, project)
		tk.CreatedBy = by
		return tk
	}
	const perCreator, perProject = 2, 5
	for range perCreator {
		must(t, s.CreateMagicTokenCapped(c, mk("user:ada@acme.test"), perCreator, perProject))
	}
	over := mk("user:ada@acme.test")
	wantErr(t, "ada's public URL past her cap", s.CreateMagicTokenCapped(c, over, perCreator, perProject), store.ErrTooManyTokens)
	if _, err := s.GetToken(c, over.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the refused public URL was stored: %v", err)
	}
	// Another member of the same project issues on (the red team's case: one editor used up
	// the project's).
	bob := mk("user:bob@acme.test")
	must(t, s.CreateMagicTokenCapped(c, bob, perCreator, perProject))
	must(t, s.CreateMagicTokenCapped(c, mk("user:bob@acme.test"), perCreator, perProject))
	// Expired ones do not count; the project's cap is reached at 5 whoever asks.
	expired := mk("user:ada@acme.test")
	expired.ExpiresAt = now().Add(-time.Minute)
	must(t, s.CreateToken(c, expired))
	must(t, s.CreateMagicTokenCapped(c, mk("user:cyd@acme.test"), perCreator, perProject))
	wantErr(t, "a public URL past the project's cap", s.CreateMagicTokenCapped(c, mk("user:dan@acme.test"), perCreator, perProject), store.ErrProjectFull)
	// A revoke frees a place under both caps.
	must(t, s.DeleteToken(c, bob.ID))
	must(t, s.CreateMagicTokenCapped(c, mk("user:bob@acme.test"), perCreator, perProject))
	must(t, s.CreateMagicTokenCapped(c, mk("user:dan@acme.test"), 0, 0)) // 0: no cap
	wantErr(t, "a user token through the public URL call", s.CreateMagicTokenCapped(c, newToken(t, token.User, w.user.ID), perCreator, perProject), store.ErrInvalid)

	// Issues at once by one creator never pass their cap (another project, fresh).
	must(t, s.CreateProject(c, store.Project{Org: org, Name: "burst", CreatedAt: now()}))
	var wg sync.WaitGroup
	var mu sync.Mutex
	made := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tk := newMagic(t, org, "burst")
			tk.CreatedBy = "user:eve@acme.test"
			err := s.CreateMagicTokenCapped(c, tk, 3, 100)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				made++
			case !errors.Is(err, store.ErrTooManyTokens):
				t.Errorf("a concurrent capped public URL: %v", err)
			}
		}()
	}
	wg.Wait()
	if made != 3 {
		t.Errorf("8 public URLs at once under a cap of 3: %d made", made)
	}
	countsAgree(t, s)
}
