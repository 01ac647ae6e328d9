package storetest

import (
	"cmp"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

func testConcurrency(t *testing.T, su suite) {
	t.Run("CreateToken", func(t *testing.T) { testConcurrentCreateToken(t, su) })
	t.Run("OneWinner", func(t *testing.T) { testOneWinner(t, su) })
	t.Run("Feed", func(t *testing.T) { testConcurrentFeed(t, su) })
	t.Run("TouchNeverRevives", func(t *testing.T) { testTouchNeverRevives(t, su) })
}

// testConcurrentCreateToken: token issues from many goroutines never collide (they share the
// live-token counts) and all are readable.
func testConcurrentCreateToken(t *testing.T, su suite) {
	const workers, each = 8, 25
	s, c := su.fresh(t), t.Context()
	w := populate(t, s)
	before := counts(t, s)
	rec := record(t, s)
	made := make([][]store.Token, workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			kind, owner := token.Service, w.svc3.ID
			if i%2 == 1 {
				kind, owner = token.User, w.user2.ID
			}
			for range each {
				tk := newToken(t, kind, owner)
				if err := s.CreateToken(c, tk); err != nil {
					t.Errorf("concurrent CreateToken: %v", err)
					return
				}
				made[i] = append(made[i], tk)
			}
		})
	}
	wg.Wait()
	var puts []string
	for _, ts := range made {
		for _, tk := range ts {
			wantLive(t, s, tk)
			puts = append(puts, put(store.ChangeToken, tk.ID.String()))
		}
	}
	if len(puts) != workers*each {
		t.Fatalf("%d of %d tokens were created", len(puts), workers*each)
	}
	if got := counts(t, s); got[token.Service] != before[token.Service]+workers*each/2 || got[token.User] != before[token.User]+workers*each/2 {
		t.Errorf("CountTokens went from %v to %v, want %d more of each", before, got, workers*each/2)
	}
	if n := len(val(s.ListTokens(c, w.svc3.ID))(t)); n != workers*each/2 {
		t.Errorf("ListTokens lists %d of the %d tokens made", n, workers*each/2)
	}
	if got := descs(rec.all()); !sameSet(got, puts) {
		t.Errorf("subscribers heard %d changes, want a put of each of the %d tokens", len(got), len(puts))
	}
	countsAgree(t, s)
}

