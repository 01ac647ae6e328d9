package ctl_test

import (
	"bufio"
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/internal/testenv"
)

// TestLoginSays: what rillctl login prints, approved through the API (the Chromium flow is
// signin's TestLoginInChromium): the token's id as rillctl token list shows it (not a UUID no
// list prints), a note when RILLCTL_TOKEN will win over the stored token, a mistaken --url
// named as --url and explained once, and --help that says where the token goes.
func TestLoginSays(t *testing.T) {
	d := testenv.Start(t, "")
	home := t.TempDir()
	xdg := filepath.Join(home, "config")
	bin := testenv.Bin(t, "rillctl")
	c := cli{t: t, bin: bin, env: []string{"TZ=UTC", "HOME=" + home, "XDG_CONFIG_HOME=" + xdg}}

	// --help says where the token goes, what logging in again does, and what logout revokes.
	for cmd, wants := range map[string][]string{
		"login":  {"~/.config/rillctl/", "mode 0600", "revokes the tokens they held", "unless --token or RILLCTL_TOKEN"},
		"logout": {"credentials.json", "assumed token", "RILLCTL_TOKEN is not touched"},
	} {
		out := c.ok(cmd, "--help")
		for _, w := range wants {
			if !strings.Contains(strings.Join(strings.Fields(out), " "), w) {
				t.Errorf("rillctl %s --help lacks %q:\n%s", cmd, w, out)
			}
		}
	}

	c.fails(`--url "127.0.0.1:8080" is not an http:// or https:// URL`, "login", "--url", "127.0.0.1:8080")
	c.fails("--url "+d.URL()+"/v1: give the server's root URL ("+d.URL()+")", "login", "--url", d.URL()+"/v1")
	r := c.run("login", "--url", d.URL()+"/ui/")
	if want := "--url " + d.URL() + "/ui should be the server's root, " + d.URL() + ", not the web console's /ui/"; r.code != 1 || !strings.Contains(r.err, want) || strings.Count(r.err, "should be") != 1 || strings.Contains(r.err, "--api-url") {
		t.Errorf("login --url .../ui/: exit %d, stderr %q; want one explanation %q", r.code, r.err, want)
	}

	cmd := exec.Command(bin, "login", "--url", d.URL())
	cmd.Env = append(append([]string{}, c.env...), "RILLCTL_TOKEN="+d.Token)
	var stdout, stderr bytes.Buffer
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	done := make(chan error, 1)
	codeRe := regexp.MustCompile(`user_code=([A-Z-]+)`)
	sc := bufio.NewScanner(pr)
	code := ""
	for code == "" && sc.Scan() {
		stdout.WriteString(sc.Text() + "\n")
		if m := codeRe.FindStringSubmatch(sc.Text()); m != nil {
			code = m[1]
		}
	}
	if code == "" {
		t.Fatalf("rillctl login named no code:\n%s%s", stdout.String(), stderr.String())
	}
	go func() {
		for sc.Scan() {
			stdout.WriteString(sc.Text() + "\n")
		}
		done <- cmd.Wait()
	}()
	req, _ := http.NewRequest("POST", d.URL()+"/v1/device/approve", strings.NewReader(`{"user_code":"`+code+`"}`))
	req.Header.Set("Authorization", "Bearer "+d.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("approve: %d", resp.StatusCode)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("rillctl login: %v\n%s%s", err, stdout.String(), stderr.String())
		}
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		t.Fatalf("rillctl login did not end:\n%s", stdout.String())
	}
	tok := storedCreds(t, xdg)["token"]
	id := tok[:len("rill_usr_")+10] + "..."
	if !strings.Contains(stdout.String(), "Signed in as admin@localhost (token "+id+"), saved in ") {
		t.Errorf("login printed %q; want the token's id %s", stdout.String(), id)
	}
	if list := c.as(d.Token).ok("--api-url", d.URL(), "token", "list"); !strings.Contains(list, id) {
		t.Errorf("token list does not show %s:\n%s", id, list)
	}
	if !strings.Contains(stderr.String(), "rillctl: note: --token/RILLCTL_TOKEN wins over the stored token") {
		t.Errorf("login with RILLCTL_TOKEN set says nothing of it: %q", stderr.String())
	}
}
