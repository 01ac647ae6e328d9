package postgres

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// The behaviours of the embedded engine's tests, on PostgreSQL, until store/storetest runs
// on both.

func TestOrgsAndProjects(t *testing.T) {
	s := freshDB(t)
	must(t, s.CreateOrg(ctx, store.Org{Name: "acme"}))
	if err := s.CreateOrg(ctx, store.Org{Name: "acme"}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate org: %v", err)
	}
	if err := s.CreateProject(ctx, store.Project{Org: "nope", Name: "p"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("project in missing org: %v", err)
	}
	must(t, s.CreateProject(ctx, store.Project{Org: "acme", Name: "web"}))
	must(t, s.CreateProject(ctx, store.Project{Org: "acme", Name: "api"}))
	if err := s.CreateProject(ctx, store.Project{Org: "acme", Name: "web"}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate project: %v", err)
	}
	ps, err := s.ListProjects(ctx, "acme")
	must(t, err)
	if len(ps) != 2 || ps[0].Name != "api" || ps[1].Name != "web" {
		t.Fatalf("projects: %+v", ps)
	}
	if _, err := s.GetProject(ctx, "acme", "zzz"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing project: %v", err)
	}
	os, err := s.ListOrgs(ctx)
	if err != nil || len(os) != 1 || os[0].Name != "acme" {
		t.Fatalf("orgs: %+v %v", os, err)
	}
}

func TestServicesIndexAndCascade(t *testing.T) {
	s := freshDB(t)
	var changes []store.Change
	var mu sync.Mutex
	s.Subscribe(func(cs []store.Change) {
		mu.Lock()
		for _, c := range cs {
			if c.AffectsDecisions() {
				changes = append(changes, c)
			}
		}
		mu.Unlock()
	})

	must(t, s.CreateOrg(ctx, store.Org{Name: "acme"}))
	must(t, s.CreateOrg(ctx, store.Org{Name: "other"}))
	if err := s.CreateService(ctx, store.Service{ID: "s0", Org: "missing", Name: "x"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("service in missing org: %v", err)
	}
	must(t, s.CreateService(ctx, store.Service{ID: "s1", Org: "acme", Name: "reporting", OrgRole: "admin"}))
	must(t, s.CreateService(ctx, store.Service{ID: "s2", Org: "acme", Name: "viewer"}))
	must(t, s.CreateService(ctx, store.Service{ID: "s3", Org: "other", Name: "reporting"}))
	if err := s.CreateService(ctx, store.Service{ID: "s4", Org: "acme", Name: "reporting"}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate service name: %v", err)
	}
	got, err := s.GetServiceByName(ctx, "acme", "reporting")
	must(t, err)
	if got.ID != "s1" || got.OrgRole != "admin" {
		t.Fatalf("by name: %+v", got)
	}
	if _, err := s.UpdateService(ctx, "s1", func(sv *store.Service) error { sv.Name = "viewer"; return nil }); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("rename onto taken name: %v", err)
	}
	_, err = s.UpdateService(ctx, "s1", func(sv *store.Service) error { sv.Name = "renamed"; sv.Org = "other"; return nil })
	must(t, err)
	if _, err := s.GetServiceByName(ctx, "acme", "reporting"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("old name still indexed: %v", err)
	}
	if got, err := s.GetServiceByName(ctx, "acme", "renamed"); err != nil || got.ID != "s1" || got.Org != "acme" {
		t.Fatalf("renamed: %+v %v (org must not change)", got, err)
	}
	list, err := s.ListServices(ctx, "acme")
	must(t, err)
	if len(list) != 2 || list[0].Name != "renamed" || list[1].Name != "viewer" {
		t.Fatalf("list: %+v", list)
	}

	tk1, _ := newToken(t, token.Service, "s1")
	tk2, _ := newToken(t, token.Service, "s1")
	tk3, _ := newToken(t, token.Service, "s2")
	must(t, s.CreateToken(ctx, tk1))
	must(t, s.CreateToken(ctx, tk2))
	must(t, s.CreateToken(ctx, tk3))
	orphan, _ := newToken(t, token.Service, "ghost")
	if err := s.CreateToken(ctx, orphan); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("token for missing owner: %v", err)
	}
	if toks, err := s.ListTokens(ctx, "s1"); err != nil || len(toks) != 2 {
		t.Fatalf("tokens of s1: %d %v", len(toks), err)
	}
	if n, err := s.DeleteService(ctx, "s1"); err != nil || n != 2 {
		t.Fatalf("DeleteService revoked %d tokens (%v), want 2", n, err)
	}
	for _, id := range []token.ID{tk1.ID, tk2.ID} {
		if _, err := s.GetToken(ctx, id); !errors.Is(err, store.ErrRevoked) || !strings.Contains(err.Error(), "service deleted") {
			t.Fatalf("token %s survived its service: %v", id, err)
		}
	}
	if _, err := s.GetToken(ctx, tk3.ID); err != nil {
		t.Fatalf("other service's token gone: %v", err)
	}
	if _, err := s.GetServiceByName(ctx, "acme", "renamed"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("name index survived: %v", err)
	}
	if _, err := s.DeleteService(ctx, "s1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	var seen []string
	for _, c := range changes {
		seen = append(seen, fmt.Sprint(c.Kind, " ", c.Op, " ", c.ID))
	}
	// The service's delete is the one change of the cascade: it revokes both tokens. A token put
	// affects decisions too (it may change the token's allowed networks).
	want := []string{"service put s1", "service put s2", "service put s3", "service put s1",
		"token put " + tk1.ID.String(), "token put " + tk2.ID.String(), "token put " + tk3.ID.String(), "service delete s1"}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Fatalf("changes %v, want %v", seen, want)
	}
}

