package signin_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/rill-authd/rill-authd/internal/testenv"
)

// TestSignInStaysOffTheCheckPath: the check path links no sign-in code (no provider is asked
// during a check), rillctl links none, and the test OpenID provider (zitadel/oidc) is in no
// binary.
func TestSignInStaysOffTheCheckPath(t *testing.T) {
	for _, pkg := range []string{"./extauthz", "./resolver", "./policy", "./store/...", "./cmd/rillctl", "./ctl", "./cmd/rill-authd"} {
		cmd := exec.Command("go", "list", "-deps", pkg)
		cmd.Dir = testenv.ModuleRoot()
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			if strings.Contains(dep, "zitadel") || (pkg != "./cmd/rill-authd" &&
				(strings.HasSuffix(dep, "rill-authd/signin") || strings.Contains(dep, "go-oidc") || strings.Contains(dep, "x/oauth2"))) {
				t.Errorf("%s links %s", pkg, dep)
			}
		}
	}
}
