package badger

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

var ctx = context.Background()

func memStore(t *testing.T) *DB {
	t.Helper()
	s, err := Open(Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func newToken(t *testing.T, k token.Kind, owner string) (store.Token, token.Token) {
	t.Helper()
	raw, err := token.New(k)
	must(t, err)
	return store.NewToken(raw, owner, "", "", time.Now(), 0), raw
}

func TestOrgsAndProjects(t *testing.T) {
	s := memStore(t)
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
}

func TestServicesIndexAndCascade(t *testing.T) {
	s := memStore(t)
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
	must(t, s.CreateService(ctx, store.Service{ID: "s3", Org: "other", Name: "reporting"})) // same name, other org
	if err := s.CreateService(ctx, store.Service{ID: "s4", Org: "acme", Name: "reporting"}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate service name: %v", err)
	}
	got, err := s.GetServiceByName(ctx, "acme", "reporting")
	must(t, err)
	if got.ID != "s1" || got.OrgRole != "admin" {
		t.Fatalf("by name: %+v", got)
	}

	// Rename keeps the index unique and moves it.
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
	if len(list) != 2 {
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
	toks, err := s.ListTokens(ctx, "s1")
	must(t, err)
	if len(toks) != 2 {
		t.Fatalf("tokens of s1: %d", len(toks))
	}

	if n, err := s.DeleteService(ctx, "s1"); err != nil || n != 2 {
		t.Fatalf("DeleteService revoked %d tokens (%v), want 2", n, err)
	}
	for _, id := range []string{tk1.ID, tk2.ID} {
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
	// The creates, the rename, then the delete with the tokens it revoked (in id order); not
	// the token creates.
	gone := []string{tk1.ID, tk2.ID}
	slices.Sort(gone)
	var seen []string
	for _, c := range changes {
		seen = append(seen, fmt.Sprint(c.Kind, " ", c.Op, " ", c.ID))
	}
	want := []string{"service put s1", "service put s2", "service put s3", "service put s1", "service delete s1", "token delete " + gone[0], "token delete " + gone[1]}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Fatalf("changes %v, want %v", seen, want)
	}
}

func TestUsersAndTokens(t *testing.T) {
	s := memStore(t)
	u := store.User{ID: "u1", Email: "bob@acme.com", OrgRoles: map[string]policy.Role{"acme": "viewer"}}
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
	if got.ID != "u1" || got.OrgRoles["acme"] != "admin" {
		t.Fatalf("updated user: %+v", got)
	}
	if _, err := s.GetUserByEmail(ctx, "bob@acme.com"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("old email still indexed: %v", err)
	}
	tk, _ := newToken(t, token.User, "u1")
	tk.ExpiresAt = time.Now().Add(time.Hour)
	must(t, s.CreateToken(ctx, tk))
	if err := s.CreateToken(ctx, tk); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("same token id twice: %v", err)
	}
	used := time.Now().Add(time.Minute).Truncate(time.Second)
	must(t, s.TouchTokens(ctx, map[string]time.Time{tk.ID: used, "gone": used}))
	back, err := s.GetToken(ctx, tk.ID)
	must(t, err)
	if !back.LastUsedAt.Equal(used) || back.Hash != tk.Hash || !back.ExpiresAt.Equal(tk.ExpiresAt) {
		t.Fatalf("token record: %+v", back)
	}
	tk2, _ := newToken(t, token.User, "u1")
	must(t, s.CreateToken(ctx, tk2))
	must(t, s.DeleteToken(ctx, tk2.ID))
	if _, err := s.GetToken(ctx, tk2.ID); !errors.Is(err, store.ErrRevoked) || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoked token: %v", err)
	}
	if err := s.DeleteToken(ctx, tk2.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoking twice: %v", err)
	}
	if _, err := s.GetToken(ctx, "never-existed"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown token: %v", err)
	}
	if n, err := s.DeleteUser(ctx, "u1"); err != nil || n != 1 {
		t.Fatalf("DeleteUser revoked %d tokens (%v), want 1", n, err)
	}
	if _, err := s.GetToken(ctx, tk.ID); !errors.Is(err, store.ErrRevoked) {
		t.Fatalf("token survived its user: %v", err)
	}
	if _, err := s.GetUserByEmail(ctx, "robert@acme.com"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("email index survived: %v", err)
	}
}

func TestTokenExpired(t *testing.T) {
	now := time.Now()
	cases := []struct {
		exp  time.Time
		want bool
	}{{time.Time{}, false}, {now.Add(time.Second), false}, {now, true}, {now.Add(-time.Second), true}}
	for _, c := range cases {
		tk := store.Token{ExpiresAt: c.exp}
		if got := tk.Expired(now); got != c.want {
			t.Errorf("Expired(exp=%v) = %v", c.exp, got)
		}
	}
}

func TestAuditFilter(t *testing.T) {
	s := memStore(t)
	base := time.Now().Add(-time.Hour)
	for i := 0; i < 10; i++ {
		actor := "alice"
		if i%2 == 1 {
			actor = "bob"
		}
		must(t, s.AppendAudit(ctx, store.AuditEvent{Time: base.Add(time.Duration(i) * time.Minute), Actor: actor, Action: "a" + strconv.Itoa(i), Outcome: "ok"}))
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
	dir := t.TempDir()
	runs := 0
	for i := 0; i < 2; i++ {
		s, err := Open(Options{Dir: dir})
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
	s := memStore(t)
	if ran, err := s.Bootstrap(ctx, func(context.Context) error { return errors.New("boom") }); ran || err == nil {
		t.Fatalf("failed bootstrap: ran=%v err=%v", ran, err)
	}
	if ran, err := s.Bootstrap(ctx, func(context.Context) error { return nil }); !ran || err != nil {
		t.Fatalf("retry after failed bootstrap: ran=%v err=%v", ran, err)
	}
}

func TestReopenFindsEverything(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir})
	must(t, err)
	must(t, s.CreateOrg(ctx, store.Org{Name: "acme"}))
	must(t, s.CreateProject(ctx, store.Project{Org: "acme", Name: "web"}))
	must(t, s.CreateUser(ctx, store.User{ID: "u1", Email: "a@acme.com", Superuser: true}))
	must(t, s.CreateService(ctx, store.Service{ID: "s1", Org: "acme", Name: "svc", Attributes: map[string]any{"tier": "gold"}}))
	tk, _ := newToken(t, token.Service, "s1")
	must(t, s.CreateToken(ctx, tk))
	must(t, s.PutSigningKey(ctx, store.SigningKey{KID: "k1", PrivateKey: []byte{1, 2, 3}, CreatedAt: time.Now()}))
	must(t, s.AppendAudit(ctx, store.AuditEvent{Actor: "a", Action: "x"}))
	must(t, s.Close())

	s, err = Open(Options{Dir: dir})
	must(t, err)
	defer s.Close()
	if _, err := s.GetProject(ctx, "acme", "web"); err != nil {
		t.Fatal(err)
	}
	if u, err := s.GetUserByEmail(ctx, "a@acme.com"); err != nil || !u.Superuser {
		t.Fatalf("user: %+v %v", u, err)
	}
	if sv, err := s.GetServiceByName(ctx, "acme", "svc"); err != nil || sv.Attributes["tier"] != "gold" {
		t.Fatalf("service: %+v %v", sv, err)
	}
	if got, err := s.GetToken(ctx, tk.ID); err != nil || got.Hash != tk.Hash {
		t.Fatalf("token: %+v %v", got, err)
	}
	if ks, err := s.ListSigningKeys(ctx); err != nil || len(ks) != 1 || ks[0].KID != "k1" {
		t.Fatalf("keys: %+v %v", ks, err)
	}
	if ev, err := s.ListAudit(ctx, store.AuditFilter{}); err != nil || len(ev) != 1 {
		t.Fatalf("audit: %+v %v", ev, err)
	}
}

func TestEncryptionAtRest(t *testing.T) {
	dir := t.TempDir()
	key := make([]byte, 32)
	rand.Read(key)
	s, err := Open(Options{Dir: dir, EncryptionKey: key})
	must(t, err)
	must(t, s.CreateOrg(ctx, store.Org{Name: "secret-org-name"}))
	must(t, s.Close())

	// The plaintext must not be in any file on disk.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		b, _ := os.ReadFile(dir + "/" + e.Name())
		if strings.Contains(string(b), "secret-org-name") {
			t.Fatalf("plaintext found in %s", e.Name())
		}
	}
	wrong := make([]byte, 32)
	if s, err := Open(Options{Dir: dir, EncryptionKey: wrong}); err == nil {
		s.Close()
		t.Fatal("opened with the wrong key")
	}
	s, err = Open(Options{Dir: dir, EncryptionKey: key})
	must(t, err)
	defer s.Close()
	if _, err := s.GetOrg(ctx, "secret-org-name"); err != nil {
		t.Fatal(err)
	}
}