func TestUsersAndTokens(t *testing.T) {
	s := freshDB(t)
	u := store.User{ID: "u1", Email: "bob@acme.com", OrgRoles: map[string]policy.Role{"acme": "viewer"}, Orgs: map[string]store.UserOrg{"acme": {Attributes: map[string]any{"n": 1.5, "tags": []any{"a"}}}}}
	must(t, s.CreateUser(ctx, u))
	if err := s.CreateUser(ctx, store.User{ID: "u2", Email: "bob@acme.com"}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate email: %v", err)
	}
	must(t, s.CreateUser(ctx, store.User{ID: "u2", Email: "amy@acme.com"}))
	if _, err := s.UpdateUser(ctx, "u1", func(u *store.User) error { u.Email = "amy@acme.com"; return nil }); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("email change onto taken: %v", err)
	}
	_, err := s.UpdateUser(ctx, "u1", func(u *store.User) error { u.Email = "robert@acme.com"; u.OrgRoles["acme"] = "admin"; return nil })
	must(t, err)
	got, err := s.GetUserByEmail(ctx, "robert@acme.com")
	must(t, err)
	if got.ID != "u1" || got.OrgRoles["acme"] != "admin" || got.Orgs["acme"].Attributes["n"] != 1.5 {
		t.Fatalf("updated user: %+v", got)
	}
	if _, err := s.GetUserByEmail(ctx, "bob@acme.com"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("old email still indexed: %v", err)
	}
	if us, err := s.ListUsers(ctx); err != nil || len(us) != 2 || us[0].ID != "u1" {
		t.Fatalf("users: %+v %v", us, err)
	}
	tk, raw := newToken(t, token.User, "u1")
	tk.ExpiresAt = time.Now().Add(time.Hour)
	tk.DisplayName, tk.CreatedBy = "laptop", "u1"
	must(t, s.CreateToken(ctx, tk))
	if err := s.CreateToken(ctx, tk); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("same token id twice: %v", err)
	}
	used := time.Now().Add(time.Minute)
	gone, _ := newToken(t, token.User, "u1") // never stored
	must(t, s.TouchTokens(ctx, map[token.ID]time.Time{tk.ID: used, gone.ID: used}))
	must(t, s.TouchTokens(ctx, map[token.ID]time.Time{tk.ID: used.Add(-time.Hour)})) // never moves back
	back, err := s.GetToken(ctx, tk.ID)
	must(t, err)
	if !back.LastUsedAt.Equal(used) || back.Hash != tk.Hash || !back.ExpiresAt.Equal(tk.ExpiresAt) || !back.CreatedAt.Equal(tk.CreatedAt) ||
		back.DisplayName != "laptop" || back.CreatedBy != "u1" || back.Prefix != tk.Prefix || back.Kind != token.User {
		t.Fatalf("token record: %+v, want %+v", back, tk)
	}
	if a, err := s.TokenAuth(ctx, raw.ID); err != nil || a.OwnerID != "u1" || a.Hash != raw.Hash() || !a.ExpiresAt.Equal(tk.ExpiresAt) {
		t.Fatalf("TokenAuth: %+v %v", a, err)
	}
	tk2, raw2 := newToken(t, token.User, "u1")
	must(t, s.CreateToken(ctx, tk2))
	must(t, s.DeleteToken(ctx, tk2.ID))
	if _, err := s.GetToken(ctx, tk2.ID); !errors.Is(err, store.ErrRevoked) || errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("revoked token: %v", err)
	}
	if _, err := s.TokenAuth(ctx, raw2.ID); !errors.Is(err, store.ErrRevoked) {
		t.Fatalf("TokenAuth of a revoked token: %v", err)
	}
	if err := s.DeleteToken(ctx, tk2.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoking twice: %v", err)
	}
	never, _ := newToken(t, token.User, "u1") // never stored
	if _, err := s.GetToken(ctx, never.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown token: %v", err)
	}
	if n, err := s.DeleteUser(ctx, "u1"); err != nil || n != 1 {
		t.Fatalf("DeleteUser revoked %d tokens (%v), want 1", n, err)
	}
	if _, err := s.GetToken(ctx, tk.ID); !errors.Is(err, store.ErrRevoked) || !strings.Contains(err.Error(), "user deleted") {
		t.Fatalf("token survived its user: %v", err)
	}
	if _, err := s.TokenAuth(ctx, raw.ID); !errors.Is(err, store.ErrRevoked) || !strings.Contains(err.Error(), "user deleted") {
		t.Fatalf("TokenAuth of a deleted user's token: %v", err)
	}
	if _, err := s.GetUserByEmail(ctx, "robert@acme.com"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("email index survived: %v", err)
	}
}

