package resolver

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/store/badger"
	"github.com/rill-authd/rill-authd/token"
)

var ctx = context.Background()

type fixture struct {
	st *badger.DB
	r  *Resolver
}

func setup(t testing.TB, o Options) *fixture {
	t.Helper()
	st, err := badger.Open(badger.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	r := New(st, o)
	t.Cleanup(func() { r.Close(); st.Close() })
	must(t, st.CreateOrg(ctx, store.Org{Name: "acme"}))
	must(t, st.CreateUser(ctx, store.User{ID: "u1", Email: "bob@acme.com", OrgRoles: map[string]policy.Role{"acme": "viewer"}}))
	must(t, st.CreateService(ctx, store.Service{ID: "s1", Org: "acme", Name: "reporting", ProjectRoles: map[string]policy.Role{"web": "viewer"}}))
	return &fixture{st: st, r: r}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) issue(t testing.TB, k token.Kind, owner string, exp time.Time) (string, token.ID) {
	t.Helper()
	raw, err := token.New(k)
	must(t, err)
	must(t, f.st.CreateToken(ctx, store.Token{ID: raw.ID, Kind: k, OwnerID: owner, Prefix: raw.Display(), Hash: raw.Hash(), CreatedAt: time.Now(), ExpiresAt: exp}))
	return raw.Encode(), raw.ID
}

func TestResolve(t *testing.T) {
	f := setup(t, Options{})
	usr, _ := f.issue(t, token.User, "u1", time.Time{})
	svc, _ := f.issue(t, token.Service, "s1", time.Now().Add(time.Hour))
	expired, _ := f.issue(t, token.User, "u1", time.Now().Add(-time.Second))
	unknown, _ := token.New(token.User)
	wrongSecret, _ := token.Parse(usr)
	wrongSecret.Secret[0] ^= 1
	wrongKind, _ := token.Parse(usr)
	wrongKind.Kind = token.Service

	for _, c := range []struct {
		name    string
		in      string
		subject string
		err     error
	}{
		{"user", usr, "bob@acme.com", nil},
		{"user again (cached)", usr, "bob@acme.com", nil},
		{"service", svc, "reporting", nil},
		{"expired", expired, "", ErrExpired},
		{"expired again (cached)", expired, "", ErrExpired},
		{"unknown", unknown.Encode(), "", ErrUnknown},
		{"right id, wrong secret", wrongSecret.Encode(), "", ErrUnknown},
		{"user id presented as svc", wrongKind.Encode(), "", ErrUnknown},
		{"bad checksum", usr[:len(usr)-2] + "00", "", token.ErrBadChecksum},
		{"truncated", usr[:len(usr)-4], "", token.ErrBadLength},
		// Cut to the length of Rill's format, it is read as one: an id no store holds (leading
		// zeros trimmed: Rill's writer never puts one, so one reads as out of range instead).
		{"truncated to Rill's length", "rill_usr_" + strings.TrimLeft(usr[9:40], "0"), "", ErrUnknown},
		{"jwt alg none", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "", token.ErrJWTAlg},
		{"garbage", "hunter2", "", ErrNotRillToken},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := f.r.Resolve(ctx, c.in)
			if !errors.Is(err, c.err) {
				t.Fatalf("err = %v, want %v", err, c.err)
			}
			if c.err == nil && res.Principal.Subject != c.subject {
				t.Fatalf("subject %q", res.Principal.Subject)
			}
			if c.err != nil && !IsAuthError(err) {
				t.Fatalf("%v is not classed as an auth error", err)
			}
		})
	}
	p, _ := f.r.Resolve(ctx, svc)
	if p.Principal.ProjectRoles["acme/web"] != "viewer" || len(p.Principal.OrgRoles) != 0 {
		t.Fatalf("service roles: %+v", p.Principal)
	}
}

