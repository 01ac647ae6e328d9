package badger

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

func diskStore(t *testing.T, dir string, key []byte) *DB {
	t.Helper()
	s, err := Open(Options{Dir: dir, EncryptionKey: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// seed gives s what a daemon's store holds: the bootstrap mark, an org, a user and a service
// with tokens, a signing key and an audit event.
func seed(t *testing.T, s *DB) map[string]token.Token {
	t.Helper()
	_, err := s.Bootstrap(ctx, func(ctx context.Context) error { return nil })
	must(t, err)
	must(t, s.CreateOrg(ctx, store.Org{Name: "acme"}))
	must(t, s.CreateUser(ctx, store.User{ID: "u1", Email: "a@acme.io", Superuser: true}))
	must(t, s.CreateService(ctx, store.Service{ID: "s1", Org: "acme", Name: "robot", OrgRole: "admin"}))
	must(t, s.PutSigningKey(ctx, store.SigningKey{KID: "k1", PrivateKey: []byte("der"), CreatedAt: time.Now().UTC()}))
	must(t, s.AppendAudit(ctx, store.AuditEvent{Time: time.Now(), Actor: "test", Action: "seed", Outcome: "ok"}))
	toks := map[string]token.Token{}
	for _, name := range []string{"usr-a", "usr-b", "usr-gone"} {
		rec, raw := newToken(t, token.User, "u1")
		must(t, s.CreateToken(ctx, rec))
		toks[name] = raw
	}
	rec, raw := newToken(t, token.Service, "s1")
	rec.AllowedNetworks = []string{"10.0.0.0/8", "2001:db8::/32"} // kept by backup and restore
	must(t, s.CreateToken(ctx, rec))
	toks["svc"] = raw
	must(t, s.DeleteToken(ctx, toks["usr-gone"].ID))
	return toks
}

func backupFile(t *testing.T, s *DB) string {
	t.Helper()
	var buf bytes.Buffer
	if _, err := s.Backup(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "store.backup")
	must(t, os.WriteFile(p, buf.Bytes(), 0o600))
	return p
}

func TestBackupAndRestore(t *testing.T) {
	src := diskStore(t, t.TempDir(), nil)
	toks := seed(t, src)
	// Sign-in rules (in the org record) are restored with the rest.
	rules := store.SigninRules{Domains: []store.DomainRule{{Domain: "acme.io", OrgRole: "viewer"}}, Groups: []store.GroupRule{{Group: "eng", OrgRole: "editor", AttributeGroups: []string{"data"}}}}
	if _, err := src.SetSigninRules(ctx, "acme", rules); err != nil {
		t.Fatal(err)
	}
	// A notification waiting in the outbox is restored with the rest.
	if _, err := src.EnqueueNotifications(ctx, []store.Notification{{ID: "token.leaked:x@audit", Sink: "audit", Body: []byte(`{"id":"token.leaked:x"}`)}}); err != nil {
		t.Fatal(err)
	}
	seq, _ := src.LastSeq(ctx)
	counts, _ := src.CountTokens(ctx)
	file := backupFile(t, src)
	// After the backup: a revoke and a new token, which the restore does not know of.
	must(t, src.DeleteToken(ctx, toks["usr-b"].ID))
	late, _ := newToken(t, token.User, "u1")
	must(t, src.CreateToken(ctx, late))

	dir := filepath.Join(t.TempDir(), "restored")
	stats, err := Restore(Options{Dir: dir}, file, false)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Orgs != 1 || stats.Users != 1 || stats.SigningKeys != 1 || stats.LastSeq != seq ||
		stats.Tokens[token.User] != counts[token.User] || stats.Tokens[token.Service] != 1 || stats.Keys == 0 {
		t.Errorf("stats %+v, want seq %d and counts %v", stats, seq, counts)
	}
	s := diskStore(t, dir, nil)
	for _, name := range []string{"usr-a", "usr-b", "svc"} {
		ta, err := s.TokenAuth(ctx, toks[name].ID)
		if err != nil || !toks[name].Matches(ta.Hash) || ta.Kind != toks[name].Kind {
			t.Errorf("%s after restore: %+v %v", name, ta, err)
		}
	}
	if _, err := s.TokenAuth(ctx, toks["usr-gone"].ID); !errors.Is(err, store.ErrRevoked) {
		t.Errorf("token revoked before the backup: %v, want revoked", err)
	}
	if ta, err := s.TokenAuth(ctx, toks["svc"].ID); err != nil || ta.Limits == nil || len(ta.Limits.Networks) != 2 {
		t.Errorf("the service token's allowed networks after restore: %+v %v", ta, err)
	}
	if _, err := s.GetToken(ctx, late.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("token made after the backup: %v, want not found", err)
	}
	if ran, err := s.Bootstrap(ctx, func(ctx context.Context) error { return nil }); ran || err != nil {
		t.Errorf("a restored store bootstrapped again: %v %v", ran, err)
	}
	if n, err := s.GetNotification(ctx, "token.leaked:x@audit"); err != nil || string(n.Body) != `{"id":"token.leaked:x"}` {
		t.Errorf("outbox after restore: %+v %v", n, err)
	}
	if o, err := s.GetOrg(ctx, "acme"); err != nil || !reflect.DeepEqual(o.SigninRules, rules) {
		t.Errorf("sign-in rules after restore: %+v %v", o.SigninRules, err)
	}
	if ks, _ := s.ListSigningKeys(ctx); len(ks) != 1 || string(ks[0].PrivateKey) != "der" {
		t.Errorf("signing keys: %+v", ks)
	}
	// The restored store takes writes, after what it restored in the feed.
	rec, _ := newToken(t, token.Service, "s1")
	must(t, s.CreateToken(ctx, rec))
	if cs, err := s.ChangesSince(ctx, seq, 0); err != nil || len(cs) != 1 || cs[0].Seq != seq+1 {
		t.Errorf("feed after restore: %+v %v", cs, err)
	}
}

func TestRestoreOnlyIntoAnEmptyStore(t *testing.T) {
	dir := t.TempDir()
	src := diskStore(t, dir, nil)
	toks := seed(t, src)
	file := backupFile(t, src)
	late, _ := newToken(t, token.User, "u1")
	must(t, src.CreateToken(ctx, late))
	must(t, src.Close())

	if _, err := Restore(Options{Dir: dir}, file, false); !errors.Is(err, ErrNotEmpty) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("restore over a store: %v", err)
	}
	s := diskStore(t, dir, nil)
	if _, err := s.GetToken(ctx, late.ID); err != nil {
		t.Fatalf("a refused restore changed the store: %v", err)
	}
	must(t, s.Close())

	if _, err := Restore(Options{Dir: dir}, file, true); err != nil {
		t.Fatal(err)
	}
	s = diskStore(t, dir, nil)
	if _, err := s.GetToken(ctx, late.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("--force kept a token the backup lacks: %v", err)
	}
	if _, err := s.TokenAuth(ctx, toks["usr-a"].ID); err != nil {
		t.Errorf("--force restore: %v", err)
	}
	if n, _ := s.CountTokens(ctx); n[token.User] != 2 || n[token.Service] != 1 || s.idx.Len() != 3 {
		t.Errorf("counts %v and index %d after --force, want 2+1", n, s.idx.Len())
	}
}

func TestRestoreRefusesBadBackups(t *testing.T) {
	src := diskStore(t, t.TempDir(), nil)
	seed(t, src)
	good, err := os.ReadFile(backupFile(t, src))
	must(t, err)
	unmarked := diskStore(t, t.TempDir(), nil)
	must(t, unmarked.CreateOrg(ctx, store.Org{Name: "acme"}))
	foreign, err := os.ReadFile(backupFile(t, unmarked))
	must(t, err)
	junk := make([]byte, 4096)
	rand.Read(junk)

	for name, tc := range map[string]struct {
		data []byte
		want string
	}{
		"empty":           {nil, "it is empty"},
		"cut mid-part":    {good[:len(good)-3], "truncated"},
		"stray bytes":     {append(append([]byte{}, good...), 1, 2, 3), "stray bytes"},
		"random":          {junk, "not a backup"},
		"huge claim":      {[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0}, "claims"},
		"another badger":  {foreign, "not a rill-authd backup"},
		"text":            {[]byte("hello, this is not a backup at all\n"), "not a backup"},
		"cut after frame": {good[:8], "claims"},
	} {
		file := filepath.Join(t.TempDir(), "bad")
		must(t, os.WriteFile(file, tc.data, 0o600))
		dir := filepath.Join(t.TempDir(), "data")
		_, err := Restore(Options{Dir: dir}, file, false)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
		if _, serr := os.Stat(dir); serr == nil {
			t.Errorf("%s: a refused backup created the store", name)
		}
	}
	if _, err := Restore(Options{Dir: t.TempDir()}, "/nonexistent/backup", false); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
}

// TestBackupIsConsistent backs up while tokens are issued: every write is wholly in the backup
// or wholly out of it, so the counts, the records and the feed of the restored store agree.
func TestBackupIsConsistent(t *testing.T) {
	src := diskStore(t, t.TempDir(), nil)
	seed(t, src)
	bulk := make([]store.Token, 20_000)
	for i := range bulk {
		bulk[i], _ = newToken(t, token.User, "u1")
	}
	must(t, src.ImportTokens(ctx, bulk))

	var stop atomic.Bool
	var wg sync.WaitGroup
	var written atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			raw, err := token.New(token.Service)
			if err == nil {
				err = src.CreateToken(ctx, store.NewToken(raw, "s1", "", "", time.Now(), 0))
			}
			if err != nil {
				t.Error(err)
				return
			}
			written.Add(1)
		}
	}()
	for written.Load() < 5 {
		time.Sleep(time.Millisecond)
	}
	file := backupFile(t, src)
	stop.Store(true)
	wg.Wait()

	dir := filepath.Join(t.TempDir(), "restored")
	_, err := Restore(Options{Dir: dir}, file, false)
	must(t, err)
	restored := diskStore(t, dir, nil)
	n, _ := restored.CountTokens(ctx)
	if total := int(n[token.User] + n[token.Service]); total != restored.idx.Len() {
		t.Errorf("counts %v, but %d token records", n, restored.idx.Len())
	}
	// The feed holds one token change per token record past the seed, with no gap.
	last, _ := restored.LastSeq(ctx)
	cs, err := restored.ChangesSince(ctx, 0, 0)
	must(t, err)
	if len(cs) == 0 || cs[len(cs)-1].Seq != last {
		t.Fatalf("feed of %d changes, last seq %d", len(cs), last)
	}
	for i, c := range cs {
		if c.Seq != cs[0].Seq+uint64(i) {
			t.Fatalf("feed has a gap before %d", c.Seq)
		}
	}
	svc := 0
	for _, c := range cs {
		if c.Kind == store.ChangeToken && c.Op == store.OpPut {
			if ta, err := restored.TokenAuth(ctx, mustID(t, c.ID)); err == nil && ta.Kind == token.Service {
				svc++
			}
		}
	}
	if svc != int(n[token.Service]) {
		t.Errorf("%d service tokens in the feed, %d counted", svc, n[token.Service])
	}
	t.Logf("backed up while %d tokens were issued; %d service tokens made it in", written.Load(), svc)
}

func mustID(t *testing.T, s string) token.ID {
	t.Helper()
	id, err := token.ParseID(s)
	must(t, err)
	return id
}

func TestBackupOfAnEncryptedStore(t *testing.T) {
	key := make([]byte, 32)
	rand.Read(key)
	src := diskStore(t, t.TempDir(), key)
	toks := seed(t, src)
	file := backupFile(t, src)
	other := make([]byte, 16)
	rand.Read(other)
	dir := t.TempDir()
	_, err := Restore(Options{Dir: dir, EncryptionKey: other}, file, false)
	must(t, err)
	if _, err := Open(Options{Dir: dir}); err == nil {
		t.Fatal("the restored store opened without its key")
	}
	s := diskStore(t, dir, other)
	if _, err := s.TokenAuth(ctx, toks["svc"].ID); err != nil {
		t.Fatal(err)
	}
	must(t, src.Close())
	if _, err := src.Backup(ctx, &bytes.Buffer{}); !errors.Is(err, store.ErrClosed) {
		t.Errorf("backup of a closed store: %v", err)
	}
}
