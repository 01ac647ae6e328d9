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
	// The gRPC check port instead of the admin port: its HTTP/2 frames are named, with the flag.
	_, stderr, code = run(devnull, "--api-url", "http://"+d.GRPCAddr, "whoami")
	oneLine("--api-url at --grpc-addr", stderr, code, 1, "as a gRPC port does: --api-url is rill-authd's --http-addr, not its --grpc-addr")
	// The web console's URL: its HTML page is named in one line, not pasted, with the right URL.
	for _, u := range []string{d.URL() + "/ui/", d.URL() + "/ui"} {
		_, stderr, code = run(devnull, "--api-url", u, "whoami")
		oneLine("--api-url "+u, stderr, code, 1, "the answer is an HTML page", "should be the server's root, "+d.URL()+", not the web console's /ui/")
		if strings.Contains(strings.ToLower(stderr), "<html") || strings.Contains(strings.ToLower(stderr), "<!doctype") || len(stderr) > 400 {
			t.Errorf("--api-url %s: the HTML page is in the error: %q", u, stderr)
		}
	}
	// Rill's docs say --display-name; a newcomer types --name.
	_, stderr, code = run(devnull, "token", "issue", "--name", "x")
	oneLine("token issue --name", stderr, code, 2, `unknown flag --name, did you mean "--display-name"?`, "rillctl token issue --help")
	_, stderr, code = run(devnull, "service", "create", "x", "--role", "admin", "--org", "nope")
	oneLine("service create --role", stderr, code, 2, `unknown flag --role, did you mean one of "--org-role", "--project-role"?`)
	// A duration where minutes are wanted: the hint says what to give.
	_, stderr, code = run(devnull, "token", "issue", "--display-name", "x", "--ttl-minutes", "1h")
	oneLine("--ttl-minutes 1h", stderr, code, 2, `got "1h"`, "give whole minutes, such as 60 (an hour)")
	// A missing --org names RILLCTL_ORG.
	_, stderr, code = run(devnull, "service", "list")
	oneLine("service list without an org", stderr, code, 2, "--org", "set RILLCTL_ORG")
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
	// Another user's token, revoked without --user: the hint names --user.
	_, stderr, code = run(devnull, "token", "revoke", tok[:len("rill_usr_")+10])
	oneLine("token revoke of another user's token", stderr, code, 1, "no token", "--user EMAIL")
	_, stderr, code = run(devnull, "token", "revoke", "--display-name", "first")
	oneLine("token revoke --display-name of another user's token", stderr, code, 1, "no token named", "--user EMAIL")
	// A public URL without --frontend-url on the daemon: the token on stdout, and on stderr one
	// line saying what makes it a URL.
	out, stderr, code = run(devnull, "public-url", "create", "web", "sales", "--org", "acme")
	if code != 0 || !strings.HasPrefix(out, "rill_mgc_") || strings.Count(out, "\n") != 1 {
		t.Errorf("public-url create without --frontend-url: exit %d, stdout %q", code, out)
	}
	oneLine("public-url create without --frontend-url", stderr, code, 0, "--frontend-url", "<frontend-url>/acme/web/-/share/<token>")

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

// TestHelpEveryCommand: every rillctl command's --help works and shows no "($-)" (kong's
// placeholder for an env:"-" tag where no default environment prefix is set).
func TestHelpEveryCommand(t *testing.T) {
	bin := testenv.Bin(t, "rillctl")
	help := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(bin, append(args, "--help")...).CombinedOutput()
		if err != nil {
			t.Fatalf("rillctl %v --help: %v\n%s", args, err, out)
		}
		return string(out)
	}
	top := help()
	var cmds [][]string
	in := false
	for _, l := range strings.Split(top, "\n") {
		switch {
		case strings.HasPrefix(l, "Commands:"):
			in = true
		case in && strings.HasPrefix(l, "  ") && len(l) > 2 && l[2] != ' ':
			words := strings.Fields(l)
			var cmd []string
			for _, w := range words {
				if strings.HasPrefix(w, "<") || strings.HasPrefix(w, "[") || strings.HasPrefix(w, "-") || strings.ToLower(w) != w {
					break
				}
				cmd = append(cmd, w)
			}
			cmds = append(cmds, cmd)
		}
	}
	if len(cmds) < 20 {
		t.Fatalf("found %d commands in rillctl --help:\n%s", len(cmds), top)
	}
	for _, cmd := range append([][]string{nil}, cmds...) {
		out := help(cmd...)
		if strings.Contains(out, "($-)") || !strings.Contains(out, "--version") {
			t.Errorf("rillctl %s --help: has ($-) or lacks --version:\n%s", strings.Join(cmd, " "), out)
		}
	}
}
