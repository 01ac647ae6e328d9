package ctl_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rill-authd/rill-authd/internal/testenv"
)

// TestLogoutOffline: with the server down, rillctl logout still forgets the stored token, and
// says (exit 1) which token it could not revoke; with nothing stored it says so (exit 0).
func TestLogoutOffline(t *testing.T) {
	home := t.TempDir()
	c := cli{t: t, bin: testenv.Bin(t, "rillctl"), env: []string{"HOME=" + home, "TZ=UTC"}}
	dir := filepath.Join(home, ".config", "rillctl")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "credentials.json")
	tok := "rill_usr_" + strings.Repeat("A", 60)
	if err := os.WriteFile(path, []byte(`{"url":"http://127.0.0.1:1","token":"`+tok+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	// Every command uses the stored server and token when none is given.
	c.fails("cannot reach rill-authd at http://127.0.0.1:1", "whoami")

	c.fails("removed the stored credentials, but could not revoke token rill_usr_AAAAAAAAAA…", "logout")
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("the credentials file is still there: %v", err)
	}
	if out := c.ok("logout"); !strings.Contains(out, "Not signed in") {
		t.Fatalf("logout with nothing stored: %q", out)
	}
	c.fails("no token: run rillctl login", "whoami")

	// A symlink where the file goes is refused, not followed.
	if err := os.Symlink(filepath.Join(home, "elsewhere"), path); err != nil {
		t.Fatal(err)
	}
	c.fails("not a regular file", "whoami")
}
