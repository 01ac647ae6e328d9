//go:build unix

package badger

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// TestFileModes: a pre-existing 0755 data dir with a 0644 file left in it is tightened, and
// every file Badger creates, at open or later (the table written at close), is 0600, even
// under a permissive umask.
func TestFileModes(t *testing.T) {
	old := syscall.Umask(0o022)
	t.Cleanup(func() { syscall.Umask(old) })
	dir := filepath.Join(t.TempDir(), "data")
	must(t, os.Mkdir(dir, 0o755))
	must(t, os.Chmod(dir, 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "leftover"), []byte("x"), 0o644))

	s, err := Open(Options{Dir: dir})
	must(t, err)
	must(t, s.CreateUser(ctx, store.User{ID: "u", Email: "u@example.com"}))
	for range 200 {
		rec, _ := newToken(t, token.User, "u")
		must(t, s.CreateToken(ctx, rec))
	}
	must(t, s.Close())

	fi, err := os.Stat(dir)
	must(t, err)
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode %#o, want 0700", fi.Mode().Perm())
	}
	n := 0
	must(t, filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		n++
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %#o, want 0600", filepath.Base(p), fi.Mode().Perm())
		}
		return nil
	}))
	if n < 4 {
		t.Fatalf("only %d files in the store", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "000001.sst")); err != nil {
		t.Logf("no table written at close (%v); modes checked on %d files", err, n)
	}
}
