package badger

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

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

// TestTokenCountsRecountedOnOpen: a store written before the live-token counts existed is
// counted once on open. (That counts follow every write and survive a reopen is the suite's.)
func TestTokenCountsRecountedOnOpen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir})
	must(t, err)
	must(t, s.CreateOrg(ctx, store.Org{Name: "acme"}))
	must(t, s.CreateUser(ctx, store.User{ID: "u1", Email: "a@b.c"}))
	must(t, s.CreateService(ctx, store.Service{ID: "s1", Org: "acme", Name: "ci"}))
	u, _ := newToken(t, token.User, "u1")
	must(t, s.CreateToken(ctx, u))
	var svc []store.Token
	for range 3 {
		tk, _ := newToken(t, token.Service, "s1")
		svc = append(svc, tk)
	}
	must(t, s.ImportTokens(ctx, svc))
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
	if got, err := s.CountTokens(ctx); err != nil || got[token.User] != 1 || got[token.Service] != 3 {
		t.Fatalf("counts after open: %v, %v; want usr 1 svc 3", got, err)
	}
}
