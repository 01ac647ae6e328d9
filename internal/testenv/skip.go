package testenv

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// SkipLogEnv names the file where Unavailable records each test it skips, one line each;
// `make test` sets it and prints one line per skipped area after the suite, since go test
// shows a passing package's skips only with -v.
const SkipLogEnv = "RILL_AUTHD_SKIP_LOG"

// Unavailable stops a test that needs something this machine lacks (area: "PostgreSQL",
// "nginx", "caddy", ...): under CI=true it fails it, since CI installs everything; otherwise it
// skips it, loudly: a line on stderr, and one in the file named by RILL_AUTHD_SKIP_LOG. how
// says what would make the test run.
func Unavailable(t testing.TB, area, how string) {
	t.Helper()
	msg := fmt.Sprintf("%s: %s", area, how)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: a missing prerequisite is a failure)", msg)
	}
	if path := os.Getenv(SkipLogEnv); path != "" {
		// One short write with O_APPEND: lines from packages tested in parallel do not mix.
		if f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); err == nil {
			fmt.Fprintf(f, "%s: %s\n", area, strings.ReplaceAll(how, "\n", " "))
			f.Close()
		}
	}
	fmt.Fprintf(os.Stderr, "!!! SKIPPED %s: %s\n", t.Name(), msg)
	t.Skip("SKIPPED: " + msg)
}
