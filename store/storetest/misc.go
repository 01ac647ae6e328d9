package storetest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

func testAudit(t *testing.T, su suite) {
	s, c := su.fresh(t), t.Context()
	if es := val(s.ListAudit(c, store.AuditFilter{}))(t); len(es) != 0 {
		t.Fatalf("audit of an empty store: %+v", es)
	}
	rec, seq := record(t, s), lastSeq(t, s)
	base := now().Truncate(time.Second).Add(-time.Hour)
	ev := make([]store.AuditEvent, 10) // ev[i] happened at base+i minutes; bob did the odd ones
	for i := range ev {
		actor := "alice"
		if i%2 == 1 {
			actor = "bob"
		}
		ev[i] = store.AuditEvent{Time: base.Add(time.Duration(i) * time.Minute), Actor: actor, Action: fmt.Sprint("a", i),
			Target: fmt.Sprint("service:", i), Outcome: "ok", Detail: fmt.Sprint("detail ", i)}
	}
	ev[4].Outcome = "denied"
	for _, i := range []int{3, 0, 7, 1, 9, 2, 8, 4, 6, 5} { // appended out of time order
		must(t, s.AppendAudit(c, ev[i]))
	}
	pick := func(is ...int) []store.AuditEvent {
		var out []store.AuditEvent
		for _, i := range is {
			out = append(out, ev[i])
		}
		return out
	}
	for _, tc := range []struct {
		name string
		f    store.AuditFilter
		want []store.AuditEvent
	}{
		{"all, oldest first", store.AuditFilter{}, ev},
		{"since (inclusive)", store.AuditFilter{Since: base.Add(5 * time.Minute)}, pick(5, 6, 7, 8, 9)},
		{"since after all", store.AuditFilter{Since: base.Add(time.Hour)}, nil},
		{"actor", store.AuditFilter{Actor: "bob"}, pick(1, 3, 5, 7, 9)},
		{"unknown actor", store.AuditFilter{Actor: "eve"}, nil},
		{"limit keeps the newest", store.AuditFilter{Limit: 3}, pick(7, 8, 9)},
		{"limit above the count", store.AuditFilter{Limit: 50}, ev},
		{"actor and limit", store.AuditFilter{Actor: "bob", Limit: 2}, pick(7, 9)},
		{"since and actor", store.AuditFilter{Since: base.Add(4 * time.Minute), Actor: "alice"}, pick(4, 6, 8)},
		{"since, actor and limit", store.AuditFilter{Since: base.Add(2 * time.Minute), Actor: "alice", Limit: 2}, pick(6, 8)},
	} {
		same(t, "ListAudit "+tc.name, val(s.ListAudit(c, tc.f))(t), tc.want, normAudit)
	}
	// Not a change: caches have nothing to drop.
	if got := lastSeq(t, s); got != seq {
		t.Errorf("AppendAudit moved LastSeq from %d to %d", seq, got)
	}
	if bs := rec.since(0); len(bs) > 0 {
		t.Errorf("AppendAudit told subscribers %v", bs)
	}
}

func newKey(t *testing.T, kid string, created time.Time) store.SigningKey {
	t.Helper()
	der := make([]byte, 64)
	_, err := rand.Read(der)
	must(t, err)
	return store.SigningKey{KID: kid, PrivateKey: der, CreatedAt: created}
}

func testSigningKeys(t *testing.T, su suite) {
	s, c := su.fresh(t), t.Context()
	if ks := val(s.ListSigningKeys(c))(t); len(ks) != 0 {
		t.Fatalf("signing keys of an empty store: %+v", ks)
	}
	base := now()
	// Put in neither time nor kid order: the list is oldest first.
	a, b, k := newKey(t, "a", base.Add(2*time.Hour)), newKey(t, "b", base), newKey(t, "c", base.Add(time.Hour))
	for _, key := range []store.SigningKey{a, b, k} {
		must(t, s.PutSigningKey(c, key))
	}
	same(t, "ListSigningKeys", val(s.ListSigningKeys(c))(t), []store.SigningKey{b, k, a}, normKeys)
	// Retiring is a put of the same kid: it replaces the key in place. Every time round-trips.
	k.RetiredAt = base.Add(3 * time.Hour)
	must(t, s.PutSigningKey(c, k))
	same(t, "ListSigningKeys after a retire", val(s.ListSigningKeys(c))(t), []store.SigningKey{b, k, a}, normKeys)
	a.ActivatesAt, b.SignedUntil = base.Add(4*time.Hour), base.Add(2*time.Hour)
	must(t, s.PutSigningKey(c, a))
	must(t, s.PutSigningKey(c, b))
	same(t, "ListSigningKeys with activation and legacy retire times", val(s.ListSigningKeys(c))(t), []store.SigningKey{b, k, a}, normKeys)
}

