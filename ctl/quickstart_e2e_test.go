package ctl_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rill-authd/rill-authd/internal/testenv"
)

// TestQuickStartReadme runs the README's quick start ("Managing credentials: rillctl": from
// nothing to a checked token) in bash, as written but for the bootstrap token and the host (the
// RILLCTL_API_URL line), with the real rillctl and curl against the real daemon, and finds every
// line the README shows the check answering (status and x-rill-* headers; "…" stands for what
// differs per run) in curl's output.
func TestQuickStartReadme(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		testenv.Unavailable(t, "curl", "the README's quick start runs curl: apt-get install curl (.ci/run does)")
		return
	}
	readme, err := os.ReadFile(filepath.Join(testenv.ModuleRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Managing credentials: rillctl\n")
	if !ok {
		t.Fatal("README has no section \"Managing credentials: rillctl\"")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var blocks []string
	for rest := section; ; {
		_, after, ok := strings.Cut(rest, "```sh\n")
		if !ok {
			break
		}
		block, tail, _ := strings.Cut(after, "```\n")
		blocks, rest = append(blocks, block), tail
	}
	if len(blocks) < 2 || !strings.Contains(blocks[1], "curl ") {
		t.Fatalf("the quick start should be two sh blocks, the second a curl check; found %d:\n%s", len(blocks), strings.Join(blocks, "----\n"))
	}

	d := testenv.Start(t, "")
	const bootstrap = "export RILLCTL_TOKEN=rill_usr_…"
	if !strings.Contains(blocks[0], bootstrap) {
		t.Fatalf("the quick start does not begin with %q:\n%s", bootstrap, blocks[0])
	}
	// The host is replaced in the first block only, where the reader exports RILLCTL_API_URL: a
	// reader who ran the daemon on another --http-addr changes that one line, and the curl check
	// must follow it rather than name the default port again.
	const apiURL = "export RILLCTL_API_URL=http://127.0.0.1:8080"
	if !strings.Contains(blocks[0], apiURL) {
		t.Fatalf("the quick start does not set %q for rillctl and curl:\n%s", apiURL, blocks[0])
	}
	if strings.Contains(blocks[1], "127.0.0.1:8080") {
		t.Fatalf("the quick start's check names the default port instead of $RILLCTL_API_URL:\n%s", blocks[1])
	}
	script := strings.Replace(strings.Replace(blocks[0], bootstrap, "export RILLCTL_TOKEN="+d.Token, 1),
		apiURL, "export RILLCTL_API_URL="+d.URL(), 1) + "\n" + blocks[1]
	var want []string
	for _, l := range strings.Split(blocks[1], "\n") {
		if s, ok := strings.CutPrefix(l, "# "); ok && (strings.HasPrefix(s, "HTTP/") || strings.HasPrefix(s, "X-Rill-")) {
			want = append(want, s)
		}
	}
	if len(want) < 9 {
		t.Fatalf("the quick start's check shows %d lines of its answer, want the status and the x-rill-* headers:\n%s", len(want), blocks[1])
	}

	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(testenv.Bin(t, "rillctl"))+":"+filepath.Dir(curl)+":"+os.Getenv("PATH"),
		"RILLCTL_API_URL="+d.URL(), "RILLCTL_ORG=", "RILLCTL_TOKEN=")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("the quick start failed: %v\nscript:\n%s\nstdout:\n%s\nstderr:\n%s", err, script, out.String(), errb.String())
	}
	got := map[string]bool{}
	for _, l := range strings.Split(strings.ReplaceAll(out.String(), "\r", ""), "\n") {
		got[strings.ToLower(l)] = true
	}
	for _, w := range want {
		found := got[strings.ToLower(w)]
		if prefix, ok := strings.CutSuffix(w, "…"); ok {
			for l := range got {
				found = found || (strings.HasPrefix(l, strings.ToLower(prefix)) && len(l) > len(prefix))
			}
		}
		if !found {
			t.Errorf("the README shows %q, curl printed:\n%s", w, out.String())
		}
	}
}