func TestRevocationIsImmediate(t *testing.T) {
	f := setup(t, Options{})
	usr, usrID := f.issue(t, token.User, "u1", time.Time{})
	svc, _ := f.issue(t, token.Service, "s1", time.Time{})
	for _, s := range []string{usr, svc} {
		if _, err := f.r.Resolve(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	must(t, f.st.DeleteToken(ctx, usrID))
	if _, err := f.r.Resolve(ctx, usr); !errors.Is(err, ErrRevoked) {
		t.Fatalf("revoked user token: %v", err)
	}
	// A role change is seen on the next resolve too.
	_, err := f.st.UpdateService(ctx, "s1", func(s *store.Service) error { s.OrgRole = "admin"; return nil })
	must(t, err)
	res, err := f.r.Resolve(ctx, svc)
	if err != nil || res.Principal.OrgRoles["acme"] != "admin" {
		t.Fatalf("after role change: %+v %v", res.Principal, err)
	}
	_, err = f.st.DeleteService(ctx, "s1")
	must(t, err)
	if _, err := f.r.Resolve(ctx, svc); !errors.Is(err, ErrRevoked) {
		t.Fatalf("token of deleted service: %v", err)
	}
}

// TestRevocationRace resolves a token from many goroutines while it is revoked; once
// DeleteToken has returned, no resolve that starts afterwards may succeed.
func TestRevocationRace(t *testing.T) {
	for round := 0; round < 20; round++ {
		f := setup(t, Options{})
		tok, id := f.issue(t, token.User, "u1", time.Time{})
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
						f.r.Resolve(ctx, tok)
					}
				}
			}()
		}
		time.Sleep(time.Millisecond)
		must(t, f.st.DeleteToken(ctx, id))
		for i := 0; i < 100; i++ {
			if _, err := f.r.Resolve(ctx, tok); err == nil {
				t.Fatalf("round %d: revoked token resolved after DeleteToken returned", round)
			}
		}
		close(stop)
		wg.Wait()
	}
}

func TestBadTokensNeverReachStoreOrCache(t *testing.T) {
	f := setup(t, Options{CacheSize: 128})
	good, _ := f.issue(t, token.User, "u1", time.Time{})
	before := f.r.Stats()
	for i := 0; i < 1000; i++ {
		bad := fmt.Sprintf("%s%06d", good[:len(good)-6], i)
		if _, err := f.r.Resolve(ctx, bad); err == nil {
			continue // one of them may be the real checksum
		}
	}
	after := f.r.Stats()
	if after.Misses-before.Misses > 1 || after.Size != before.Size {
		t.Fatalf("bad-checksum tokens reached the cache/store: %+v -> %+v", before, after)
	}
	// Unknown but well-formed tokens reach the store but are never cached.
	for i := 0; i < 500; i++ {
		tk, _ := token.New(token.User)
		f.r.Resolve(ctx, tk.Encode())
	}
	if s := f.r.Stats(); s.Size != 0 {
		t.Fatalf("unknown tokens were cached: %+v", s)
	}
}