func TestAuditFilter(t *testing.T) {
	s := freshDB(t)
	base := time.Now().Add(-time.Hour)
	for i := range 10 {
		actor := "alice"
		if i%2 == 1 {
			actor = "bob"
		}
		must(t, s.AppendAudit(ctx, store.AuditEvent{Time: base.Add(time.Duration(i) * time.Minute), Actor: actor, Action: fmt.Sprint("a", i), Outcome: "ok"}))
	}
	all, err := s.ListAudit(ctx, store.AuditFilter{})
	must(t, err)
	if len(all) != 10 || all[0].Action != "a0" || all[9].Action != "a9" {
		t.Fatalf("all: %+v", all)
	}
	bob, _ := s.ListAudit(ctx, store.AuditFilter{Actor: "bob"})
	since, _ := s.ListAudit(ctx, store.AuditFilter{Since: base.Add(5 * time.Minute)})
	last, _ := s.ListAudit(ctx, store.AuditFilter{Limit: 3})
	if len(bob) != 5 || len(since) != 5 || since[0].Action != "a5" || len(last) != 3 || last[0].Action != "a7" {
		t.Fatalf("bob=%d since=%d/%v last=%v", len(bob), len(since), since, last)
	}
}

func TestBootstrapRunsOnce(t *testing.T) {
	u := newDatabase(t)
	runs := 0
	for i := range 2 {
		s, err := Open(ctx, Options{URL: u})
		must(t, err)
		ran, err := s.Bootstrap(ctx, func(context.Context) error { runs++; return nil })
		must(t, err)
		if ran != (i == 0) {
			t.Fatalf("start %d: ran=%v", i, ran)
		}
		must(t, s.Close())
	}
	if runs != 1 {
		t.Fatalf("bootstrap ran %d times", runs)
	}
	s := freshDB(t)
	if ran, err := s.Bootstrap(ctx, func(context.Context) error { return errors.New("boom") }); ran || err == nil {
		t.Fatalf("failed bootstrap: ran=%v err=%v", ran, err)
	}
	if ran, err := s.Bootstrap(ctx, func(context.Context) error { return nil }); !ran || err != nil {
		t.Fatalf("retry after failed bootstrap: ran=%v err=%v", ran, err)
	}
}

