package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// wantAuth fails t unless TokenAuth of tk says what its record says.
func wantAuth(t *testing.T, s store.Store, tk store.Token) {
	t.Helper()
	got, err := s.TokenAuth(t.Context(), tk.ID)
	if err != nil {
		t.Errorf("TokenAuth of live token %s: %v", tk.ID, err)
		return
	}
	if got.Kind != tk.Kind || got.OwnerID != tk.OwnerID || got.Hash != tk.Hash || !got.ExpiresAt.Equal(tk.ExpiresAt) {
		t.Errorf("TokenAuth of %s = %+v, want kind %s, owner %s, hash %x, expiry %v", tk.ID, got, tk.Kind, tk.OwnerID, tk.Hash, tk.ExpiresAt)
	}
}

// wantRevoked fails t unless GetToken and TokenAuth of id say ErrRevoked (and not ErrNotFound)
// with why in the message, and not any of notWhy.
func wantRevoked(t *testing.T, s store.Store, id token.ID, why string, notWhy ...string) {
	t.Helper()
	_, gerr := s.GetToken(t.Context(), id)
	_, aerr := s.TokenAuth(t.Context(), id)
	for name, err := range map[string]error{"GetToken": gerr, "TokenAuth": aerr} {
		if !errors.Is(err, store.ErrRevoked) || errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s of revoked token %s: %v, want ErrRevoked", name, id, err)
			continue
		}
		if !contains(err, why) {
			t.Errorf("%s of revoked token %s: %q does not say %q", name, id, err, why)
		}
		for _, not := range notWhy {
			if contains(err, not) {
				t.Errorf("%s of revoked token %s: %q says %q", name, id, err, not)
			}
		}
	}
}

// wantLive fails t unless id reads as the live record tk.
func wantLive(t *testing.T, s store.Store, tk store.Token) {
	t.Helper()
	got, err := s.GetToken(t.Context(), tk.ID)
	if err != nil {
		t.Errorf("GetToken of live token %s: %v", tk.ID, err)
	} else {
		same(t, "GetToken", got, tk, normToken)
	}
	wantAuth(t, s, tk)
}

// countsAgree fails t unless CountTokens says how many tokens of each kind ListTokens lists
// over every owner.
func countsAgree(t *testing.T, s store.Store) {
	t.Helper()
	sn := snap(t, s)
	listed := map[token.Kind]uint64{token.User: 0, token.Service: 0}
	for _, ts := range sn.Tokens {
		for _, tk := range ts {
			listed[tk.Kind]++
		}
	}
	same(t, "CountTokens against the tokens listed", sn.Counts, listed, normCounts)
}

func testTokens(t *testing.T, su suite) {
	s, c := su.fresh(t), t.Context()
	w := populate(t, s)
	base := now()
	full := newToken(t, token.User, w.user.ID)
	full.DisplayName, full.CreatedBy = "laptop ✓", w.user2.ID
	full.CreatedAt, full.ExpiresAt = base.Add(2*time.Hour), base.Add(48*time.Hour)
	early := newToken(t, token.User, w.user.ID)
	early.CreatedAt = base.Add(-time.Hour)
	late := newToken(t, token.User, w.user.ID)
	late.CreatedAt = base.Add(time.Hour)
	for _, tk := range []store.Token{full, early, late} { // created out of CreatedAt order
		must(t, s.CreateToken(c, tk))
	}
	for _, tk := range append([]store.Token{full, early, late, w.userTok, w.svc2Tok}, w.svcToks...) {
		wantLive(t, s, tk)
	}

	// ListTokens is the owner's tokens only, oldest first (populate's token is older than base).
	same(t, "ListTokens", val(s.ListTokens(c, w.user.ID))(t), []store.Token{early, w.userTok, late, full}, normTokens)
	if ts := val(s.ListTokens(c, w.svc.ID))(t); len(ts) != 2 || !sameSet([]token.ID{ts[0].ID, ts[1].ID}, []token.ID{w.svcToks[0].ID, w.svcToks[1].ID}) {
		t.Errorf("ListTokens of a service: %+v", ts)
	}
	if ts := val(s.ListTokens(c, w.user2.ID))(t); len(ts) != 0 {
		t.Errorf("ListTokens of a user without tokens: %+v", ts)
	}
	if ts, err := s.ListTokens(c, token.NewID()); len(ts) != 0 || (err != nil && !errors.Is(err, store.ErrNotFound)) {
		t.Errorf("ListTokens of a missing owner: %+v, %v", ts, err)
	}
	countsAgree(t, s)
}

