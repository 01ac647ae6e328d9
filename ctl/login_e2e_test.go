package ctl_test

import (
	"bufio"
	"bytes"
	"errors"
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

	out, errOut, code := loginApproved(t, bin, append(append([]string{}, c.env...), "RILLCTL_TOKEN="+d.Token), d)
	if code != 0 {
		t.Fatalf("rillctl login: exit %d\n%s%s", code, out, errOut)
	}
	tok := storedCreds(t, xdg)["token"]
	id := tok[:len("rill_usr_")+10] + "..."
	if !strings.Contains(out, "Signed in as admin@localhost (token "+id+"), saved in ") {
		t.Errorf("login printed %q; want the token's id %s", out, id)
	}
	if list := c.as(d.Token).ok("--api-url", d.URL(), "token", "list"); !strings.Contains(list, id) {
		t.Errorf("token list does not show %s:\n%s", id, list)
	}
	if !strings.Contains(errOut, "rillctl: note: --token/RILLCTL_TOKEN wins over the stored token") {
		t.Errorf("login with RILLCTL_TOKEN set says nothing of it: %q", errOut)
	}
}

// TestLoginCannotStore: where the credentials cannot be written, rillctl login says so before
// showing a code when it can tell (a symlink at the file), and otherwise (no directory can be
// made) revokes the token it received rather than leave a live token nobody holds.
func TestLoginCannotStore(t *testing.T) {
	d := testenv.Start(t, "")
	bin := testenv.Bin(t, "rillctl")
	su := cli{t: t, bin: bin, env: []string{"RILLCTL_API_URL=" + d.URL(), "TZ=UTC", "HOME=" + t.TempDir()}}.as(d.Token)

	xdg := t.TempDir()
	c := cli{t: t, bin: bin, env: []string{"TZ=UTC", "HOME=" + t.TempDir(), "XDG_CONFIG_HOME=" + xdg}}
	if err := os.MkdirAll(filepath.Join(xdg, "rillctl"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(xdg, "elsewhere"), filepath.Join(xdg, "rillctl", "credentials.json")); err != nil {
		t.Fatal(err)
	}
	r := c.run("login", "--url", d.URL())
	if r.code != 1 || r.out != "" || !strings.Contains(r.err, "is a symlink or not a regular file") {
		t.Errorf("login with a symlinked credentials file: exit %d, stdout %q, stderr %q; want a refusal before any code", r.code, r.out, r.err)
	}

	xdg2 := t.TempDir()
	if err := os.WriteFile(filepath.Join(xdg2, "rillctl"), nil, 0o600); err != nil { // a file where the directory goes
		t.Fatal(err)
	}
	out, errOut, code := loginApproved(t, bin, []string{"TZ=UTC", "HOME=" + t.TempDir(), "XDG_CONFIG_HOME=" + xdg2}, d)
	if code != 1 || !strings.Contains(errOut, "the token was revoked again and nothing is stored") {
		t.Errorf("login that cannot store: exit %d\n%s%s", code, out, errOut)
	}
	if list := su.ok("token", "list"); strings.Contains(list, "rillctl on") {
		t.Errorf("the token of a login that could not store it is live:\n%s", list)
	}
}

// loginApproved runs rillctl login against d with env, approves its code through the API as
// d's superuser, and returns what it printed and its exit code.
func loginApproved(t *testing.T, bin string, env []string, d *testenv.Daemon) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(bin, "login", "--url", d.URL())
	cmd.Env = env
	var out, errb bytes.Buffer
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	codeRe := regexp.MustCompile(`user_code=([A-Z-]+)`)
	sc := bufio.NewScanner(pr)
	userCode := ""
	for userCode == "" && sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if m := codeRe.FindStringSubmatch(sc.Text()); m != nil {
			userCode = m[1]
		}
	}
	done := make(chan error, 1)
	go func() {
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
		}
		done <- cmd.Wait()
	}()
	if userCode == "" {
		<-done
		t.Fatalf("rillctl login named no code:\n%s%s", out.String(), errb.String())
	}
	req, _ := http.NewRequest("POST", d.URL()+"/v1/device/approve", strings.NewReader(`{"user_code":"`+userCode+`"}`))
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
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("rillctl login did not end:\n%s", out.String())
	}
	return out.String(), errb.String(), code
}
