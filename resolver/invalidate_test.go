package resolver

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rill-authd/rill-authd/keys"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/store/badger"
	"github.com/rill-authd/rill-authd/token"
)

func (k memoKey) MemoProject() (string, string) { return k.org, k.project }

// world is a resolver over a real store with one cached entry of every sort: tokens of two
// users and two services, our JWTs issued by one service for two projects, and on each token a
// memoized value about each project.
type world struct {
	st     *badger.DB
	r      *Resolver
	ring   *keys.Ring
	bearer map[string]string // name -> credential
	warmed map[string]*entry // name -> its entry once warmed
}

var (
	webKey  = memoKey{"acme", "web", 1}
	dataKey = memoKey{"acme", "data", 1}
	orgKey  = memoKey{"acme", "", 1}
)

func newWorld(t *testing.T) *world {
	t.Helper()
	st, err := badger.Open(badger.Options{InMemory: true})
	must(t, err)
	ring := keys.NewRing(st, keys.Options{MaxTTL: time.Hour})
	w := &world{st: st, ring: ring, bearer: map[string]string{}, warmed: map[string]*entry{}}
	w.r = New(st, Options{Issuer: "rill-authd", Audience: "rill", Keys: ring, TouchInterval: -1})
	t.Cleanup(func() { w.r.Close(); st.Close() })
	must(t, st.CreateOrg(ctx, store.Org{Name: "acme"}))
	for _, p := range []string{"web", "data"} {
		must(t, st.CreateProject(ctx, store.Project{Org: "acme", Name: p}))
	}
	for _, u := range []string{"u1", "u2"} {
		must(t, st.CreateUser(ctx, store.User{ID: u, Email: u + "@acme.com", OrgRoles: map[string]policy.Role{"acme": "viewer"}}))
	}
	for _, s := range []string{"s1", "s-admin"} {
		must(t, st.CreateService(ctx, store.Service{ID: s, Org: "acme", Name: s, OrgRole: "admin"}))
	}
	_, err = ring.Ensure(ctx)
	must(t, err)
	ks, err := ring.Keyset(ctx)
	must(t, err)
	for name, owner := range map[string]string{"u1a": "u1", "u1b": "u1", "u2": "u2", "s1": "s1", "s-admin": "s-admin"} {
		k := token.User
		if owner[0] == 's' {
			k = token.Service
		}
		raw, err := token.New(k)
		must(t, err)
		must(t, st.CreateToken(ctx, store.NewToken(raw, owner, "", "test", time.Now(), 0)))
		w.bearer[name] = raw.Encode()
	}
	for _, p := range []string{"web", "data"} {
		now := time.Now()
		raw, err := ks.Sign(&token.Claims{RegisteredClaims: jwt.RegisteredClaims{Issuer: "rill-authd", Audience: jwt.ClaimStrings{"rill"},
			Subject: "end@user.io", IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)), ID: token.NewID()},
			Org: "acme", Project: p, IssuedBy: "service:s-admin"})
		must(t, err)
		w.bearer["jwt-"+p] = raw
	}
	w.warm(t)
	return w
}

