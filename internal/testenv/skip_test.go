package testenv_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/rill-authd/rill-authd/internal/testenv"
)

// TestMakeTestListsSkips runs the Makefile's test step on a package whose one test needs
// PostgreSQL, without PostgreSQL: the output names the skipped area and how to run it (go test
// alone prints only "ok"), the exit is 0; under CI=true the same run fails.
func TestMakeTestListsSkips(t *testing.T) {
	mk, err := exec.LookPath("make")
	if err != nil {
		testenv.Unavailable(t, "make", "make is not installed; apt-get install make")
	}
	goBin, err := exec.LookPath("go") // go test puts its own GOROOT/bin first in PATH
	if err != nil {
		t.Fatal(err)
	}
	run := func(ci string) (string, error) {
		cmd := exec.Command(mk, "--no-print-directory", "unit", "GO="+goBin, "PKGS=./internal/testenv/testdata/skipdemo")
		cmd.Dir = testenv.ModuleRoot()
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "RILL_AUTHD_TEST_POSTGRES=") && !strings.HasPrefix(kv, "CI=") && !strings.HasPrefix(kv, testenv.SkipLogEnv+"=") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		cmd.Env = append(cmd.Env, "CI="+ci)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("")
	if err != nil {
		t.Fatalf("make unit with a skip: %v\n%s", err, out)
	}
	var line string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "SKIPPED PostgreSQL") {
			line = l
		}
	}
	if !strings.Contains(line, "(1 test(s))") || !strings.Contains(line, "source .ci/pg.sh && make test") || !strings.Contains(line, "RILL_AUTHD_TEST_POSTGRES") {
		t.Errorf("make unit does not list the skipped PostgreSQL test with how to run it:\n%s", out)
	}
	if out, err := run("true"); err == nil || !strings.Contains(out, "FAIL") {
		t.Errorf("make unit under CI=true passed with PostgreSQL missing: %v\n%s", err, out)
	}
}