func testRevokedTokens(t *testing.T, su suite) {
	s, c := su.fresh(t), t.Context()
	w := populate(t, s)
	gone, kept := newToken(t, token.User, w.user.ID), newToken(t, token.User, w.user.ID)
	must(t, s.CreateToken(c, gone))
	must(t, s.CreateToken(c, kept))
	must(t, s.DeleteToken(c, gone.ID))
	wantRevoked(t, s, gone.ID, "revoked", "deleted")
	wantLive(t, s, kept)
	for _, tk := range val(s.ListTokens(c, w.user.ID))(t) {
		if tk.ID == gone.ID {
			t.Errorf("ListTokens lists revoked token %s", gone.ID)
		}
	}
	wantErr(t, "DeleteToken of a revoked token", s.DeleteToken(c, gone.ID), store.ErrNotFound)
	wantRevoked(t, s, gone.ID, "revoked", "deleted") // a second delete changes nothing

	// A revocation is seen by the very next read, even of a token just read (and perhaps
	// cached) as live.
	for i := range 20 {
		kind, owner := token.User, w.user.ID
		if i%2 == 1 {
			kind, owner = token.Service, w.svc.ID
		}
		tk := newToken(t, kind, owner)
		must(t, s.CreateToken(c, tk))
		wantAuth(t, s, tk)
		must(t, s.DeleteToken(c, tk.ID))
		if _, err := s.TokenAuth(c, tk.ID); !errors.Is(err, store.ErrRevoked) {
			t.Fatalf("TokenAuth right after DeleteToken returned: %v, want ErrRevoked", err)
		}
		if _, err := s.GetToken(c, tk.ID); !errors.Is(err, store.ErrRevoked) {
			t.Fatalf("GetToken right after DeleteToken returned: %v, want ErrRevoked", err)
		}
	}
	countsAgree(t, s)
}