func TestCacheIsBounded(t *testing.T) {
	f := setup(t, Options{CacheSize: 128})
	for i := 0; i < 600; i++ {
		tok, _ := f.issue(t, token.Service, "s1", time.Time{})
		if _, err := f.r.Resolve(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	s := f.r.Stats()
	if s.Size > 128 || s.Evictions == 0 {
		t.Fatalf("cache grew past its bound: %+v", s)
	}
}

func TestCacheHitDoesNotAllocate(t *testing.T) {
	f := setup(t, Options{})
	tok, _ := f.issue(t, token.User, "u1", time.Time{})
	f.r.Resolve(ctx, tok)
	n := testing.AllocsPerRun(1000, func() {
		if _, err := f.r.Resolve(ctx, tok); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Fatalf("cache hit allocates %v times", n)
	}
}

// memoKey is shaped like extauthz's target: a struct of strings, which an any key would box.
type memoKey struct {
	org, project string
	perm         uint64
}

func TestMemoHitDoesNotAllocate(t *testing.T) {
	f := setup(t, Options{})
	tok, _ := f.issue(t, token.User, "u1", time.Time{})
	res, err := f.r.Resolve(ctx, tok)
	must(t, err)
	key := memoKey{"acme", "web", 1}
	v := new(int)
	MemoOf[memoKey, *int](res).LoadOrStore(key, v)
	n := testing.AllocsPerRun(1000, func() {
		res, err := f.r.Resolve(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := MemoOf[memoKey, *int](res).Load(key); !ok || got != v {
			t.Fatalf("memo lost its value: %v %v", got, ok)
		}
	})
	if n != 0 {
		t.Fatalf("cache and memo hit allocates %v times", n)
	}
}

func TestMemoIsPerTokenUntilInvalidation(t *testing.T) {
	f := setup(t, Options{})
	tok1, _ := f.issue(t, token.User, "u1", time.Time{})
	tok2, _ := f.issue(t, token.User, "u1", time.Time{})
	resolve := func(tok string) *Memo[memoKey, string] {
		t.Helper()
		res, err := f.r.Resolve(ctx, tok)
		must(t, err)
		return MemoOf[memoKey, string](res)
	}
	a, b := memoKey{"acme", "web", 1}, memoKey{"acme", "data", 1}
	if got := resolve(tok1).LoadOrStore(a, "1a"); got != "1a" {
		t.Fatalf("first store gave %q", got)
	}
	if got := resolve(tok1).LoadOrStore(a, "other"); got != "1a" {
		t.Fatalf("a second store replaced the first: %q", got)
	}
	if _, ok := resolve(tok2).Load(a); ok {
		t.Fatal("one token's memo is visible to another")
	}
	// Reads promote newer keys; every key stays readable whatever the order.
	resolve(tok1).LoadOrStore(b, "1b")
	for range 3 {
		for k, want := range map[memoKey]string{a: "1a", b: "1b"} {
			if got, ok := resolve(tok1).Load(k); !ok || got != want {
				t.Fatalf("%v: %q %v, want %q", k, got, ok, want)
			}
		}
	}
	resolve(tok1).Store(a, "1a'")
	if got, _ := resolve(tok1).Load(a); got != "1a'" {
		t.Fatalf("Store did not replace: %q", got)
	}
	if _, err := f.st.UpdateUser(ctx, "u1", func(u *store.User) error { u.DisplayName = "Bob"; return nil }); err != nil {
		t.Fatal(err)
	}
	if v, ok := resolve(tok1).Load(a); ok {
		t.Fatalf("memo survived an invalidation: %q", v)
	}
	if m := MemoOf[memoKey, int](Result{}); m == nil {
		t.Fatal("no memo for a bare Result")
	}
}

func TestMemoConcurrentUse(t *testing.T) {
	var m Memo[int, int]
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				k := (i + g) % 50
				if v, ok := m.Load(k); ok && v != k {
					t.Errorf("Load(%d) = %d", k, v)
				}
				if v := m.LoadOrStore(k, k); v != k {
					t.Errorf("LoadOrStore(%d) = %d", k, v)
				}
			}
		})
	}
	wg.Wait()
	for k := range 50 {
		if v, ok := m.Load(k); !ok || v != k {
			t.Fatalf("Load(%d) = %d %v", k, v, ok)
		}
	}
}