// testOneWinner races calls of which only one can succeed: the others fail as documented, and
// the store holds the one result.
func testOneWinner(t *testing.T, su suite) {
	cases := []struct {
		name string
		// try is racer i's attempt; check checks the store afterwards.
		racers  int // 0: 8
		try     func(t *testing.T, s store.Store, w *world, i int) error
		loser   error
		changes uint64 // what the one success appends
		check   func(t *testing.T, s store.Store, w *world)
	}{
		{"CreateOrg", 0, func(t *testing.T, s store.Store, w *world, i int) error {
			return s.CreateOrg(t.Context(), store.Org{Name: "initech"})
		}, store.ErrConflict, 1,
			func(t *testing.T, s store.Store, w *world) {
				if n := len(val(s.ListOrgs(t.Context()))(t)); n != 3 {
					t.Errorf("ListOrgs: %d orgs, want 3", n)
				}
			}},
		{"CreateProject", 0, func(t *testing.T, s store.Store, w *world, i int) error {
			return s.CreateProject(t.Context(), store.Project{Org: w.org, Name: "api", CreatedAt: now().Add(time.Duration(i) * time.Second)})
		}, store.ErrConflict, 1,
			func(t *testing.T, s store.Store, w *world) {
				if n := len(val(s.ListProjects(t.Context(), w.org))(t)); n != 2 {
					t.Errorf("ListProjects: %d projects, want 2", n)
				}
			}},
		{"CreateUser", 0, func(t *testing.T, s store.Store, w *world, i int) error {
			return s.CreateUser(t.Context(), newUser("eve@acme.test"))
		}, store.ErrConflict, 1,
			func(t *testing.T, s store.Store, w *world) { oneUserWith(t, s, "eve@acme.test") }},
		{"UpdateUser email", 2, func(t *testing.T, s store.Store, w *world, i int) error {
			u := w.user
			if i%2 == 1 {
				u = w.user2
			}
			_, err := s.UpdateUser(t.Context(), u.ID, func(u *store.User) error { u.Email = "eve@acme.test"; return nil })
			return err
		}, store.ErrConflict, 1,
			func(t *testing.T, s store.Store, w *world) { oneUserWith(t, s, "eve@acme.test") }},
		{"CreateService", 0, func(t *testing.T, s store.Store, w *world, i int) error {
			return s.CreateService(t.Context(), newService(w.org, "new"))
		}, store.ErrConflict, 1,
			func(t *testing.T, s store.Store, w *world) { oneServiceNamed(t, s, w.org, "new", 3) }},
		{"UpdateService rename", 2, func(t *testing.T, s store.Store, w *world, i int) error {
			id := w.svc.ID
			if i%2 == 1 {
				id = w.svc2.ID
			}
			_, err := s.UpdateService(t.Context(), id, func(sv *store.Service) error { sv.Name = "new"; return nil })
			return err
		}, store.ErrConflict, 1,
			func(t *testing.T, s store.Store, w *world) { oneServiceNamed(t, s, w.org, "new", 2) }},
		{"DeleteToken", 0, func(t *testing.T, s store.Store, w *world, i int) error {
			return s.DeleteToken(t.Context(), w.userTok.ID)
		}, store.ErrNotFound, 1,
			func(t *testing.T, s store.Store, w *world) { wantCounts(t, s, 0, 3) }},
		{"DeleteService", 0, func(t *testing.T, s store.Store, w *world, i int) error {
			n, err := s.DeleteService(t.Context(), w.svc.ID)
			if err == nil && n != 2 {
				t.Errorf("the DeleteService that won revoked %d tokens, want 2", n)
			}
			return err
		}, store.ErrNotFound, 1, func(t *testing.T, s store.Store, w *world) { wantCounts(t, s, 1, 1) }}, // one change per owner
		{"DeleteUser", 0, func(t *testing.T, s store.Store, w *world, i int) error {
			n, err := s.DeleteUser(t.Context(), w.user.ID)
			if err == nil && n != 1 {
				t.Errorf("the DeleteUser that won revoked %d tokens, want 1", n)
			}
			return err
		}, store.ErrNotFound, 1, func(t *testing.T, s store.Store, w *world) { wantCounts(t, s, 0, 3) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := su.fresh(t)
			w := populate(t, s)
			seq := lastSeq(t, s)
			racers := cmp.Or(tc.racers, 8)
			errs := make([]error, racers)
			var wg sync.WaitGroup
			for i := range racers {
				wg.Go(func() { errs[i] = tc.try(t, s, w, i) })
			}
			wg.Wait()
			won := 0
			for _, err := range errs {
				switch {
				case err == nil:
					won++
				case !errors.Is(err, tc.loser):
					t.Errorf("a racer that lost: %v, want %v", err, tc.loser)
				}
			}
			if won != 1 {
				t.Errorf("%d of %d racers succeeded, want 1", won, racers)
			}
			if got := lastSeq(t, s); got != seq+tc.changes {
				t.Errorf("LastSeq went from %d to %d, want %d more", seq, got, tc.changes)
			}
			tc.check(t, s, w)
			countsAgree(t, s)
		})
	}
}