func testBootstrap(t *testing.T, su suite) {
	t.Run("Once", func(t *testing.T) {
		s, c := su.fresh(t), t.Context()
		runs := 0
		fn := func(c context.Context) error {
			runs++
			return s.CreateOrg(c, store.Org{Name: fmt.Sprint("boot", runs), CreatedAt: now()}) // fn may write
		}
		for i, want := range []bool{true, false, false} {
			if ran, err := s.Bootstrap(c, fn); err != nil || ran != want {
				t.Errorf("Bootstrap call %d: ran %v, %v; want %v", i+1, ran, err, want)
			}
		}
		if runs != 1 {
			t.Errorf("fn ran %d times, want once", runs)
		}
		if _, err := s.GetOrg(c, "boot1"); err != nil {
			t.Errorf("what fn wrote: %v", err)
		}
	})
	t.Run("FailedDoesNotCount", func(t *testing.T) {
		s, c := su.fresh(t), t.Context()
		ran, err := s.Bootstrap(c, func(context.Context) error { return errBoom })
		if ran || !errors.Is(err, errBoom) {
			t.Errorf("Bootstrap whose fn fails: ran %v, %v; want false, %v", ran, err, errBoom)
		}
		if ran, err := s.Bootstrap(c, func(context.Context) error { return nil }); !ran || err != nil {
			t.Errorf("Bootstrap after a failed one: ran %v, %v; want true", ran, err)
		}
		if ran, err := s.Bootstrap(c, func(context.Context) error { t.Error("fn ran again"); return nil }); ran || err != nil {
			t.Errorf("Bootstrap after a done one: ran %v, %v; want false", ran, err)
		}
	})
	// Several replicas may start at once on one store: still once.
	t.Run("Concurrent", func(t *testing.T) {
		s, c := su.fresh(t), t.Context()
		var runs, rans atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				ran, err := s.Bootstrap(c, func(context.Context) error {
					runs.Add(1)
					time.Sleep(10 * time.Millisecond) // a window for the others to slip in
					return nil
				})
				if err != nil {
					t.Errorf("concurrent Bootstrap: %v", err)
				}
				if ran {
					rans.Add(1)
				}
			})
		}
		wg.Wait()
		if runs.Load() != 1 || rans.Load() != 1 {
			t.Errorf("8 concurrent Bootstraps: fn ran %d times and %d said so; want 1 and 1", runs.Load(), rans.Load())
		}
	})
}

// write is one call of a store write, for tables.
type write struct {
	name string
	call func(context.Context, store.Store) error
}

