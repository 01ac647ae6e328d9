package daemon_test

import (
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rill-authd/rill-authd/internal/testenv"
)

// TestSecretsAtRest: a data dir that exists 0755 is tightened to 0700 and every store file is
// 0600; without --encryption-key-file a warning says the signing keys lie unencrypted, with
// one it does not.
func TestSecretsAtRest(t *testing.T) {
	const warning = "no --encryption-key-file: the store, signing private keys included, lies unencrypted on disk"
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(data, 0o755) // whatever the test's umask
	d := testenv.Start(t, data)
	if !strings.Contains(d.Stderr(), warning) {
		t.Errorf("no warning about an unencrypted store:\n%s", d.Stderr())
	}
	d.Stop(t)
	assertPrivate(t, data)

	key := make([]byte, 32)
	rand.Read(key)
	keyFile := writeFile(t, dir, "key", hex.EncodeToString(key))
	enc := filepath.Join(dir, "encrypted")
	d = testenv.Start(t, enc, "--encryption-key-file", keyFile)
	if strings.Contains(d.Stderr(), warning) {
		t.Errorf("warned about an unencrypted store with --encryption-key-file:\n%s", d.Stderr())
	}
	d.Stop(t)
	assertPrivate(t, enc)
}

func assertPrivate(t *testing.T, dir string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if e.IsDir() {
			want = 0o700
		} else {
			n++
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %#o, want %#o", p, fi.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 4 {
		t.Fatalf("only %d files in %s", n, dir)
	}
}