func testCascades(t *testing.T, su suite) {
	cases := []struct {
		name   string
		kind   token.Kind
		owner  func(*world) string
		others func(*world) []store.Token // tokens of other owners, which must stay live
		delete func(context.Context, store.Store, string) (int, error)
		gone   func(context.Context, store.Store, *world) error // reads of the deleted owner
		reuse  func(context.Context, store.Store, *world) error // what was unique to it is free again
		why    string
	}{
		{
			name: "DeleteService", kind: token.Service, why: "service deleted",
			owner:  func(w *world) string { return w.svc.ID },
			others: func(w *world) []store.Token { return []store.Token{w.userTok, w.svc2Tok} },
			delete: func(c context.Context, s store.Store, id string) (int, error) { return s.DeleteService(c, id) },
			gone: func(c context.Context, s store.Store, w *world) error {
				if ss, err := s.ListServices(c, w.org); err != nil || len(ss) != 1 || ss[0].ID != w.svc2.ID {
					return fmt.Errorf("ListServices after DeleteService: %+v, %v", ss, err)
				}
				_, err1 := s.GetService(c, w.svc.ID)
				_, err2 := s.GetServiceByName(c, w.org, w.svc.Name)
				return bothNotFound(err1, err2)
			},
			reuse: func(c context.Context, s store.Store, w *world) error {
				return s.CreateService(c, newService(w.org, w.svc.Name))
			},
		},
		{
			name: "DeleteUser", kind: token.User, why: "user deleted",
			owner:  func(w *world) string { return w.user.ID },
			others: func(w *world) []store.Token { return append([]store.Token{w.svc2Tok}, w.svcToks...) },
			delete: func(c context.Context, s store.Store, id string) (int, error) { return s.DeleteUser(c, id) },
			gone: func(c context.Context, s store.Store, w *world) error {
				if us, err := s.ListUsers(c); err != nil || len(us) != 1 || us[0].ID != w.user2.ID {
					return fmt.Errorf("ListUsers after DeleteUser: %+v, %v", us, err)
				}
				_, err1 := s.GetUser(c, w.user.ID)
				_, err2 := s.GetUserByEmail(c, w.user.Email)
				return bothNotFound(err1, err2)
			},
			reuse: func(c context.Context, s store.Store, w *world) error { return s.CreateUser(c, newUser(w.user.Email)) },
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, c := su.fresh(t), t.Context()
			w := populate(t, s)
			owner := tc.owner(w)
			// The owner's tokens: its live ones, and one revoked before.
			live := []store.Token{w.userTok}
			if tc.kind == token.Service {
				live = slices.Clone(w.svcToks)
			}
			for range 3 {
				tk := newToken(t, tc.kind, owner)
				must(t, s.CreateToken(c, tk))
				live = append(live, tk)
			}
			revoked := newToken(t, tc.kind, owner)
			must(t, s.CreateToken(c, revoked))
			must(t, s.DeleteToken(c, revoked.ID))
			before := counts(t, s)
			// Atomic for readers: when subscribers hear of the owner's delete (its one
			// change), every token of the owner is refused as revoked already.
			heard := 0
			s.Subscribe(func(cs []store.Change) {
				for _, ch := range cs {
					if ch.Op != store.OpDelete || ch.ID != owner {
						continue
					}
					heard++
					for _, tk := range live {
						if _, err := s.TokenAuth(c, tk.ID); !errors.Is(err, store.ErrRevoked) || !contains(err, tc.why) {
							t.Errorf("TokenAuth of a token of the owner when its delete is announced: %v, want ErrRevoked saying %q", err, tc.why)
						}
					}
				}
			})

			n, err := tc.delete(c, s, owner)
			must(t, err)
			if heard != 1 {
				t.Errorf("subscribers heard of the owner's delete %d times, want once", heard)
			}
			if n != len(live) {
				t.Errorf("%s says it revoked %d tokens, want %d (the live ones)", tc.name, n, len(live))
			}
			for _, tk := range live {
				wantRevoked(t, s, tk.ID, tc.why)
			}
			wantRevoked(t, s, revoked.ID, "revoked", "deleted") // revoked before: still for that reason
			for _, tk := range tc.others(w) {
				wantLive(t, s, tk)
			}
			if ts := val(s.ListTokens(c, owner))(t); len(ts) != 0 {
				t.Errorf("ListTokens of a deleted owner: %+v", ts)
			}
			if err := tc.gone(c, s, w); err != nil {
				t.Errorf("reads of the deleted owner: %v", err)
			}
			after := counts(t, s)
			if after[tc.kind] != before[tc.kind]-uint64(len(live)) {
				t.Errorf("CountTokens went from %v to %v, want %d fewer %s", before, after, len(live), tc.kind)
			}
			countsAgree(t, s)

			_, err = tc.delete(c, s, owner)
			wantErr(t, "a second "+tc.name, err, store.ErrNotFound)
			must(t, tc.reuse(c, s, w))
		})
	}
	t.Run("OwnerWithManyTokens", func(t *testing.T) { testCascadeMany(t, su) })
	t.Run("OwnerWithoutTokens", func(t *testing.T) {
		s, c := su.fresh(t), t.Context()
		w := populate(t, s)
		if n, err := s.DeleteService(c, w.svc3.ID); err != nil || n != 0 {
			t.Errorf("DeleteService of a service without tokens: %d, %v; want 0", n, err)
		}
		if n, err := s.DeleteUser(c, w.user2.ID); err != nil || n != 0 {
			t.Errorf("DeleteUser of a user without tokens: %d, %v; want 0", n, err)
		}
		wantCounts(t, s, 1, 3)
	})
}

// bothNotFound is nil if both errors are ErrNotFound, else says which is not.
func bothNotFound(by, byName error) error {
	if !errors.Is(by, store.ErrNotFound) || !errors.Is(byName, store.ErrNotFound) {
		return fmt.Errorf("by id: %v; by name: %v; want ErrNotFound for both", by, byName)
	}
	return nil
}