func TestReopenFindsEverything(t *testing.T) {
	u := newDatabase(t)
	s, err := Open(ctx, Options{URL: u})
	must(t, err)
	must(t, s.CreateOrg(ctx, store.Org{Name: "acme"}))
	must(t, s.CreateProject(ctx, store.Project{Org: "acme", Name: "web"}))
	must(t, s.CreateUser(ctx, store.User{ID: "u1", Email: "a@acme.com", Superuser: true}))
	must(t, s.CreateService(ctx, store.Service{ID: "s1", Org: "acme", Name: "svc", Attributes: map[string]any{"tier": "gold"}}))
	tk, raw := newToken(t, token.Service, "s1")
	must(t, s.CreateToken(ctx, tk))
	gone, rawGone := newToken(t, token.Service, "s1")
	must(t, s.CreateToken(ctx, gone))
	must(t, s.DeleteToken(ctx, gone.ID))
	must(t, s.PutSigningKey(ctx, store.SigningKey{KID: "k1", PrivateKey: []byte{1, 2, 3}, CreatedAt: time.Now()}))
	must(t, s.AppendAudit(ctx, store.AuditEvent{Actor: "a", Action: "x"}))
	seq, err := s.LastSeq(ctx)
	must(t, err)
	must(t, s.Close())
	if err := s.CreateOrg(ctx, store.Org{Name: "late"}); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}

	s = openDB(t, u)
	if _, err := s.GetProject(ctx, "acme", "web"); err != nil {
		t.Fatal(err)
	}
	if u, err := s.GetUserByEmail(ctx, "a@acme.com"); err != nil || !u.Superuser {
		t.Fatalf("user: %+v %v", u, err)
	}
	if sv, err := s.GetServiceByName(ctx, "acme", "svc"); err != nil || sv.Attributes["tier"] != "gold" {
		t.Fatalf("service: %+v %v", sv, err)
	}
	if got, err := s.TokenAuth(ctx, raw.ID); err != nil || got.Hash != tk.Hash {
		t.Fatalf("token: %+v %v", got, err)
	}
	if _, err := s.TokenAuth(ctx, rawGone.ID); !errors.Is(err, store.ErrRevoked) {
		t.Fatalf("revoked token after reopen: %v", err)
	}
	if ks, err := s.ListSigningKeys(ctx); err != nil || len(ks) != 1 || ks[0].KID != "k1" || string(ks[0].PrivateKey) != "\x01\x02\x03" {
		t.Fatalf("keys: %+v %v", ks, err)
	}
	if ev, err := s.ListAudit(ctx, store.AuditFilter{}); err != nil || len(ev) != 1 {
		t.Fatalf("audit: %+v %v", ev, err)
	}
	if applied, _ := s.Current(); applied != seq {
		t.Fatalf("reopened at sequence %d, want %d", applied, seq)
	}
}

