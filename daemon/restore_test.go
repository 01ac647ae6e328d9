package daemon_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rill-authd/rill-authd/adminapi/client"
	"github.com/rill-authd/rill-authd/internal/testenv"
)

// TestRestoreIntoAnEncryptedStore restores a backup of a plain store into one encrypted with
// --encryption-key-file: the daemon serves it with the key and refuses to open it without.
func TestRestoreIntoAnEncryptedStore(t *testing.T) {
	dir := t.TempDir()
	d := testenv.Start(t, filepath.Join(dir, "plain"))
	f, err := os.OpenFile(filepath.Join(dir, "backup"), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.New(d.URL(), d.Token).Backup(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	d.Stop(t)

	key := writeFile(t, dir, "key", strings.Repeat("ab", 32))
	enc := filepath.Join(dir, "enc")
	out, err := exec.Command(testenv.Bin(t, "rill-authd"), "restore", "--data-dir", enc, "--encryption-key-file", key,
		"--from", filepath.Join(dir, "backup")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "restored") {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	if fi, err := os.Stat(enc); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("restored data dir: %v %v", fi.Mode(), err)
	}
	d2 := testenv.Start(t, enc, "--encryption-key-file", key)
	if w, err := client.New(d2.URL(), d.Token).Whoami(context.Background()); err != nil || !w.Superuser {
		t.Errorf("bootstrap superuser after restore: %+v %v", w, err)
	}
	d2.Stop(t)
	out, err = exec.Command(testenv.Bin(t, "rill-authd"), "--data-dir", enc, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Encryption key mismatch") {
		t.Errorf("the restored store opened without its key: %v\n%s", err, out)
	}
}