func TestCrashLosesNothingAcknowledged(t *testing.T) {
	if dir := os.Getenv("RILL_AUTHD_CRASH_CHILD"); dir != "" {
		crashChild(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashLosesNothingAcknowledged$")
	cmd.Env = append(os.Environ(), "RILL_AUTHD_CRASH_CHILD="+dir)
	out, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())
	acked := -1
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if n, ok := strings.CutPrefix(sc.Text(), "ack "); ok {
			acked, _ = strconv.Atoi(n)
			if acked >= 200 {
				break
			}
		}
	}
	must(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	if acked < 200 {
		t.Fatalf("child acknowledged only %d writes", acked)
	}
	s, err := Open(Options{Dir: dir})
	must(t, err)
	defer s.Close()
	for i := 0; i <= acked; i++ {
		if _, err := s.GetService(ctx, fmt.Sprintf("s%d", i)); err != nil {
			t.Fatalf("acknowledged write %d of %d lost: %v", i, acked, err)
		}
	}
}

func crashChild(dir string) {
	s, err := Open(Options{Dir: dir})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	if err := s.CreateOrg(ctx, store.Org{Name: "acme"}); err != nil {
		os.Exit(1)
	}
	for i := 0; ; i++ {
		if err := s.CreateService(ctx, store.Service{ID: fmt.Sprintf("s%d", i), Org: "acme", Name: fmt.Sprintf("svc-%d", i)}); err != nil {
			os.Exit(1)
		}
		fmt.Printf("ack %d\n", i) // acknowledged only after the write returned
	}
}

func TestImportTokens(t *testing.T) {
	s := memStore(t)
	must(t, s.CreateUser(ctx, store.User{ID: "u1", Email: "a@b.c"}))
	must(t, s.CreateOrg(ctx, store.Org{Name: "acme"}))
	must(t, s.CreateService(ctx, store.Service{ID: "s1", Org: "acme", Name: "ci"}))
	changes := 0
	s.Subscribe(func([]store.Change) { changes++ })

	var batch []store.Token
	defer func(n int) { importBatch = n }(importBatch)
	importBatch = 300 // several transactions, and a last one that is not full
	for i := range 1000 {
		owner, k := "u1", token.User
		if i%2 == 1 {
			owner, k = "s1", token.Service
		}
		tk, _ := newToken(t, k, owner)
		batch = append(batch, tk)
	}
	must(t, s.ImportTokens(ctx, batch))
	if changes == 0 {
		t.Error("import notified no subscriber: caches would keep stale entries")
	}
	for _, owner := range []string{"u1", "s1"} {
		got, err := s.ListTokens(ctx, owner)
		must(t, err)
		if len(got) != 500 {
			t.Errorf("%s has %d tokens, want 500", owner, len(got))
		}
	}
	if _, err := s.GetToken(ctx, batch[999].ID); err != nil {
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
}

func TestTokenCounts(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir})
	must(t, err)
	must(t, s.CreateOrg(ctx, store.Org{Name: "acme"}))
	must(t, s.CreateUser(ctx, store.User{ID: "u1", Email: "a@b.c"}))
	must(t, s.CreateService(ctx, store.Service{ID: "s1", Org: "acme", Name: "ci"}))
	want := func(usr, svc uint64) {
		t.Helper()
		got, err := s.CountTokens(ctx)
		must(t, err)
		if got[token.User] != usr || got[token.Service] != svc {
			t.Fatalf("counts %v, want usr %d svc %d", got, usr, svc)
		}
	}
	u1, _ := newToken(t, token.User, "u1")
	u2, _ := newToken(t, token.User, "u1")
	must(t, s.CreateToken(ctx, u1))
	must(t, s.CreateToken(ctx, u2))
	var svc []store.Token
	for range 3 {
		tk, _ := newToken(t, token.Service, "s1")
		svc = append(svc, tk)
	}
	must(t, s.ImportTokens(ctx, svc))
	want(2, 3)
	must(t, s.DeleteToken(ctx, u1.ID))
	want(1, 3)
	_, err = s.DeleteService(ctx, "s1") // the cascade counts too
	must(t, err)
	want(1, 0)
	// Counts survive a reopen, and a store without them is counted once on open.
	must(t, s.Close())
	s, err = Open(Options{Dir: dir})
	must(t, err)
	want(1, 0)
	must(t, s.db.Update(func(txn *badger.Txn) error {
		for _, k := range []string{"v1", "usr", "svc"} {
			if err := txn.Delete([]byte(pCount + k)); err != nil {
				return err
			}
		}
		return nil
	}))
	must(t, s.Close())
	s, err = Open(Options{Dir: dir})
	must(t, err)
	defer s.Close()
	want(1, 0)
}