// warm resolves every credential and memoizes a value about each project (and the org) on it.
func (w *world) warm(t *testing.T) {
	t.Helper()
	for name, b := range w.bearer {
		res, err := w.r.Resolve(ctx, b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		m := MemoOf[memoKey, string](res)
		for _, k := range []memoKey{webKey, dataKey, orgKey} {
			m.LoadOrStore(k, name)
		}
		w.warmed[name] = res.entry
	}
}

// state says, for every credential, whether its warmed entry is still cached and which memo
// keys it holds: "cached" with all three, "cached -acme/web" without web's, "gone" when it is
// not cached (or replaced: a changed owner's tokens are read again in the background).
func (w *world) state(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for name, b := range w.bearer {
		id := w.cacheID(t, b)
		s := &w.r.cache.shard[id[0]%shards]
		s.mu.RLock()
		e := s.m[id]
		s.mu.RUnlock()
		if e == nil || e != w.warmed[name] {
			out[name] = "gone"
			continue
		}
		v := "cached"
		m := MemoOf[memoKey, string](Result{entry: e})
		for _, k := range []memoKey{webKey, dataKey, orgKey} {
			if _, ok := m.Load(k); !ok {
				v += fmt.Sprintf(" -%s/%s", k.org, k.project)
			}
		}
		out[name] = v
	}
	return out
}

func (w *world) cacheID(t *testing.T, b string) token.ID {
	if IsJWT(b) {
		h := sha256.Sum256([]byte(b))
		var id token.ID
		copy(id[:], h[:16])
		return id
	}
	tok, err := token.Parse(b)
	must(t, err)
	return tok.ID
}

// TestChangesDropWhatTheyName: each kind of write drops exactly the entries and memoized
// values it can affect, and every other stays cached.
func TestChangesDropWhatTheyName(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(t *testing.T, w *world)
		drops map[string]string // what changes; every other credential stays "cached"
	}{
		{"a token revoked", func(t *testing.T, w *world) {
			tok, _ := token.Parse(w.bearer["u1a"])
			must(t, w.st.DeleteToken(ctx, tok.ID))
		}, map[string]string{"u1a": "gone"}},
		{"a user updated", func(t *testing.T, w *world) {
			_, err := w.st.UpdateUser(ctx, "u1", func(u *store.User) error { u.DisplayName = "Bob"; return nil })
			must(t, err)
		}, map[string]string{"u1a": "gone", "u1b": "gone"}},
		{"a user deleted", func(t *testing.T, w *world) {
			_, err := w.st.DeleteUser(ctx, "u2")
			must(t, err)
		}, map[string]string{"u2": "gone"}},
		{"a service updated", func(t *testing.T, w *world) {
			_, err := w.st.UpdateService(ctx, "s1", func(s *store.Service) error { s.OrgRole = "viewer"; return nil })
			must(t, err)
		}, map[string]string{"s1": "gone"}},
		{"the issuer of JWTs updated", func(t *testing.T, w *world) {
			_, err := w.st.UpdateService(ctx, "s-admin", func(s *store.Service) error { s.OrgRole = "viewer"; return nil })
			must(t, err)
		}, map[string]string{"s-admin": "gone", "jwt-web": "gone", "jwt-data": "gone"}},
		{"a project updated", func(t *testing.T, w *world) {
			_, err := w.st.UpdateProject(ctx, "acme", "web", func(p *store.Project) error { p.RuntimeAudience = "web-aud"; return nil })
			must(t, err)
		}, map[string]string{"jwt-web": "gone", "u1a": "cached -acme/web", "u1b": "cached -acme/web", "u2": "cached -acme/web",
			"s1": "cached -acme/web", "s-admin": "cached -acme/web", "jwt-data": "cached -acme/web"}},
		{"a project created", func(t *testing.T, w *world) {
			must(t, w.st.CreateProject(ctx, store.Project{Org: "acme", Name: "new"}))
		}, nil},
		{"a signing key rotated", func(t *testing.T, w *world) {
			_, err := w.ring.Rotate(ctx, true)
			must(t, err)
		}, map[string]string{"jwt-web": "gone", "jwt-data": "gone"}},
		{"a token issued", func(t *testing.T, w *world) {
			raw, err := token.New(token.User)
			must(t, err)
			must(t, w.st.CreateToken(ctx, store.NewToken(raw, "u1", "", "test", time.Now(), 0)))
		}, nil},
		{"an org and a user created", func(t *testing.T, w *world) {
			must(t, w.st.CreateOrg(ctx, store.Org{Name: "globex"}))
			must(t, w.st.CreateUser(ctx, store.User{ID: "u3", Email: "u3@acme.com"}))
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			before := w.r.Stats()
			want := w.state(t)
			for name, v := range want {
				if v != "cached" {
					t.Fatalf("%s after warming: %s", name, v)
				}
			}
			tc.write(t, w)
			maps.Copy(want, tc.drops)
			got := w.state(t)
			for _, name := range slices.Sorted(maps.Keys(want)) {
				if got[name] != want[name] {
					t.Errorf("%s: %s, want %s", name, got[name], want[name])
				}
			}
			if s := w.r.Stats(); s.Misses != before.Misses {
				t.Errorf("misses went from %d to %d without a check", before.Misses, s.Misses)
			}
			// Whatever was dropped resolves again, as the store now says.
			for name, b := range w.bearer {
				_, err := w.r.Resolve(ctx, b)
				if err != nil && !IsAuthError(err) {
					t.Errorf("%s after the write: %v", name, err)
				}
			}
		})
	}
}