func testCountTokens(t *testing.T, su suite) {
	s, c := su.fresh(t), t.Context()
	wantCounts(t, s, 0, 0)
	w := populate(t, s)
	wantCounts(t, s, 1, 3)
	u := newToken(t, token.User, w.user2.ID)
	must(t, s.CreateToken(c, u))
	wantCounts(t, s, 2, 3)
	must(t, s.ImportTokens(c, []store.Token{newToken(t, token.Service, w.svc3.ID), newToken(t, token.User, w.user2.ID), newToken(t, token.Service, w.svc3.ID)}))
	wantCounts(t, s, 3, 5)
	must(t, s.DeleteToken(c, u.ID))
	wantCounts(t, s, 2, 5)
	must(t, s.TouchTokens(c, map[token.ID]time.Time{w.userTok.ID: now()}))
	wantCounts(t, s, 2, 5)
	_, err := s.DeleteService(c, w.svc.ID) // two tokens
	must(t, err)
	wantCounts(t, s, 2, 3)
	_, err = s.DeleteUser(c, w.user2.ID) // one token left
	must(t, err)
	wantCounts(t, s, 1, 3)
	countsAgree(t, s)
}

func testTouchTokens(t *testing.T, su suite) {
	s, c := su.fresh(t), t.Context()
	w := populate(t, s)
	revoked := newToken(t, token.User, w.user.ID)
	must(t, s.CreateToken(c, revoked))
	must(t, s.DeleteToken(c, revoked.ID))
	rec, seq := record(t, s), lastSeq(t, s)

	t1 := now().Add(time.Minute)
	unknown := newTokenID(t)
	must(t, s.TouchTokens(c, map[token.ID]time.Time{w.userTok.ID: t1, w.svc2Tok.ID: t1.Add(time.Second), unknown: t1, revoked.ID: t1}))
	want, want2 := w.userTok, w.svc2Tok
	want.LastUsedAt, want2.LastUsedAt = t1, t1.Add(time.Second)
	wantLive(t, s, want) // only LastUsedAt changed
	wantLive(t, s, want2)
	wantRevoked(t, s, revoked.ID, "revoked") // not brought back
	if _, err := s.GetToken(c, unknown); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetToken of an unknown token touched: %v, want ErrNotFound", err)
	}

	// Only forward: an older time is ignored, a newer one kept.
	for _, tc := range []struct {
		name      string
		at, wants time.Time
	}{
		{"older", t1.Add(-time.Hour), t1},
		{"equal", t1, t1},
		{"newer", t1.Add(time.Hour), t1.Add(time.Hour)},
	} {
		must(t, s.TouchTokens(c, map[token.ID]time.Time{w.userTok.ID: tc.at}))
		if got := val(s.GetToken(c, w.userTok.ID))(t); !got.LastUsedAt.Equal(tc.wants) {
			t.Errorf("touched at an %s time: LastUsedAt = %v, want %v", tc.name, got.LastUsedAt, tc.wants)
		}
	}
	must(t, s.TouchTokens(c, nil))
	must(t, s.TouchTokens(c, map[token.ID]time.Time{}))

	// Not a change: caches have nothing to drop.
	if got := lastSeq(t, s); got != seq {
		t.Errorf("TouchTokens moved LastSeq from %d to %d", seq, got)
	}
	if bs := rec.since(0); len(bs) > 0 {
		t.Errorf("TouchTokens told subscribers %v", bs)
	}
	countsAgree(t, s)
}