// writes are one call of every write of a populated store, each of which would succeed.
func writes(t *testing.T, w *world) []write {
	tk := newToken(t, token.User, w.user.ID)
	imp := []store.Token{newToken(t, token.Service, w.svc.ID)}
	return []write{
		{"CreateOrg", func(c context.Context, s store.Store) error { return s.CreateOrg(c, store.Org{Name: "initech"}) }},
		{"CreateProject", func(c context.Context, s store.Store) error {
			return s.CreateProject(c, store.Project{Org: w.org, Name: "api"})
		}},
		{"CreateUser", func(c context.Context, s store.Store) error { return s.CreateUser(c, newUser("eve@acme.test")) }},
		{"UpdateUser", func(c context.Context, s store.Store) error {
			_, err := s.UpdateUser(c, w.user.ID, func(u *store.User) error { u.Superuser = true; return nil })
			return err
		}},
		{"DeleteUser", func(c context.Context, s store.Store) error { _, err := s.DeleteUser(c, w.user.ID); return err }},
		{"CreateService", func(c context.Context, s store.Store) error { return s.CreateService(c, newService(w.org, "new")) }},
		{"UpdateService", func(c context.Context, s store.Store) error {
			_, err := s.UpdateService(c, w.svc.ID, func(sv *store.Service) error { sv.OrgRole = "admin"; return nil })
			return err
		}},
		{"DeleteService", func(c context.Context, s store.Store) error { _, err := s.DeleteService(c, w.svc.ID); return err }},
		{"CreateToken", func(c context.Context, s store.Store) error { return s.CreateToken(c, tk) }},
		{"ImportTokens", func(c context.Context, s store.Store) error { return s.ImportTokens(c, imp) }},
		{"DeleteToken", func(c context.Context, s store.Store) error { return s.DeleteToken(c, w.svc2Tok.ID) }},
		{"PutSigningKey", func(c context.Context, s store.Store) error { return s.PutSigningKey(c, newKey(t, "k", now())) }},
		{"TouchTokens", func(c context.Context, s store.Store) error {
			return s.TouchTokens(c, map[token.ID]time.Time{w.userTok.ID: now().Add(time.Hour)})
		}},
		{"AppendAudit", func(c context.Context, s store.Store) error {
			return s.AppendAudit(c, store.AuditEvent{Time: now(), Actor: "a", Action: "x", Outcome: "ok"})
		}},
		{"SetTokenPolicy", func(c context.Context, s store.Store) error {
			_, err := s.SetTokenPolicy(c, w.org, store.TokenPolicy{RequireExpiry: true})
			return err
		}},
		{"PurgeExpiredTokens", func(c context.Context, s store.Store) error {
			_, err := s.PurgeExpiredTokens(c, now().Add(1000*time.Hour), 0)
			return err
		}},
		{"SetSigninRules", func(c context.Context, s store.Store) error {
			_, err := s.SetSigninRules(c, w.org, store.SigninRules{Domains: []store.DomainRule{{Domain: "acme.io", OrgRole: "viewer"}}})
			return err
		}},
	}
}

// testCanceledContext: a write called with a canceled context fails and writes nothing.
func testCanceledContext(t *testing.T, su suite) {
	s := su.fresh(t)
	w := populate(t, s)
	before := snap(t, s)
	rec := record(t, s)
	c, cancel := context.WithCancel(t.Context())
	cancel()
	for _, wr := range writes(t, w) {
		if err := wr.call(c, s); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context: %v, want context.Canceled", wr.name, err)
		}
	}
	sameSnapshot(t, "after writes with a canceled context", snap(t, s), before)
	if bs := rec.since(0); len(bs) > 0 {
		t.Errorf("subscribers heard of %v", bs)
	}
}

// testClosed: once closed, a store refuses every write and read with ErrClosed (what it may
// still answer from memory, TokenAuth and LastSeq, is not pinned down).
func testClosed(t *testing.T, su suite) {
	s := su.open(t)
	closed := false
	t.Cleanup(func() {
		if !closed {
			s.Close()
		}
	})
	w := populate(t, s)
	rec := record(t, s)
	must(t, s.Close())
	closed = true
	c := t.Context()
	for _, wr := range writes(t, w) {
		wantErr(t, wr.name+" on a closed store", wr.call(c, s), store.ErrClosed)
	}
	reads := map[string]func() error{
		"GetOrg":          func() error { _, err := s.GetOrg(c, w.org); return err },
		"ListOrgs":        func() error { _, err := s.ListOrgs(c); return err },
		"GetUser":         func() error { _, err := s.GetUser(c, w.user.ID); return err },
		"GetService":      func() error { _, err := s.GetService(c, w.svc.ID); return err },
		"GetToken":        func() error { _, err := s.GetToken(c, w.userTok.ID); return err },
		"ListTokens":      func() error { _, err := s.ListTokens(c, w.user.ID); return err },
		"CountTokens":     func() error { _, err := s.CountTokens(c); return err },
		"ListSigningKeys": func() error { _, err := s.ListSigningKeys(c); return err },
		"ListAudit":       func() error { _, err := s.ListAudit(c, store.AuditFilter{}); return err },
		"ChangesSince":    func() error { _, err := s.ChangesSince(c, 0, 0); return err },
		"Bootstrap": func() error {
			_, err := s.Bootstrap(c, func(context.Context) error { t.Error("Bootstrap ran fn on a closed store"); return nil })
			return err
		},
	}
	for name, read := range reads {
		wantErr(t, name+" on a closed store", read(), store.ErrClosed)
	}
	if bs := rec.since(0); len(bs) > 0 {
		t.Errorf("a closed store told subscribers %v", bs)
	}
}