// TestDependencyIndexStaysExact: entries evicted, replaced and dropped leave no dependency
// behind, and a drop finds every entry of its owner, also under concurrent loads.
func TestDependencyIndexStaysExact(t *testing.T) {
	f := setup(t, Options{CacheSize: 128})
	var toks []string
	for range 300 {
		tok, _ := f.issue(t, token.Service, "s1", time.Time{})
		toks = append(toks, tok)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 600 {
				f.r.Resolve(ctx, toks[(i*7+g)%len(toks)])
			}
		})
	}
	for range 5 {
		_, err := f.st.UpdateService(ctx, "s1", func(s *store.Service) error { s.Attributes = map[string]any{"n": time.Now().String()}; return nil })
		must(t, err)
	}
	wg.Wait()
	c := f.r.cache
	// The read-ahead of the updated service's tokens may still be putting some back.
	var refs, n int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		c.dmu.Lock()
		refs = len(c.deps[dep{depOwner, "s1"}])
		n = c.len()
		c.dmu.Unlock()
		if refs == n || time.Now().After(deadline) {
			break
		}
	}
	if refs != n || n == 0 {
		t.Errorf("%d entries cached, the owner's index holds %d", n, refs)
	}
	_, err := f.st.DeleteService(ctx, "s1")
	must(t, err)
	if n := c.len(); n != 0 {
		t.Errorf("%d entries of the service survived its delete", n)
	}
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if len(c.deps) != 0 {
		t.Errorf("dependencies left behind: %v", c.deps)
	}
}

// blindStore is a real store whose feed the test can cut (a replica that missed changes and
// then hears a reset) and whose owner reads it can fail as an unreachable server does.
type blindStore struct {
	*badger.DB
	mu    sync.Mutex
	deaf  bool
	down  bool
	subs  []func([]store.Change)
	reads int
}

func (b *blindStore) Subscribe(fn func([]store.Change)) {
	b.DB.Subscribe(func(cs []store.Change) {
		b.mu.Lock()
		deaf := b.deaf
		b.mu.Unlock()
		if !deaf {
			fn(cs)
		}
	})
	b.subs = append(b.subs, fn)
}

func (b *blindStore) reset() {
	for _, fn := range b.subs {
		fn([]store.Change{store.ResetNotice(time.Now())})
	}
}

func (b *blindStore) set(deaf, down bool) {
	b.mu.Lock()
	b.deaf, b.down = deaf, down
	b.mu.Unlock()
}

func (b *blindStore) fail() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reads++
	if b.down {
		return fmt.Errorf("read: connection refused: %w", store.ErrUnavailable)
	}
	return nil
}

func (b *blindStore) GetUser(c2 context.Context, id string) (store.User, error) {
	if err := b.fail(); err != nil {
		return store.User{}, err
	}
	return b.DB.GetUser(c2, id)
}

func (b *blindStore) GetService(c2 context.Context, id string) (store.Service, error) {
	if err := b.fail(); err != nil {
		return store.Service{}, err
	}
	return b.DB.GetService(c2, id)
}