func oneUserWith(t *testing.T, s store.Store, email string) {
	t.Helper()
	n := 0
	for _, u := range val(s.ListUsers(t.Context()))(t) {
		if u.Email == email {
			n++
			if got := val(s.GetUserByEmail(t.Context(), email))(t); got.ID != u.ID {
				t.Errorf("GetUserByEmail says %s, ListUsers %s", got.ID, u.ID)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d users have email %s, want 1", n, email)
	}
}

func oneServiceNamed(t *testing.T, s store.Store, org, name string, total int) {
	t.Helper()
	ss := val(s.ListServices(t.Context(), org))(t)
	n := 0
	for _, sv := range ss {
		if sv.Name == name {
			n++
			if got := val(s.GetServiceByName(t.Context(), org, name))(t); got.ID != sv.ID {
				t.Errorf("GetServiceByName says %s, ListServices %s", got.ID, sv.ID)
			}
		}
	}
	if n != 1 || len(ss) != total {
		t.Errorf("%d of %d services are named %s, want 1 of %d", n, len(ss), name, total)
	}
}

// testConcurrentFeed: writers racing still give one gapless feed in commit order, which
// subscribers hear in order (the recorder checks that as it hears), each write's changes
// before that write returns.
func testConcurrentFeed(t *testing.T, su suite) {
	const workers, each = 4, 15
	s, c := su.fresh(t), t.Context()
	w := populate(t, s)
	var (
		mu    sync.Mutex
		heard = map[string]int{}
	)
	s.Subscribe(func(cs []store.Change) {
		mu.Lock()
		defer mu.Unlock()
		for _, ch := range cs {
			heard[desc(ch)]++
		}
	})
	rec := record(t, s)
	heardOf := func(d string) bool {
		mu.Lock()
		defer mu.Unlock()
		return heard[d] == 1
	}
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			for j := range each {
				org := fmt.Sprintf("org-%d-%d", i, j)
				tk := newToken(t, token.Service, w.svc.ID)
				err := errors.Join(s.CreateOrg(c, store.Org{Name: org}), s.CreateToken(c, tk), s.DeleteToken(c, tk.ID))
				if err != nil {
					t.Errorf("a concurrent write: %v", err)
					return
				}
				for _, d := range []string{put(store.ChangeOrg, org), put(store.ChangeToken, tk.ID.String()), del(store.ChangeToken, tk.ID.String())} {
					if !heardOf(d) {
						t.Errorf("%s returned before subscribers heard of it once", d)
					}
				}
			}
		})
	}
	wg.Wait()
	all := val(s.ChangesSince(c, 0, 0))(t)
	for i, ch := range all {
		if ch.Seq != uint64(i)+1 {
			t.Fatalf("change %d has Seq %d", i, ch.Seq)
		}
	}
	if last := lastSeq(t, s); last != uint64(len(all)) {
		t.Errorf("LastSeq %d with %d changes", last, len(all))
	}
	seen := rec.all()
	if len(seen) == 0 || !reflect.DeepEqual(normChanges(seen), normChanges(all[seen[0].Seq-1:])) {
		t.Errorf("subscribers heard %d changes unlike the %d ChangesSince has", len(seen), len(all))
	}
	if want := workers * each * 3; len(seen) != want {
		t.Errorf("subscribers heard %d changes, want %d", len(seen), want)
	}
}

// testTouchNeverRevives races last-used updates against revocations: a touch that read a token
// before it was revoked must not write it back, and a revoke must not fail for the touches.
func testTouchNeverRevives(t *testing.T, su suite) {
	s, c := su.fresh(t), t.Context()
	w := populate(t, s)
	var toks []store.Token
	for range 100 {
		toks = append(toks, newToken(t, token.User, w.user2.ID))
	}
	must(t, s.ImportTokens(c, toks))
	done := make(chan struct{})
	var wg sync.WaitGroup
	stop := sync.OnceFunc(func() { close(done); wg.Wait() })
	defer stop()       // before the store is closed, however the test ends
	for g := range 3 { // touchers on staggered windows of the tokens
		wg.Go(func() {
			for i := g * 7; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				used := map[token.ID]time.Time{}
				for j := range 8 {
					used[toks[(i+j)%len(toks)].ID] = now()
				}
				if err := s.TouchTokens(c, used); err != nil {
					t.Errorf("TouchTokens: %v", err)
					return
				}
			}
		})
	}
	for _, tk := range toks {
		if err := s.DeleteToken(c, tk.ID); err != nil {
			t.Errorf("DeleteToken while tokens are touched: %v", err)
		}
	}
	stop()
	for _, tk := range toks {
		wantRevoked(t, s, tk.ID, "revoked")
	}
	if ts := val(s.ListTokens(c, w.user2.ID))(t); len(ts) != 0 {
		t.Errorf("ListTokens after every token was revoked: %d tokens", len(ts))
	}
	countsAgree(t, s)
}
