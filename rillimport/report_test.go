package rillimport_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rill-authd/rill-authd/internal/testenv"
)

// importRillSplit runs the real `rill-authd import-rill` and returns its stdout and stderr apart.
func importRillSplit(t *testing.T, dbURL string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var o, e bytes.Buffer
	cmd := exec.Command(testenv.Bin(t, "rill-authd"), append([]string{"import-rill"}, args...)...)
	cmd.Env = append(os.Environ(), "RILL_AUTHD_RILL_DATABASE_URL="+dbURL)
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// TestImportRillReportsOnStdout: the result of an import (what it would change, with whose
// tokens they are, the counts, what it left out, singular and plural right) goes to stdout,
// so `> file` catches it; progress goes to stderr. An odd database's refusal names every row
// on stderr, and --skip-orphans lists what it left out on stdout.
func TestImportRillReportsOnStdout(t *testing.T) {
	f := seed(t)
	f.db.exec("DELETE FROM user_auth_tokens WHERE id = $1", f.carolOld.ID.String()) // one expired token left
	dir := filepath.Join(t.TempDir(), "data")
	stdout, stderr, err := importRillSplit(t, f.db.URL, "--data-dir", dir, "--dry-run")
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, stderr)
	}
	for _, s := range []string{
		"would create token " + f.alice.ID.String() + " of alice@acme.io",
		"would create token " + f.loader.ID.String() + " of service beta/loader",
		"would import tokens: 8 created", "left out 1 expired token\n", "3 project role bindings limited to some resources, as in Rill",
		"dry run: nothing was written",
	} {
		if !strings.Contains(stdout, s) {
			t.Errorf("stdout lacks %q:\n%s", s, stdout)
		}
	}
	if !strings.Contains(stderr, "read Rill's admin database") || strings.Contains(stdout, "read Rill's admin database") {
		t.Errorf("progress is not on stderr only:\nstdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
	if strings.Contains(stderr, "would create") || strings.Contains(stderr, "created") {
		t.Errorf("the result went to stderr:\n%s", stderr)
	}

	// An orphan token: refused, named on stderr; with --skip-orphans, listed on stdout.
	f.db.exec("SET session_replication_role = replica")
	orphan := f.db.userToken("nobody@acme.io", "", nil, newUUID())
	stdout, stderr, err = importRillSplit(t, f.db.URL, "--data-dir", dir)
	if err == nil || !strings.Contains(stderr, "user_auth_tokens row "+orphan.ID.String()) || stdout != "" {
		t.Errorf("import with an orphan token: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("a refused import made the store: %v", err)
	}
	stdout, stderr, err = importRillSplit(t, f.db.URL, "--data-dir", dir, "--skip-orphans")
	if err != nil {
		t.Fatalf("--skip-orphans: %v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "skipped orphan user_auth_tokens row "+orphan.ID.String()) || !strings.Contains(stdout, "skipped 1 orphan row (--skip-orphans)") {
		t.Errorf("--skip-orphans stdout:\n%s", stdout)
	}
}
