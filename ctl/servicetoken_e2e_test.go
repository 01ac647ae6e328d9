package ctl_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/rill-authd/rill-authd/internal/testenv"
)

var issuedRe = regexp.MustCompile(`^Issued token: (rill_svc_[0-9A-Za-z]{60})\n$`)

// TestServiceTokenRillShapes: `rillctl service token issue|list|revoke` take the arguments of
// Rill's CLI (cli/cmd/service/token): the service as an argument or --service, and revoke by the
// token id alone.
func TestServiceTokenRillShapes(t *testing.T) {
	d := testenv.Start(t, "")
	root := cli{t: t, bin: testenv.Bin(t, "rillctl"), env: []string{"RILLCTL_API_URL=" + d.URL(), "RILLCTL_ORG=acme", "TZ=UTC"}}
	su := root.as(d.Token)
	su.ok("org", "create", "acme")
	su.ok("service", "create", "ci", "--org-role", "viewer")
	su.ok("service", "create", "other", "--org-role", "viewer")

	issue := func(args ...string) string {
		t.Helper()
		out := su.ok(append([]string{"service", "token", "issue"}, args...)...)
		m := issuedRe.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("service token issue %v printed %q, want Rill's \"Issued token: …\"", args, out)
		}
		return m[1]
	}
	byArg, byFlag, third := issue("ci"), issue("--service", "ci"), issue("ci")
	su.fails("service name is required. Use --service flag or provide as an argument", "service", "token", "issue")
	su.fails("service name is required", "service", "token", "list")
	for _, args := range [][]string{{"ci"}, {"--service", "ci"}} {
		out := su.ok(append([]string{"service", "token", "list"}, args...)...)
		for _, tok := range []string{byArg, byFlag, third} {
			if !strings.Contains(out, tok[:19]+"...") {
				t.Errorf("service token list %v does not list %s...:\n%s", args, tok[:19], out)
			}
		}
	}
	if out := su.ok("service", "token", "list", "other"); !strings.Contains(out, "rill_svc_") {
		t.Errorf("other's list: %q", out)
	}

	// revoke <token-id>: the listed prefix, or the token itself, finds its service.
	if out := su.ok("service", "token", "revoke", byArg[:19]+"..."); out != `Revoked token `+byArg[:19]+`... of service "ci".`+"\n" {
		t.Errorf("revoke by prefix printed %q", out)
	}
	if out := su.ok("service", "token", "revoke", byFlag); !strings.HasPrefix(out, "Revoked token "+byFlag[:19]) {
		t.Errorf("revoke by the token printed %q", out)
	}
	// The old form, service then token, still works.
	su.ok("service", "token", "revoke", "ci", third[:19])
	for _, tok := range []string{byArg, byFlag, third} {
		if r := root.as(tok).run("whoami"); r.code == 0 {
			t.Errorf("a revoked token still works: %s", r.out)
		}
	}
	su.fails("no service of org", "service", "token", "revoke", "rill_svc_0000000000")
}