func TestSigningKeysEncrypted(t *testing.T) {
	u := newDatabase(t)
	key := make([]byte, 32)
	rand.Read(key)
	secret := []byte("-----PRIVATE KEY MATERIAL-----")
	s := openDB(t, u, func(o *Options) { o.EncryptionKey = key })
	must(t, s.PutSigningKey(ctx, store.SigningKey{KID: "k1", PrivateKey: secret, CreatedAt: time.Now()}))
	var stored []byte
	must(t, s.pool.QueryRow(ctx, "SELECT private_key FROM signing_keys").Scan(&stored))
	if strings.Contains(string(stored), string(secret)) {
		t.Fatal("the private key is stored in plaintext")
	}
	if ks, err := s.ListSigningKeys(ctx); err != nil || len(ks) != 1 || string(ks[0].PrivateKey) != string(secret) {
		t.Fatalf("keys: %+v %v", ks, err)
	}
	// A row's ciphertext is bound to its kid.
	_, err := s.pool.Exec(ctx, "INSERT INTO signing_keys (kid, private_key, encrypted, created_at, doc) SELECT 'k2', private_key, true, created_at + 1, doc FROM signing_keys")
	must(t, err)
	if _, err := s.ListSigningKeys(ctx); err == nil {
		t.Fatal("a ciphertext moved to another kid decrypted")
	}
	_, err = s.pool.Exec(ctx, "DELETE FROM signing_keys WHERE kid = 'k2'")
	must(t, err)
	for _, wrong := range [][]byte{nil, make([]byte, 32)} {
		if s, err := Open(ctx, Options{URL: u, EncryptionKey: wrong}); err == nil {
			s.Close()
			t.Fatalf("opened with the wrong key %x", wrong)
		}
	}
}

func TestImportTokensAndCounts(t *testing.T) {
	s := freshDB(t)
	must(t, s.CreateUser(ctx, store.User{ID: "u1", Email: "a@b.c"}))
	must(t, s.CreateOrg(ctx, store.Org{Name: "acme"}))
	must(t, s.CreateService(ctx, store.Service{ID: "s1", Org: "acme", Name: "ci"}))
	changes := 0
	s.Subscribe(func([]store.Change) { changes++ })
	defer func(n int) { importBatch = n }(importBatch)
	importBatch = 300
	var batch []store.Token
	var raws []token.Token
	for i := range 1000 {
		owner, k := "u1", token.User
		if i%2 == 1 {
			owner, k = "s1", token.Service
		}
		tk, raw := newToken(t, k, owner)
		batch, raws = append(batch, tk), append(raws, raw)
	}
	must(t, s.ImportTokens(ctx, batch))
	if changes != 4 {
		t.Errorf("import of 4 batches notified %d writes", changes)
	}
	for _, owner := range []string{"u1", "s1"} {
		if got, err := s.ListTokens(ctx, owner); err != nil || len(got) != 500 {
			t.Errorf("%s has %d tokens (%v), want 500", owner, len(got), err)
		}
	}
	if _, err := s.TokenAuth(ctx, raws[999].ID); err != nil {
		t.Errorf("last imported token: %v", err)
	}
	orphan, _ := newToken(t, token.User, "nobody")
	fresh, _ := newToken(t, token.User, "u1")
	if err := s.ImportTokens(ctx, []store.Token{fresh, orphan}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown owner: %v", err)
	}
	if _, err := s.GetToken(ctx, fresh.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a refused import wrote %s: %v", fresh.ID, err)
	}
	if err := s.ImportTokens(ctx, []store.Token{batch[0]}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate id: %v", err)
	}
	want := func(usr, svc uint64) {
		t.Helper()
		got, err := s.CountTokens(ctx)
		must(t, err)
		if got[token.User] != usr || got[token.Service] != svc {
			t.Fatalf("counts %v, want usr %d svc %d", got, usr, svc)
		}
	}
	want(500, 500)
	must(t, s.DeleteToken(ctx, batch[0].ID))
	want(499, 500)
	n, err := s.DeleteService(ctx, "s1")
	if err != nil || n != 500 {
		t.Fatalf("DeleteService revoked %d (%v)", n, err)
	}
	want(499, 0)
	if _, err := s.TokenAuth(ctx, raws[999].ID); !errors.Is(err, store.ErrRevoked) {
		t.Fatalf("token of a deleted service: %v", err)
	}
	if l := s.idx.Load().Len(); l != 499 {
		t.Fatalf("index holds %d tokens, want 499", l)
	}
}