func testImportTokens(t *testing.T, su suite) {
	s, c := su.fresh(t), t.Context()
	w := populate(t, s)
	rec, seq := record(t, s), lastSeq(t, s)
	var batch []store.Token
	var ids []string
	for i := range 40 {
		tk := newToken(t, token.User, w.user2.ID)
		if i%2 == 1 {
			tk = newToken(t, token.Service, w.svc3.ID)
			tk.ExpiresAt = now().Add(time.Duration(i) * time.Hour)
		}
		tk.CreatedAt = tk.CreatedAt.Add(time.Duration(i) * time.Millisecond) // a defined list order
		batch, ids = append(batch, tk), append(ids, put(store.ChangeToken, tk.ID.String()))
	}
	before := counts(t, s)
	must(t, s.ImportTokens(c, batch))
	// Subscribers heard of every token before ImportTokens returned, once each.
	if got := descs(rec.all()); !sameSet(got, ids) {
		t.Errorf("subscribers heard of %v, want a token put of each imported token", got)
	}
	if got := lastSeq(t, s); got != seq+uint64(len(batch)) {
		t.Errorf("LastSeq after importing %d tokens: %d, want %d", len(batch), got, seq+uint64(len(batch)))
	}
	for _, tk := range batch {
		wantLive(t, s, tk)
	}
	var usr, svc []store.Token
	for _, tk := range batch {
		if tk.Kind == token.User {
			usr = append(usr, tk)
		} else {
			svc = append(svc, tk)
		}
	}
	same(t, "ListTokens of the importing user", val(s.ListTokens(c, w.user2.ID))(t), usr, normTokens)
	same(t, "ListTokens of the importing service", val(s.ListTokens(c, w.svc3.ID))(t), svc, normTokens)
	if got := counts(t, s); got[token.User] != before[token.User]+20 || got[token.Service] != before[token.Service]+20 {
		t.Errorf("CountTokens went from %v to %v, want 20 more of each", before, got)
	}

	// An import with an unknown owner is refused whole.
	fresh := newToken(t, token.User, w.user.ID)
	err := s.ImportTokens(c, []store.Token{fresh, newToken(t, token.Service, w.svc.ID), newToken(t, token.User, token.NewID())})
	wantErr(t, "ImportTokens with an unknown owner", err, store.ErrNotFound)
	if _, err := s.GetToken(c, fresh.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a refused import wrote token %s: %v", fresh.ID, err)
	}
	// A taken id is a conflict, however the import is split.
	err = s.ImportTokens(c, []store.Token{batch[3]})
	wantErr(t, "ImportTokens of a taken id", err, store.ErrConflict)
	twice := newToken(t, token.User, w.user.ID)
	err = s.ImportTokens(c, []store.Token{twice, twice})
	wantErr(t, "ImportTokens of one id twice", err, store.ErrConflict)
	must(t, s.ImportTokens(c, nil))
	countsAgree(t, s)
}

// testCascadeMany deletes a service with more tokens than an engine deletes in one batch: one
// change, every token refused as revoked from then on, counts and lists follow, and a token
// of another owner stays live.
func testCascadeMany(t *testing.T, su suite) {
	s, c := su.fresh(t), t.Context()
	w := populate(t, s)
	const many = 12_000
	toks := make([]store.Token, many)
	for i := range toks {
		toks[i] = newToken(t, token.Service, w.svc3.ID)
	}
	must(t, s.ImportTokens(c, toks))
	before, seq := counts(t, s), lastSeq(t, s)
	n, err := s.DeleteService(c, w.svc3.ID)
	must(t, err)
	if n != many {
		t.Errorf("DeleteService revoked %d tokens, want %d", n, many)
	}
	if got := val(s.ChangesSince(c, seq, 0))(t); len(got) != 1 || desc(got[0]) != del(store.ChangeService, w.svc3.ID) {
		t.Errorf("deleting a service of %d tokens appended %v, want its one delete", many, descs(got))
	}
	for _, i := range []int{0, 1, many / 2, many - 1} {
		wantRevoked(t, s, toks[i].ID, "service deleted")
	}
	for i := range toks {
		if _, err := s.TokenAuth(c, toks[i].ID); !errors.Is(err, store.ErrRevoked) {
			t.Fatalf("token %d of the deleted service: %v, want ErrRevoked", i, err)
		}
	}
	if ts := val(s.ListTokens(c, w.svc3.ID))(t); len(ts) != 0 {
		t.Errorf("ListTokens of the deleted service: %d tokens", len(ts))
	}
	if after := counts(t, s); after[token.Service] != before[token.Service]-many {
		t.Errorf("CountTokens went from %v to %v, want %d fewer", before, after, many)
	}
	wantLive(t, s, w.svc2Tok)
	countsAgree(t, s)
}