// TestResetRechecksInsteadOfDropping: a reset drops nothing. Each entry is re-read on its next
// use, so what changed unheard shows; with the store unreachable the entry is answered as
// before (a revocation the store's memory knows still refuses) until MaxStaleness after the
// reset, trying the store again at most every RecheckInterval.
func TestResetRechecksInsteadOfDropping(t *testing.T) {
	st, err := badger.Open(badger.Options{InMemory: true})
	must(t, err)
	bs := &blindStore{DB: st}
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	r := New(bs, Options{TouchInterval: -1, Now: clock, MaxStaleness: 30 * time.Second, RecheckInterval: time.Second})
	t.Cleanup(func() { r.Close(); st.Close() })
	f := &fixture{st: st, r: r}
	must(t, st.CreateOrg(ctx, store.Org{Name: "acme"}))
	must(t, st.CreateUser(ctx, store.User{ID: "u1", Email: "bob@acme.com", OrgRoles: map[string]policy.Role{"acme": "viewer"}}))
	keep, _ := f.issue(t, token.User, "u1", time.Time{})
	gone, goneID := f.issue(t, token.User, "u1", time.Time{})
	for _, b := range []string{keep, gone} {
		_, err := r.Resolve(ctx, b)
		must(t, err)
	}
	role := func() policy.Role {
		t.Helper()
		res, err := r.Resolve(ctx, keep)
		must(t, err)
		return res.Principal.OrgRoles["acme"]
	}

	// Changes this replica does not hear, then a reset: nothing is dropped, the next use re-reads.
	bs.set(true, false)
	_, err = st.UpdateUser(ctx, "u1", func(u *store.User) error { u.OrgRoles["acme"] = "admin"; return nil })
	must(t, err)
	bs.set(false, false)
	bs.reset()
	if n := r.Stats().Size; n != 2 {
		t.Fatalf("%d entries after a reset, want both kept", n)
	}
	if got := role(); got != "admin" {
		t.Fatalf("after a reset the entry says %q, want the store's admin", got)
	}
	if s := r.Stats(); s.Rechecks != 1 {
		t.Errorf("rechecks %d, want 1", s.Rechecks)
	}
	role() // re-checked once: a plain hit again
	if s := r.Stats(); s.Rechecks != 1 {
		t.Errorf("rechecks %d after a second use, want still 1", s.Rechecks)
	}

	// Unheard changes, a reset, and the store unreachable for owners (its token facts, in
	// memory, still answer): the old entry is answered, the revoked token refused.
	bs.set(true, false)
	_, err = st.UpdateUser(ctx, "u1", func(u *store.User) error { u.OrgRoles["acme"] = "viewer"; return nil })
	must(t, err)
	must(t, st.DeleteToken(ctx, goneID))
	bs.set(false, true)
	bs.reset()
	if got := role(); got != "admin" {
		t.Fatalf("store unreachable after a reset: %q, want the cached admin", got)
	}
	if _, err := r.Resolve(ctx, gone); !errors.Is(err, ErrRevoked) {
		t.Fatalf("a token revoked before the reset: %v, want ErrRevoked", err)
	}
	bs.mu.Lock()
	reads := bs.reads
	bs.mu.Unlock()
	for range 100 {
		role()
	}
	bs.mu.Lock()
	if bs.reads != reads {
		t.Errorf("the unreachable store was tried %d more times within one RecheckInterval, want none", bs.reads-reads)
	}
	bs.mu.Unlock()
	advance(2 * time.Second)
	role() // tries again, fails, answers as before
	bs.mu.Lock()
	if bs.reads != reads+1 {
		t.Errorf("after RecheckInterval the store was tried %d times, want once", bs.reads-reads)
	}
	bs.mu.Unlock()
	if s := r.Stats(); s.StaleServed < 100 {
		t.Errorf("StaleServed %d, want every answer from the old entry", s.StaleServed)
	}

	// Past MaxStaleness: no more answers from the old entry.
	advance(30 * time.Second)
	if _, err := r.Resolve(ctx, keep); err == nil || IsAuthError(err) || !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("past MaxStaleness with the store unreachable: %v, want the store's error", err)
	}
	// The store back: the entry is re-read.
	bs.set(false, false)
	if got := role(); got != "viewer" {
		t.Fatalf("with the store back: %q, want viewer", got)
	}
}

