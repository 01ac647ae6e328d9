package daemon_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4/pb"
	"google.golang.org/protobuf/proto"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/adminapi/client"
	"github.com/rill-authd/rill-authd/internal/testenv"
)

// rewriteBackup rewrites the backup file in, changing the value of the first key with prefix
// by fn, into out.
func rewriteBackup(t *testing.T, in, out, prefix string, fn func(v []byte) []byte) string {
	t.Helper()
	b, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	var w bytes.Buffer
	changed := ""
	for len(b) > 0 {
		n := binary.LittleEndian.Uint64(b)
		var list pb.KVList
		if err := proto.Unmarshal(b[8:8+n], &list); err != nil {
			t.Fatal(err)
		}
		b = b[8+n:]
		for _, kv := range list.Kv {
			if changed == "" && strings.HasPrefix(string(kv.Key), prefix) && len(kv.Value) > 0 {
				kv.Value, changed = fn(kv.Value), string(kv.Key)
			}
		}
		frame, err := proto.Marshal(&list)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(binary.LittleEndian.AppendUint64(nil, uint64(len(frame))))
		w.Write(frame)
	}
	if changed == "" {
		t.Fatalf("no %s record in the backup", prefix)
	}
	if err := os.WriteFile(out, w.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return changed
}

// runSplit runs the real rill-authd with args and returns its stdout and stderr apart.
func runSplit(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var o, e bytes.Buffer
	cmd := exec.Command(testenv.Bin(t, "rill-authd"), args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// TestRestoreRefusesACorruptRecord: a backup whose framing is whole but one of whose records is
// not (a token record that does not decode, a user whose display name holds a NUL) is refused
// before the store is touched, naming the record: into an empty directory nothing is made, and
// with --force the working store is whole and serves as before (it was wiped first, then the
// restore failed). A good backup then replaces it with --force, built aside and swapped in, the
// result on stdout and the warning on stderr.
func TestRestoreRefusesACorruptRecord(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	d := testenv.Start(t, data)
	ctx := context.Background()
	boot := d.Token
	c := client.New(d.URL(), boot)
	svc := acmeService(t, c, "ci")
	f, err := os.Create(filepath.Join(dir, "good.backup"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Backup(ctx, f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	later, err := c.IssueServiceToken(ctx, "acme", "ci") // after the backup
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateUser(ctx, apiv1.UserRequest{Email: "ada@acme.test", Org: "acme"}); err != nil {
		t.Fatal(err)
	}
	d.Stop(t)
	good := filepath.Join(dir, "good.backup")

	badToken := filepath.Join(dir, "token.backup")
	tokKey := rewriteBackup(t, good, badToken, "tok/", func([]byte) []byte { return []byte{9, 9, 9} })
	badUser := filepath.Join(dir, "user.backup")
	userKey := rewriteBackup(t, good, badUser, "user/", func(v []byte) []byte {
		return bytes.Replace(v, []byte(`"email":"`), []byte(`"email":"a\u0000`), 1)
	})
	for file, key := range map[string]string{badToken: tokKey, badUser: userKey} {
		fresh := filepath.Join(dir, "fresh")
		_, stderr, err := runSplit(t, "restore", "--data-dir", fresh, "--from", file)
		if err == nil || !strings.Contains(stderr, key) || !strings.Contains(stderr, "not touched") {
			t.Errorf("restore of %s into a new directory: %v\n%s", filepath.Base(file), err, stderr)
		}
		if _, err := os.Stat(fresh); !os.IsNotExist(err) {
			t.Errorf("a refused restore made %s: %v", fresh, err)
		}
		_, stderr, err = runSplit(t, "restore", "--data-dir", data, "--from", file, "--force")
		if err == nil || !strings.Contains(stderr, key) {
			t.Errorf("restore --force of %s: %v\n%s", filepath.Base(file), err, stderr)
		}
	}
	// The working store is whole: everything it had, the writes after the backup too.
	d = testenv.Start(t, data)
	for name, tok := range map[string]string{"the service's": svc.Token, "the one issued after the backup": later.Token} {
		if code := checkStatus(t, d, tok); code != 200 {
			t.Errorf("%s token after the refused restores: %d", name, code)
		}
	}
	if u, err := client.New(d.URL(), boot).ListUsers(ctx, ""); err != nil || len(u) != 2 {
		t.Errorf("users after the refused restores: %v %v", u, err)
	}
	// A restore over a store in use is refused, and changes nothing.
	if _, stderr, err := runSplit(t, "restore", "--data-dir", data, "--from", good, "--force"); err == nil || !strings.Contains(stderr, "in use") {
		t.Errorf("restore --force over a running daemon's store: %v\n%s", err, stderr)
	}
	if code := checkStatus(t, d, later.Token); code != 200 {
		t.Errorf("the running daemon after a refused restore: %d", code)
	}
	d.Stop(t)

	// The good backup goes in with --force.
	stdout, stderr, err := runSplit(t, "restore", "--data-dir", data, "--from", good, "--force")
	if err != nil {
		t.Fatalf("restore --force: %v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "1 org, 1 project, 1 user, 1 service, 2 tokens, 0 tombstones") || strings.Contains(stdout, "warning") {
		t.Errorf("restore's stdout:\n%s", stdout)
	}
	if !strings.Contains(stderr, "warning: tokens revoked after this backup") || strings.Contains(stderr, "restored") {
		t.Errorf("restore's stderr:\n%s", stderr)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".data.restore-*")); len(left) != 0 {
		t.Errorf("left beside the store: %v", left)
	}
	d = testenv.Start(t, data)
	if code := checkStatus(t, d, svc.Token); code != 200 {
		t.Errorf("the service token after the restore: %d", code)
	}
	if code := checkStatus(t, d, later.Token); code != 401 {
		t.Errorf("a token issued after the backup, after the restore: %d, want 401", code)
	}
	d.Stop(t)
}
