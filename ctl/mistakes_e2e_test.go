package ctl_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/rill-authd/rill-authd/internal/testenv"
)

// TestNewcomerMistakes runs the real rillctl against a real daemon with the mistakes a new
// user makes, and checks each gets one line that says what to do.
func TestNewcomerMistakes(t *testing.T) {
	d := testenv.Start(t, "")
	bin := testenv.Bin(t, "rillctl")
	run := func(stdin *os.File, args ...string) (string, string, int) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "RILLCTL_TOKEN="+d.Token, "RILLCTL_API_URL="+d.URL())
		cmd.Stdin = stdin
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), errb.String(), code
	}
	oneLine := func(what, stderr string, code, wantCode int, want ...string) {
		t.Helper()
		if code != wantCode || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
			t.Errorf("%s: exit %d (want %d), stderr not one line: %q", what, code, wantCode, stderr)
		}
		for _, w := range want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%s: stderr %q lacks %q", what, stderr, w)
			}
		}
	}

	// /dev/null is a character device but no terminal: no prompt, the flag is named.
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	out, stderr, code := run(devnull, "token", "issue", "--user", "admin@localhost")
	oneLine("token issue, stdin /dev/null", stderr, code, 1, "--display-name is required when stdin is not a terminal")
	if strings.Contains(out, "Display name:") {
		t.Errorf("token issue prompted with stdin not a terminal: %q", out)
	}
	// The API's own /v1 in --api-url, and a URL below the server's root.
	_, stderr, code = run(devnull, "--api-url", d.URL()+"/v1", "whoami")
	oneLine("--api-url .../v1", stderr, code, 1, "give the server's root URL ("+d.URL()+")", "without /v1")
	_, stderr, code = run(devnull, "--api-url", d.URL()+"/v1/", "whoami")
	oneLine("--api-url .../v1/", stderr, code, 1, "give the server's root URL ("+d.URL()+")")
	_, stderr, code = run(devnull, "--api-url", d.URL()+"/authd", "whoami")
	oneLine("--api-url below the root", stderr, code, 1, "HTTP 404", "should be the server's root")
	_, stderr, code = run(devnull, "--api-url", "127.0.0.1:8080", "whoami")
	oneLine("--api-url without a scheme", stderr, code, 1, "is not an http:// or https:// URL")
	// http:// to a TLS listener: Go's server answers a plain 400; the hint names the fix.
	tlsSrv := httptest.NewTLSServer(http.NotFoundHandler())
	defer tlsSrv.Close()
	_, stderr, code = run(devnull, "--api-url", strings.Replace(tlsSrv.URL, "https://", "http://", 1), "whoami")
	oneLine("http:// to a TLS server", stderr, code, 1, "HTTP 400", "the server speaks TLS: use https:// in --api-url")
	// A 404 of the API itself (JSON) gets no such hint: the URL is right.
	_, stderr, code = run(devnull, "service", "show", "nope", "--org", "nope")
	if code == 0 || strings.Contains(stderr, "server's root") {
		t.Errorf("a 404 of the API itself: exit %d %q", code, stderr)
	}

	// Usage mistakes: one line with a hint, exit 2, no usage; --version exists.
	out, stderr, code = run(devnull, "--api-urll", d.URL(), "whoami")
	oneLine("--api-urll", stderr, code, 2, `did you mean "--api-url"?`, "rillctl --help")
	if out != "" || strings.Contains(stderr, "Usage") {
		t.Errorf("a usage mistake printed the usage: %q %q", out, stderr)
	}
	out, stderr, code = run(devnull, "--version")
	if code != 0 || strings.TrimSpace(out) == "" || stderr != "" {
		t.Errorf("rillctl --version: exit %d, stdout %q, stderr %q", code, out, stderr)
	}

	// The quick start's org viewer: 403 on a project until given a project role, as in Rill.
	for _, args := range [][]string{{"org", "create", "acme"}, {"project", "create", "web", "--org", "acme"},
		{"user", "create", "dev@example.com", "--org", "acme", "--org-role", "viewer"}} {
		if _, stderr, code := run(devnull, args...); code != 0 {
			t.Fatalf("rillctl %v: %s", args, stderr)
		}
	}
	out, stderr, code = run(devnull, "token", "issue", "--user", "dev@example.com", "--display-name", "first")
	tok := strings.TrimSpace(out[strings.LastIndex(out, "Token: ")+len("Token: "):])
	if code != 0 || !strings.HasPrefix(tok, "rill_usr_") {
		t.Fatalf("token issue: %d %q %q", code, out, stderr)
	}
	if got := checkHTTP(t, d, tok); got != 403 {
		t.Errorf("an org viewer's check on acme/web: %d, want 403", got)
	}
	if _, stderr, code := run(devnull, "user", "set-role", "dev@example.com", "--org", "acme", "--project", "web", "--project-role", "viewer"); code != 0 {
		t.Fatal(stderr)
	}
	if got := checkHTTP(t, d, tok); got != 200 {
		t.Errorf("with a project role: %d, want 200", got)
	}
}
