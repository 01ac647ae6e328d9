package console_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/rill-authd/rill-authd/internal/testenv"
)

// TestNothingElseLinksTheConsole keeps the console out of the check path and out of rillctl:
// neither links the console, its browser-test library, or (the check path) the admin API.
func TestNothingElseLinksTheConsole(t *testing.T) {
	for _, pkg := range []string{"./extauthz", "./resolver", "./policy", "./store/...", "./cmd/rillctl", "./ctl"} {
		cmd := exec.Command("go", "list", "-deps", pkg)
		cmd.Dir = testenv.ModuleRoot()
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasSuffix(dep, "/console") || strings.Contains(dep, "chromedp") ||
				(pkg != "./cmd/rillctl" && pkg != "./ctl" && strings.HasSuffix(dep, "rill-authd/adminapi")) {
				t.Errorf("%s links %s", pkg, dep)
			}
		}
	}
}
