package storetest

import (
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

func testFeed(t *testing.T, su suite) {
	t.Run("EveryWrite", func(t *testing.T) { testFeedEveryWrite(t, su) })
	t.Run("Paging", func(t *testing.T) { testFeedPaging(t, su) })
	t.Run("SubscribersSeeCommittedState", func(t *testing.T) { testFeedCommitted(t, su) })
	t.Run("SeveralSubscribers", func(t *testing.T) { testFeedSubscribers(t, su) })
}

// testFeedEveryWrite makes each kind of write once and checks the changes it appended: what
// they say, that their Seqs follow on from LastSeq before the write, and that subscribers had
// heard of exactly them, in one call, before the write returned.
func testFeedEveryWrite(t *testing.T, su suite) {
	s, c := su.fresh(t), t.Context()
	rec := record(t, s)
	u, u2 := newUser("ada@acme.test"), newUser("bob@acme.test")
	sv := newService("acme", "ci")
	t1, t2, t3 := newToken(t, token.Service, sv.ID), newToken(t, token.Service, sv.ID), newToken(t, token.Service, sv.ID)
	tu := newToken(t, token.User, u.ID)
	key := newKey(t, "k1", now())
	retired := key
	retired.RetiredAt = now()
	steps := []struct {
		name    string
		write   func() error
		want    []string // the changes, in order
		then    []string // then these, in any order
		affects bool     // whether any of them AffectsDecisions
		split   bool     // subscribers may hear of it in several calls (an import's batches)
	}{
		{"CreateOrg", func() error { return s.CreateOrg(c, store.Org{Name: "acme", CreatedAt: now()}) }, []string{put(store.ChangeOrg, "acme")}, nil, false, false},
		{"CreateProject", func() error { return s.CreateProject(c, store.Project{Org: "acme", Name: "web"}) }, []string{put(store.ChangeProject, "acme/web")}, nil, true, false},
		{"CreateUser", func() error { return s.CreateUser(c, u) }, []string{put(store.ChangeUser, u.ID)}, nil, true, false},
		{"CreateUser again", func() error { return s.CreateUser(c, u2) }, []string{put(store.ChangeUser, u2.ID)}, nil, true, false},
		{"UpdateUser", func() error {
			_, err := s.UpdateUser(c, u.ID, func(u *store.User) error { u.Superuser = true; return nil })
			return err
		}, []string{put(store.ChangeUser, u.ID)}, nil, true, false},
		{"CreateService", func() error { return s.CreateService(c, sv) }, []string{put(store.ChangeService, sv.ID)}, nil, true, false},
		{"UpdateService", func() error {
			_, err := s.UpdateService(c, sv.ID, func(sv *store.Service) error { sv.Name = "builder"; return nil })
			return err
		}, []string{put(store.ChangeService, sv.ID)}, nil, true, false},
		{"CreateToken", func() error { return s.CreateToken(c, t1) }, []string{put(store.ChangeToken, t1.ID.String())}, nil, true, false},
		{"SetTokenLimits", func() error {
			_, err := s.SetTokenLimits(c, t1.ID, []string{"10.0.0.0/8"}, nil)
			return err
		}, []string{put(store.ChangeToken, t1.ID.String())}, nil, true, false},
		{"ImportTokens", func() error { return s.ImportTokens(c, []store.Token{t2, t3}) }, nil, []string{put(store.ChangeToken, t2.ID.String()), put(store.ChangeToken, t3.ID.String())}, true, true},
		{"CreateToken of a user", func() error { return s.CreateToken(c, tu) }, []string{put(store.ChangeToken, tu.ID.String())}, nil, true, false},
		{"DeleteToken", func() error { return s.DeleteToken(c, t1.ID) }, []string{del(store.ChangeToken, t1.ID.String())}, nil, true, false},
		{"PutSigningKey", func() error { return s.PutSigningKey(c, key) }, []string{put(store.ChangeKey, key.KID)}, nil, true, false},
		{"PutSigningKey to retire", func() error { return s.PutSigningKey(c, retired) }, []string{put(store.ChangeKey, key.KID)}, nil, true, false},
		// One change per owner, however many tokens it revokes.
		{"DeleteService", func() error { _, err := s.DeleteService(c, sv.ID); return err }, []string{del(store.ChangeService, sv.ID)}, nil, true, false},
		{"DeleteUser", func() error { _, err := s.DeleteUser(c, u.ID); return err }, []string{del(store.ChangeUser, u.ID)}, nil, true, false},
		{"DeleteUser without tokens", func() error { _, err := s.DeleteUser(c, u2.ID); return err }, []string{del(store.ChangeUser, u2.ID)}, nil, true, false},
	}
	start := time.Now()
	for _, st := range steps {
		seq, m := lastSeq(t, s), rec.mark()
		if err := st.write(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		// What subscribers heard before the write returned.
		heard := rec.since(m)
		if len(heard) != 1 && (!st.split || len(heard) == 0) {
			t.Errorf("%s: subscribers were called %d times before it returned, want once", st.name, len(heard))
		}
		got := val(s.ChangesSince(c, seq, 0))(t)
		if h := slices.Concat(heard...); !reflect.DeepEqual(normChanges(h), normChanges(got)) {
			t.Errorf("%s: subscribers heard\n%+v\nChangesSince(%d) says\n%+v", st.name, h, seq, got)
		}
		n := len(st.want) + len(st.then)
		if len(got) != n {
			t.Errorf("%s appended %v, want %v then %v", st.name, descs(got), st.want, st.then)
			continue
		}
		if d := descs(got); !slices.Equal(d[:len(st.want)], st.want) || !sameSet(d[len(st.want):], st.then) {
			t.Errorf("%s appended %v, want %v then, in any order, %v", st.name, d, st.want, st.then)
		}
		affects := false
		for i, ch := range got {
			if ch.Seq != seq+uint64(i)+1 {
				t.Errorf("%s: change %d has Seq %d, want %d", st.name, i, ch.Seq, seq+uint64(i)+1)
			}
			if ch.Time.Before(start.Add(-time.Hour)) || ch.Time.After(time.Now().Add(time.Hour)) {
				t.Errorf("%s: change %d has Time %v, not about now", st.name, i, ch.Time)
			}
			affects = affects || ch.AffectsDecisions()
			targeted(t, st.name, ch)
		}
		if affects != st.affects {
			t.Errorf("%s: its changes %v affect decisions: %v, want %v", st.name, descs(got), affects, st.affects)
		}
		if last := lastSeq(t, s); last != seq+uint64(n) {
			t.Errorf("%s: LastSeq %d, want %d", st.name, last, seq+uint64(n))
		}
	}
	all := val(s.ChangesSince(c, 0, 0))(t)
	if !reflect.DeepEqual(normChanges(all), normChanges(rec.all())) {
		t.Errorf("ChangesSince(0) and what subscribers heard differ:\n%+v\n%+v", all, rec.all())
	}
}

// feedOf fills a store with changes of every kind and returns them.
func feedOf(t *testing.T, s store.Store) []store.Change {
	t.Helper()
	w := populate(t, s)
	c := t.Context()
	must(t, s.PutSigningKey(c, newKey(t, "k1", now())))
	must(t, s.DeleteToken(c, w.svc2Tok.ID))
	_, err := s.DeleteService(c, w.svc.ID)
	must(t, err)
	all := val(s.ChangesSince(c, 0, 0))(t)
	if last := lastSeq(t, s); len(all) == 0 || uint64(len(all)) != last {
		t.Fatalf("%d changes with LastSeq %d", len(all), last)
	}
	for i, ch := range all {
		if ch.Seq != uint64(i)+1 {
			t.Fatalf("change %d of a fresh store has Seq %d", i, ch.Seq)
		}
	}
	return all
}

func testFeedPaging(t *testing.T, su suite) {
	s, c := su.fresh(t), t.Context()
	if cs := val(s.ChangesSince(c, 0, 0))(t); len(cs) != 0 {
		t.Fatalf("changes of an empty store: %+v", cs)
	}
	all := normChanges(feedOf(t, s))
	last := uint64(len(all))
	for after := range last + 1 {
		got := normChanges(val(s.ChangesSince(c, after, 0))(t))
		if !reflect.DeepEqual(got, normSlice(all[after:])) {
			t.Errorf("ChangesSince(%d, 0) = %v, want %v", after, descs(got), descs(all[after:]))
		}
	}
	if got := val(s.ChangesSince(c, last+5, 0))(t); len(got) != 0 {
		t.Errorf("ChangesSince past LastSeq: %+v", got)
	}
	if got := val(s.ChangesSince(c, 0, -1))(t); len(got) != len(all) {
		t.Errorf("ChangesSince with a negative limit: %d changes, want all %d", len(got), len(all))
	}
	for _, limit := range []int{1, 2, 3, 7, len(all) - 1, len(all), len(all) + 1} {
		var paged []store.Change
		// Each page must start right after the last; bounded, so a wrong engine fails, not hangs.
		for after := uint64(0); len(paged) <= len(all); {
			page := val(s.ChangesSince(c, after, limit))(t)
			if len(page) > limit {
				t.Fatalf("ChangesSince(%d, %d) returned %d changes", after, limit, len(page))
			}
			if len(page) < limit && after+uint64(len(page)) != last {
				t.Fatalf("ChangesSince(%d, %d) returned a short page of %d before the end", after, limit, len(page))
			}
			if len(page) == 0 {
				break
			}
			if page[0].Seq != after+1 {
				t.Fatalf("ChangesSince(%d, %d) starts at Seq %d", after, limit, page[0].Seq)
			}
			paged = append(paged, page...)
			after = page[len(page)-1].Seq
		}
		if !reflect.DeepEqual(normChanges(paged), all) {
			t.Errorf("paging by %d: %v, want %v", limit, descs(paged), descs(all))
		}
	}
}

// testFeedCommitted: a subscriber that reads what a change names already sees the write: a
// cache invalidated from the feed must not reload the state from before it.
func testFeedCommitted(t *testing.T, su suite) {
	s, c := su.fresh(t), t.Context()
	checked := 0
	s.Subscribe(func(cs []store.Change) {
		for _, ch := range cs {
			if seq, err := s.LastSeq(c); err != nil || seq < ch.Seq {
				t.Errorf("in a subscriber to %d: LastSeq %d, %v", ch.Seq, seq, err)
			}
			var err, want error // what reading it says, and should say
			switch {
			case ch.Kind == store.ChangeToken:
				tid, perr := token.ParseID(ch.ID)
				must(t, perr)
				_, err = s.TokenAuth(c, tid)
				if ch.Op == store.OpDelete {
					want = store.ErrRevoked
				}
			case ch.Kind == store.ChangeService:
				_, err = s.GetService(c, ch.ID)
				if ch.Op == store.OpDelete {
					want = store.ErrNotFound
				}
			case ch.Kind == store.ChangeUser:
				_, err = s.GetUser(c, ch.ID)
				if ch.Op == store.OpDelete {
					want = store.ErrNotFound
				}
			default:
				continue
			}
			checked++
			if (want == nil && err != nil) || (want != nil && !errors.Is(err, want)) {
				t.Errorf("a subscriber told of %s reads: %v, want %v", desc(ch), err, want)
			}
		}
	})
	feedOf(t, s)
	w := populateMore(t, s)
	_, err := s.DeleteUser(c, w.ID)
	must(t, err)
	if checked == 0 {
		t.Error("the subscriber checked nothing")
	}
}

// populateMore adds a user with a token to a populated store.
func populateMore(t *testing.T, s store.Store) store.User {
	t.Helper()
	u := newUser("carol@acme.test")
	must(t, s.CreateUser(t.Context(), u))
	must(t, s.CreateToken(t.Context(), newToken(t, token.User, u.ID)))
	return u
}

func testFeedSubscribers(t *testing.T, su suite) {
	s, c := su.fresh(t), t.Context()
	first := record(t, s)
	must(t, s.CreateOrg(c, store.Org{Name: "acme"}))
	second := record(t, s) // hears only what comes after it subscribed
	must(t, s.CreateOrg(c, store.Org{Name: "globex"}))
	must(t, s.CreateProject(c, store.Project{Org: "acme", Name: "web"}))
	if got := descs(first.all()); !slices.Equal(got, []string{put(store.ChangeOrg, "acme"), put(store.ChangeOrg, "globex"), put(store.ChangeProject, "acme/web")}) {
		t.Errorf("the first subscriber heard %v", got)
	}
	if got := descs(second.all()); !slices.Equal(got, []string{put(store.ChangeOrg, "globex"), put(store.ChangeProject, "acme/web")}) {
		t.Errorf("the second subscriber heard %v", got)
	}
}
