package storetest

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// RunDurable checks what an engine that keeps its data across restarts promises: everything
// acknowledged is there after a close and reopen, and the feed goes on where it was. open
// returns a fresh, empty store; reopen opens again the data of s, which the suite has closed
// first, as a restarted process would. The suite closes every store it is given.
func RunDurable(t *testing.T, open func(t *testing.T) store.Store, reopen func(t *testing.T, s store.Store) store.Store) {
	t.Run("ReopenKeepsEverything", func(t *testing.T) { testReopenKeepsEverything(t, newLifecycle(t, open, reopen)) })
	t.Run("SequenceSurvivesReopens", func(t *testing.T) { testSequenceSurvivesReopens(t, newLifecycle(t, open, reopen)) })
}

// lifecycle hands out stores and closes, on cleanup, those the test did not close itself.
type lifecycle struct {
	t      *testing.T
	open   func(*testing.T) store.Store
	reopen func(*testing.T, store.Store) store.Store
	closed map[store.Store]bool
}

func newLifecycle(t *testing.T, open func(*testing.T) store.Store, reopen func(*testing.T, store.Store) store.Store) *lifecycle {
	return &lifecycle{t: t, open: open, reopen: reopen, closed: map[store.Store]bool{}}
}

func (l *lifecycle) track(s store.Store) store.Store {
	if s == nil {
		l.t.Fatal("open returned no store")
	}
	l.t.Cleanup(func() {
		if !l.closed[s] {
			if err := s.Close(); err != nil {
				l.t.Errorf("close: %v", err)
			}
		}
	})
	return s
}

func (l *lifecycle) fresh() store.Store {
	s := l.track(l.open(l.t))
	if seq := lastSeq(l.t, s); seq != 0 {
		l.t.Fatalf("a fresh store: LastSeq = %d, want 0", seq)
	}
	return s
}

// restart closes s and opens its data again.
func (l *lifecycle) restart(s store.Store) store.Store {
	l.t.Helper()
	if err := s.Close(); err != nil {
		l.t.Fatalf("close before reopening: %v", err)
	}
	l.closed[s] = true
	return l.track(l.reopen(l.t, s))
}