// TestOwnJWTAfterReset: a cached JWT of ours is answered as before when its re-check cannot
// reach the store, and re-verified when it can.
func TestOwnJWTAfterReset(t *testing.T) {
	st, err := badger.Open(badger.Options{InMemory: true})
	must(t, err)
	bs := &blindStore{DB: st}
	ring := keys.NewRing(st, keys.Options{MaxTTL: time.Hour})
	r := New(bs, Options{Issuer: "rill-authd", Audience: "rill", Keys: ring, TouchInterval: -1})
	t.Cleanup(func() { r.Close(); st.Close() })
	must(t, st.CreateOrg(ctx, store.Org{Name: "acme"}))
	must(t, st.CreateService(ctx, store.Service{ID: "s-admin", Org: "acme", Name: "robot", OrgRole: "admin"}))
	_, err = ring.Ensure(ctx)
	must(t, err)
	ks, err := ring.Keyset(ctx)
	must(t, err)
	now := time.Now()
	raw, err := ks.Sign(&token.Claims{RegisteredClaims: jwt.RegisteredClaims{Issuer: "rill-authd", Audience: jwt.ClaimStrings{"rill"},
		Subject: "end@user.io", IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)), ID: token.NewID()},
		Org: "acme", Project: "web", IssuedBy: "service:s-admin"})
	must(t, err)
	_, err = r.Resolve(ctx, raw)
	must(t, err)
	bs.set(false, true)
	bs.reset()
	if _, err := r.Resolve(ctx, raw); err != nil {
		t.Fatalf("a cached JWT after a reset, the store unreachable: %v", err)
	}
	bs.set(false, false)
	_, err = st.UpdateService(ctx, "s-admin", func(s *store.Service) error { s.OrgRole = "viewer"; return nil })
	must(t, err)
	if _, err := r.Resolve(ctx, raw); !errors.Is(err, ErrIssuerAccess) {
		t.Fatalf("a JWT whose issuer lost manage_prod: %v, want ErrIssuerAccess", err)
	}
}

// TestChangedOwnerIsReadAhead: the tokens a changed owner had cached are read again in the
// background, so their next check is a hit with the owner as the store now says.
func TestChangedOwnerIsReadAhead(t *testing.T) {
	w := newWorld(t)
	_, err := w.st.UpdateUser(ctx, "u1", func(u *store.User) error { u.DisplayName = "Bobby"; return nil })
	must(t, err)
	for _, name := range []string{"u1a", "u1b"} {
		id := w.cacheID(t, w.bearer[name])
		deadline := time.Now().Add(10 * time.Second)
		for {
			s := &w.r.cache.shard[id[0]%shards]
			s.mu.RLock()
			e := s.m[id]
			s.mu.RUnlock()
			if e != nil && e != w.warmed[name] {
				if e.principal.Name != "Bobby" {
					t.Errorf("%s read ahead as %q, want Bobby", name, e.principal.Name)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s was not read again within 10s", name)
			}
			time.Sleep(time.Millisecond)
		}
	}
	before := w.r.Stats()
	res, err := w.r.Resolve(ctx, w.bearer["u1a"])
	must(t, err)
	if s := w.r.Stats(); s.Misses != before.Misses || res.Principal.Name != "Bobby" {
		t.Errorf("the check after the change: %d misses, name %q; want a hit as Bobby", s.Misses-before.Misses, res.Principal.Name)
	}
}