func TestLastUsedIsRecorded(t *testing.T) {
	f := setup(t, Options{TouchInterval: 10 * time.Millisecond})
	tok, id := f.issue(t, token.User, "u1", time.Time{})
	for range 3 {
		f.r.Resolve(ctx, tok)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		rec, err := f.st.GetToken(ctx, id)
		must(t, err)
		if !rec.LastUsedAt.IsZero() {
			evs, err := f.st.ListAudit(ctx, store.AuditFilter{Actor: "rill-authd"})
			must(t, err)
			for _, e := range evs {
				if e.Action == "token.use" && e.Target == "1 tokens, 3 checks" && e.Detail == id.String()+"×3" {
					return
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("last-used time or the token use summary was never recorded")
}

func TestBearerFromHeader(t *testing.T) {
	for in, want := range map[string]string{"Bearer abc": "abc", "bearer  abc ": "abc", "BEARER abc": "abc"} {
		if got, err := BearerFromHeader(in); err != nil || got != want {
			t.Errorf("%q: %q %v", in, got, err)
		}
	}
	for in, want := range map[string]error{"": ErrMissing, "Bearer ": ErrMissing, "Basic dXNlcjpwdw==": ErrNotBearer, "abc": ErrNotBearer} {
		if _, err := BearerFromHeader(in); !errors.Is(err, want) {
			t.Errorf("%q: %v, want %v", in, err, want)
		}
	}
}

// gatedTouches blocks the first RecordUses until release is closed, so uses can be queued
// behind a flush in progress.
type gatedTouches struct {
	store.Store
	entered chan struct{}
	release chan struct{}
}

func (g *gatedTouches) RecordUses(ctx context.Context, uses map[token.ID]store.TokenUse) error {
	select {
	case g.entered <- struct{}{}:
		<-g.release
	default:
	}
	return g.Store.RecordUses(ctx, uses)
}

func TestCloseCountsQueuedUsesOnce(t *testing.T) {
	f := setup(t, Options{TouchInterval: -1})
	tok, id := f.issue(t, token.User, "u1", time.Time{})
	st := &gatedTouches{Store: f.st, entered: make(chan struct{}, 1), release: make(chan struct{})}
	r := New(st, Options{TouchInterval: time.Millisecond})
	_, err := r.Resolve(ctx, tok)
	must(t, err)
	<-st.entered // the first flush is blocked: the next uses wait in the queue
	const queued = 1000
	for range queued {
		_, err := r.Resolve(ctx, tok)
		must(t, err)
	}
	closed := make(chan struct{})
	go func() { r.Close(); close(closed) }()
	<-r.stop // Close asked the loop to stop while the uses are still queued
	close(st.release)
	<-closed

	evs, err := f.st.ListAudit(ctx, store.AuditFilter{Actor: "rill-authd"})
	must(t, err)
	checks := 0
	for _, e := range evs {
		var tokens, n int
		if e.Action != "token.use" {
			continue
		}
		if _, err := fmt.Sscanf(e.Target, "%d tokens, %d checks", &tokens, &n); err != nil || tokens != 1 {
			t.Fatalf("use summary %q (%q)", e.Target, e.Detail)
		}
		checks += n
	}
	if checks != 1+queued {
		t.Fatalf("use summaries count %d checks of token %s, want %d", checks, id, 1+queued)
	}
}

// TestLastUseWhere: a flush records where the last use that said so came from, cleaned; a use
// that says nothing of where (an introspection) moves the time and keeps the where; each token
// has its own.
func TestLastUseWhere(t *testing.T) {
	f := setup(t, Options{TouchInterval: -1})
	tok, id := f.issue(t, token.User, "u1", time.Time{})
	tok2, id2 := f.issue(t, token.Service, "s1", time.Time{})
	flush := func(steps func(r *Resolver)) {
		t.Helper()
		r := New(f.st, Options{TouchInterval: -1})
		steps(r)
		r.Close() // flushes
	}
	resolve := func(r *Resolver, tok string, u Use) {
		t.Helper()
		if _, err := r.ResolveFrom(ctx, tok, u); err != nil {
			t.Fatal(err)
		}
	}
	where := func(id token.ID) (string, string, time.Time) {
		rec, err := f.st.GetToken(ctx, id)
		must(t, err)
		return rec.LastUsedIP, rec.LastUsedUserAgent, rec.LastUsedAt
	}

	flush(func(r *Resolver) {
		resolve(r, tok, Use{Addr: "10.0.0.1:5000", UserAgent: "first"})
		resolve(r, tok, Use{Addr: "::ffff:10.0.0.2", UserAgent: "curl/8\x1b[0m\n"})
		resolve(r, tok2, Use{Addr: "2001:db8::9"})
	})
	if ip, ua, at := where(id); ip != "10.0.0.2" || ua != "curl/8\uFFFD[0m\uFFFD" || at.IsZero() {
		t.Errorf("after two uses: %q %q %v, want the last one's where, cleaned", ip, ua, at)
	}
	if ip, ua, _ := where(id2); ip != "2001:db8::9" || ua != "" {
		t.Errorf("the other token: %q %q", ip, ua)
	}
	_, _, before := where(id)
	time.Sleep(2 * time.Millisecond)
	flush(func(r *Resolver) { resolve(r, tok, Use{}) })
	if ip, ua, at := where(id); ip != "10.0.0.2" || ua != "curl/8\uFFFD[0m\uFFFD" || !at.After(before) {
		t.Errorf("after a use that says nothing of where: %q %q %v (before %v)", ip, ua, at, before)
	}
	// Within one flush, a use without a where after one with keeps the where it had.
	flush(func(r *Resolver) {
		resolve(r, tok, Use{Addr: "192.0.2.7", UserAgent: "late"})
		resolve(r, tok, Use{})
	})
	if ip, ua, _ := where(id); ip != "192.0.2.7" || ua != "late" {
		t.Errorf("a where then none in one flush: %q %q", ip, ua)
	}
}

// rillToken mints a token as Rill's authtoken package does (big.Int(id ‖ secret).Text(62)) and
// returns it with the record an import of Rill's database writes: its UUID, its kind, and
// secret_hash, the SHA-256 of the secret bytes, as Rill stores it.
func rillToken(t testing.TB, k token.Kind, owner string) (string, store.Token) {
	t.Helper()
	var raw [40]byte
	if _, err := rand.Read(raw[:]); err != nil {
		t.Fatal(err)
	}
	s := "rill_" + string(k) + "_" + new(big.Int).SetBytes(raw[:]).Text(62)
	secretHash := sha256.Sum256(raw[16:])
	h, err := token.HashFromBytes(secretHash[:])
	must(t, err)
	var id token.ID
	copy(id[:], raw[:16])
	return s, store.Token{ID: id, Kind: k, OwnerID: owner, Prefix: token.RillDisplay(k, id), Hash: h, CreatedAt: time.Now()}
}

func TestRillFormatTokens(t *testing.T) {
	f := setup(t, Options{})
	usr, usrRec := rillToken(t, token.User, "u1")
	svc, svcRec := rillToken(t, token.Service, "s1")
	must(t, f.st.ImportTokens(ctx, []store.Token{usrRec, svcRec}))
	unknown, _ := rillToken(t, token.User, "u1")
	wrongSecret, _ := token.Parse(usr)
	wrongSecret.Secret[23] ^= 1
	svcAsUsr := "rill_usr_" + svc[len("rill_svc_"):]
	for _, c := range []struct {
		name, in, subject string
		err               error
	}{
		{"user", usr, "bob@acme.com", nil},
		{"user again (cached)", usr, "bob@acme.com", nil},
		{"service", svc, "reporting", nil},
		{"unknown", unknown, "", ErrUnknown},
		{"right id, wrong secret", wrongSecret.Encode(), "", ErrUnknown},
		{"service token presented as a user's", svcAsUsr, "", ErrUnknown},
		{"truncated (no checksum: another id)", usr[:len(usr)-3], "", ErrUnknown},
		{"a digit changed", usr[:20] + map[bool]string{true: "1", false: "0"}[usr[20] == '0'] + usr[21:], "", ErrUnknown},
		{"2^320", "rill_usr_" + new(big.Int).Lsh(big.NewInt(1), 320).Text(62), "", token.ErrBadPayload},
		{"sign", "rill_usr_-" + usr[10:], "", token.ErrBadCharacter},
		{"deployment token", "rill_dpl_" + usr[9:], "", token.ErrUnknownType},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := f.r.Resolve(ctx, c.in)
			if !errors.Is(err, c.err) {
				t.Fatalf("err = %v, want %v", err, c.err)
			}
			if c.err == nil && (res.Principal.Subject != c.subject || res.TokenID != map[bool]token.ID{true: usrRec.ID, false: svcRec.ID}[c.subject == "bob@acme.com"]) {
				t.Fatalf("resolved to %q, token %s", res.Principal.Subject, res.TokenID)
			}
			if c.err != nil && !IsAuthError(err) {
				t.Fatalf("%v is not classed as an auth error", err)
			}
		})
	}
	// Revoking an imported token works as for ours.
	must(t, f.st.DeleteToken(ctx, usrRec.ID))
	if _, err := f.r.Resolve(ctx, usr); !errors.Is(err, ErrRevoked) {
		t.Fatalf("revoked Rill token: %v", err)
	}
}

// BenchmarkRefused measures what a refused rill_ token costs the resolver: a bad checksum of
// ours (no store, no cache), and a well-formed one, ours or Rill's, that no store holds (one
// lookup in the store's in-memory index; never cached).
func BenchmarkRefused(b *testing.B) {
	f := setup(b, Options{TouchInterval: -1})
	good, _ := f.issue(b, token.User, "u1", time.Time{})
	badChecksum := good[:len(good)-1] + map[bool]string{true: "1", false: "0"}[good[len(good)-1] == '0']
	oursUnknown, _ := token.New(token.User)
	rillUnknown, _ := rillToken(b, token.User, "u1")
	for _, bc := range []struct {
		name, in string
		err      error
	}{{"bad-checksum", badChecksum, token.ErrBadChecksum}, {"ours-unknown", oursUnknown.Encode(), ErrUnknown}, {"rill-format-unknown", rillUnknown, ErrUnknown}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.r.Resolve(ctx, bc.in); err != bc.err {
					b.Fatal(err)
				}
			}
		})
	}
}