func testReopenKeepsEverything(t *testing.T, l *lifecycle) {
	s, c := l.fresh(), t.Context()
	if ran, err := s.Bootstrap(c, func(context.Context) error { return nil }); !ran || err != nil {
		t.Fatalf("Bootstrap: %v, %v", ran, err)
	}
	w := populate(t, s)
	// Every kind of record and write: records with every field set, updates that move unique
	// names, revocations for each reason, an import, keys (one retired) and audit events.
	full, fullSvc := fullUser("carol@acme.test"), fullService(w.org, "full")
	must(t, s.CreateUser(c, full))
	must(t, s.CreateService(c, fullSvc))
	oldEmail := w.user.Email
	_, err := s.UpdateUser(c, w.user.ID, func(u *store.User) error {
		u.Email, u.Orgs = "ada@lovelace.test", map[string]store.UserOrg{"acme": {Groups: []string{"eng"}, Attributes: map[string]any{"k": "v"}}}
		return nil
	})
	must(t, err)
	_, err = s.UpdateService(c, w.svc2.ID, func(sv *store.Service) error { sv.Name, sv.OrgRole = "deployer", "admin"; return nil })
	must(t, err)
	u2Tok := newToken(t, token.User, w.user2.ID)
	must(t, s.CreateToken(c, u2Tok))
	var imported []store.Token
	for i := range 5 {
		tk := newToken(t, token.User, w.user.ID)
		tk.ExpiresAt = now().Add(time.Duration(i+1) * time.Hour)
		imported = append(imported, tk)
	}
	must(t, s.ImportTokens(c, imported))
	must(t, s.DeleteToken(c, w.svc2Tok.ID))
	_, err = s.DeleteService(c, w.svc.ID)
	must(t, err)
	_, err = s.DeleteUser(c, w.user2.ID)
	must(t, err)
	k1, k2 := newKey(t, "k1", now()), newKey(t, "k2", now().Add(time.Second))
	must(t, s.PutSigningKey(c, k1))
	must(t, s.PutSigningKey(c, k2))
	k1.RetiredAt = now()
	must(t, s.PutSigningKey(c, k1))
	touched := now().Add(time.Minute)
	must(t, s.RecordUses(c, map[token.ID]store.TokenUse{imported[0].ID: {At: touched, IP: "10.1.2.3", UserAgent: "curl/8.5.0"}}))
	for i := range 3 {
		must(t, s.AppendAudit(c, store.AuditEvent{Time: now().Add(time.Duration(i) * time.Second), Actor: "ada", Action: "x", Target: "t", Outcome: "ok"}))
	}
	before := snap(t, s)

	s = l.restart(s)
	sameSnapshot(t, "after reopening", snap(t, s), before)
	same(t, "GetUser after reopening", val(s.GetUser(c, full.ID))(t), full, normUser)
	same(t, "GetServiceByName after reopening", val(s.GetServiceByName(c, w.org, "full"))(t), fullSvc, normService)
	live := append([]store.Token{w.userTok}, imported...)
	live[1].LastUsedAt, live[1].LastUsedIP, live[1].LastUsedUserAgent = touched, "10.1.2.3", "curl/8.5.0"
	for _, tk := range live {
		wantLive(t, s, tk)
	}
	wantRevoked(t, s, w.svc2Tok.ID, "revoked", "deleted")
	for _, tk := range w.svcToks {
		wantRevoked(t, s, tk.ID, "service deleted")
	}
	wantRevoked(t, s, u2Tok.ID, "user deleted")
	if _, err := s.TokenAuth(c, newTokenID(t)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TokenAuth of an unknown token after reopening: %v", err)
	}
	if ran, err := s.Bootstrap(c, func(context.Context) error { t.Error("Bootstrap ran again after reopening"); return nil }); ran || err != nil {
		t.Errorf("Bootstrap after reopening: %v, %v; want false", ran, err)
	}

	// The feed goes on from where it was, and subscribers of the new store hear of it.
	rec := record(t, s)
	must(t, s.CreateOrg(c, store.Org{Name: "initech"}))
	got := val(s.ChangesSince(c, before.LastSeq, 0))(t)
	if len(got) != 1 || got[0].Seq != before.LastSeq+1 || desc(got[0]) != put(store.ChangeOrg, "initech") {
		t.Errorf("the first write after reopening appended %+v, want org put initech at %d", got, before.LastSeq+1)
	}
	if h := rec.all(); !reflect.DeepEqual(normChanges(h), normChanges(got)) {
		t.Errorf("subscribers of the reopened store heard %+v, want %+v", h, got)
	}

	// Unique names are still held, and those freed are still free.
	wantErr(t, "CreateUser with a held email", s.CreateUser(c, newUser("ada@lovelace.test")), store.ErrConflict)
	wantErr(t, "CreateService with a held name", s.CreateService(c, newService(w.org, "deployer")), store.ErrConflict)
	must(t, s.CreateUser(c, newUser(oldEmail)))
	must(t, s.CreateUser(c, newUser(w.user2.Email)))
	must(t, s.CreateService(c, newService(w.org, w.svc.Name)))
	must(t, s.CreateService(c, newService(w.org, w.svc2.Name)))
	countsAgree(t, s)
}

// testSequenceSurvivesReopens: reopening, even twice without a write between, never reuses a
// sequence number.
func testSequenceSurvivesReopens(t *testing.T, l *lifecycle) {
	s, c := l.fresh(), t.Context()
	must(t, s.CreateOrg(c, store.Org{Name: "acme"}))
	s = l.restart(s)
	if seq := lastSeq(t, s); seq != 1 {
		t.Fatalf("LastSeq after reopening: %d, want 1", seq)
	}
	must(t, s.CreateOrg(c, store.Org{Name: "globex"}))
	s = l.restart(l.restart(s))
	must(t, s.CreateOrg(c, store.Org{Name: "initech"}))
	got := descs(val(s.ChangesSince(c, 0, 0))(t))
	want := []string{put(store.ChangeOrg, "acme"), put(store.ChangeOrg, "globex"), put(store.ChangeOrg, "initech")}
	if !slices.Equal(got, want) || lastSeq(t, s) != 3 {
		t.Errorf("after three reopens the feed is %v (LastSeq %d), want %v", got, lastSeq(t, s), want)
	}
	for i, ch := range val(s.ChangesSince(c, 0, 0))(t) {
		if ch.Seq != uint64(i)+1 {
			t.Errorf("change %d has Seq %d", i, ch.Seq)
		}
	}
}