// TestFeedGaplessAndOrdered writes from several goroutines; the feed's sequences run 1..n with
// no gap, subscribers saw each once in order, and ChangesSince and LastSeq agree.
func TestFeedGaplessAndOrdered(t *testing.T) {
	s := freshDB(t)
	var (
		mu   sync.Mutex
		seen []uint64
	)
	s.Subscribe(func(cs []store.Change) {
		mu.Lock()
		for _, c := range cs {
			seen = append(seen, c.Seq)
		}
		mu.Unlock()
	})
	must(t, s.CreateOrg(ctx, store.Org{Name: "acme"}))
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				if err := s.CreateService(ctx, store.Service{ID: fmt.Sprint(w, "-", i), Org: "acme", Name: fmt.Sprint("svc-", w, "-", i)}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	last, err := s.LastSeq(ctx)
	must(t, err)
	cs, err := s.ChangesSince(ctx, 0, 0)
	must(t, err)
	if last != 101 || len(cs) != 101 {
		t.Fatalf("LastSeq %d, %d changes, want 101", last, len(cs))
	}
	for i, c := range cs {
		if c.Seq != uint64(i+1) {
			t.Fatalf("change %d has sequence %d", i, c.Seq)
		}
	}
	if page, err := s.ChangesSince(ctx, 50, 10); err != nil || len(page) != 10 || page[0].Seq != 51 {
		t.Fatalf("a page: %v %v", page, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 101 || !slices.IsSorted(seen) || seen[0] != 1 || seen[100] != 101 {
		t.Fatalf("subscribers saw %v", seen)
	}
	// A point older than the feed keeps says so.
	must(t, s.prune(ctx, time.Now().Add(feedRetention+time.Minute)))
	if _, err := s.ChangesSince(ctx, 0, 0); !errors.Is(err, store.ErrFeedTruncated) {
		t.Fatalf("after pruning: %v", err)
	}
	if cs, err := s.ChangesSince(ctx, 100, 0); err != nil || len(cs) != 1 || cs[0].Seq != 101 {
		t.Fatalf("the newest change is kept: %v %v", cs, err)
	}
}

// countingTracer counts the queries a pool sends.
type countingTracer struct {
	mu sync.Mutex
	n  int
}

func (c *countingTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return ctx
}
func (c *countingTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (c *countingTracer) count() int                                                      { c.mu.Lock(); defer c.mu.Unlock(); return c.n }

// TestCheckNeverQueries: live, revoked and never-seen tokens are all answered from memory, so a
// flood of random tokens costs no query.
func TestCheckNeverQueries(t *testing.T) {
	tr := &countingTracer{}
	s := openDB(t, newDatabase(t), func(o *Options) { o.tracer = tr })
	must(t, s.CreateUser(ctx, store.User{ID: "u1", Email: "a@b.c"}))
	live, rawLive := newToken(t, token.User, "u1")
	gone, rawGone := newToken(t, token.User, "u1")
	must(t, s.CreateToken(ctx, live))
	must(t, s.CreateToken(ctx, gone))
	must(t, s.DeleteToken(ctx, gone.ID))
	before := tr.count()
	for range 10_000 {
		raw, _ := token.New(token.User)
		if _, err := s.TokenAuth(ctx, raw.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("random token: %v", err)
		}
	}
	if _, err := s.TokenAuth(ctx, rawLive.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TokenAuth(ctx, rawGone.ID); !errors.Is(err, store.ErrRevoked) {
		t.Fatal(err)
	}
	if n := tr.count() - before; n != 0 {
		t.Fatalf("checks sent %d queries, want none", n)
	}
}

func TestConcurrentMigrations(t *testing.T) {
	u := newDatabase(t)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(ctx, Options{URL: u})
			if err == nil {
				s.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		must(t, err)
	}
	s := openDB(t, u)
	var n, v int
	must(t, s.pool.QueryRow(ctx, "SELECT count(*), max(version) FROM schema_migrations").Scan(&n, &v))
	ms, err := migrations()
	must(t, err)
	if n != len(ms) || v != ms[len(ms)-1].version {
		t.Fatalf("schema_migrations has %d rows up to %d, want %d", n, v, len(ms))
	}
}
