package signin_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/adminapi/client"
	"github.com/rill-authd/rill-authd/internal/testenv"
)

// loginTabs starts one headless Chromium for the test, and returns a context for a fresh tab
// (its own cookies: signed out).
func loginTabs(t *testing.T) func() context.Context {
	exe := chromium(t)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()))
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return func() context.Context {
		ctx, cancel := chromedp.NewContext(bctx, chromedp.WithNewBrowserContext()) // cookies of its own
		t.Cleanup(cancel)
		// Take the tab's console messages, as console/browser_test.go does: a tab whose events
		// nobody reads stops answering (chromedp v0.23).
		msgs := chromedp.Console(ctx)
		go func() {
			for _, err := range msgs {
				if err != nil {
					return
				}
			}
		}()
		return ctx
	}
}

// tabDo runs browser steps within 30 s, failing with the page's text.
func tabDo(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, steps...); err != nil {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		loc, _ := chromedp.Run(dctx, chromedp.Location())
		body, _ := chromedp.Run(dctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		t.Fatalf("%s: %v\nat %s:\n%s", what, err, loc, body)
	}
}

func tabText(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(tctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// login is a running `rillctl login`: the real binary, with its own HOME.
type login struct {
	cmd          *exec.Cmd
	mu           sync.Mutex
	out          *bytes.Buffer
	errb         bytes.Buffer
	url, code    string
	done         chan error
	home, config string
}

var (
	urlRe  = regexp.MustCompile(`(?m)^\s+(https?://\S+/ui/device\?user_code=\S+)$`)
	codeRe = regexp.MustCompile(`the code ([A-Z]{4}-[A-Z]{4})\.`)
)

// cliEnv is a rillctl environment with no token: HOME and XDG_CONFIG_HOME of its own.
func cliEnv(home string, extra ...string) []string {
	return append([]string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, "config"), "TZ=UTC"}, extra...)
}

func startLogin(t *testing.T, bin, home string, args ...string) *login {
	t.Helper()
	l := &login{out: &bytes.Buffer{}, done: make(chan error, 1), home: home, config: filepath.Join(home, "config")}
	l.cmd = exec.Command(bin, append([]string{"login"}, args...)...)
	l.cmd.Env = cliEnv(home)
	l.cmd.Stderr = &l.errb
	pipe, err := l.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := l.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.cmd.Process.Kill() })
	// One goroutine reads the output to its end, then waits for the process: whoever received
	// from done may read out and errb.
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			l.mu.Lock()
			l.out.WriteString(sc.Text() + "\n")
			l.mu.Unlock()
		}
		l.done <- l.cmd.Wait()
	}()
	for deadline := time.Now().Add(30 * time.Second); l.code == ""; time.Sleep(20 * time.Millisecond) {
		out := l.output()
		if m := urlRe.FindStringSubmatch(out); m != nil {
			l.url = m[1]
		}
		if m := codeRe.FindStringSubmatch(out); m != nil && l.url != "" {
			l.code = m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("rillctl login showed no code in 30s: %s", out)
		}
		select {
		case err := <-l.done:
			t.Fatalf("rillctl login ended (%v) before it showed a code: %s\nstderr: %s", err, out, l.errb.String())
		default:
		}
	}
	return l
}

func (l *login) output() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.out.String()
}

// wait waits for rillctl login to end and returns its error (nil: exit 0).
func (l *login) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-l.done:
		return err
	case <-time.After(60 * time.Second):
		t.Fatalf("rillctl login still waiting after 60s: %s", l.output())
		return nil
	}
}

func runCLI(t *testing.T, bin string, envv []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = envv
	cmd.Stdin = strings.NewReader("")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), errb.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), 0
}

// approve opens the page rillctl named (on base, which may be another replica), is sent to sign
// in, signs in with tok, lands back on the page and approves the code.
func approve(t *testing.T, ctx context.Context, base string, l *login, tok, wantHost string) {
	t.Helper()
	u, err := url.Parse(l.url)
	if err != nil {
		t.Fatal(err)
	}
	tabDo(t, ctx, "open the verification URL", chromedp.Navigate(base+u.RequestURI()), chromedp.WaitVisible(chromedp.CSS("#token")))
	tabDo(t, ctx, "sign in", chromedp.SendKeys(chromedp.CSS("#token"), tok), chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS("#approve")))
	if got := tabText(t, ctx, "#user-code"); got != l.code {
		t.Fatalf("the page shows code %q, rillctl %q", got, l.code)
	}
	if got := tabText(t, ctx, "#device-host"); got != wantHost {
		t.Fatalf("the page shows host %q, want %q", got, wantHost)
	}
	if got := tabText(t, ctx, "#device-ip"); got != "127.0.0.1" {
		t.Fatalf("the page shows address %q, want 127.0.0.1", got)
	}
	tabDo(t, ctx, "approve", chromedp.Click(chromedp.CSS("#approve")), chromedp.WaitVisible(chromedp.CSS("#device-done")))
}

// loginSetup makes org acme and user dev@acme.io with a token to sign in to the console with.
func loginSetup(t *testing.T, admin *client.Client) string {
	t.Helper()
	ctx := context.Background()
	if _, err := admin.CreateOrg(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateUser(ctx, apiv1.UserRequest{Email: "dev@acme.io", Org: "acme", OrgRole: "viewer"}); err != nil {
		t.Fatal(err)
	}
	tok, err := admin.IssueToken(ctx, apiv1.TokenRequest{DisplayName: "console", UserEmail: "dev@acme.io"})
	if err != nil {
		t.Fatal(err)
	}
	return tok.Token
}

// loginFlow runs rillctl login against pollURL, approves in Chromium on approveURL, and checks
// everything after: the stored file, whoami without a token, the token's name and lifetime,
// the audit, logout's revocation.
func loginFlow(t *testing.T, newTab func() context.Context, bin string, admin *client.Client, pollURL, approveURL, consoleTok string, ttl time.Duration) {
	ctx := context.Background()
	home := t.TempDir()
	host, _ := os.Hostname()
	l := startLogin(t, bin, home, "--url", pollURL)
	if !strings.HasPrefix(l.url, pollURL+"/ui/device?user_code=") {
		t.Fatalf("verification URL %q is not on %s", l.url, pollURL)
	}
	approve(t, newTab(), approveURL, l, consoleTok, host)
	if err := l.wait(t); err != nil {
		t.Fatalf("rillctl login: %v\nstdout: %s\nstderr: %s", err, l.output(), l.errb.String())
	}
	path := filepath.Join(l.config, "rillctl", "credentials.json")
	if !strings.Contains(l.output(), "Signed in as dev@acme.io") || !strings.Contains(l.output(), path) {
		t.Fatalf("rillctl login printed:\n%s", l.output())
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v, %v; want mode 0600", fi, err)
	}
	// Every later command uses it: no RILLCTL_TOKEN, no --api-url.
	out, stderr, code := runCLI(t, bin, cliEnv(home), "whoami")
	if code != 0 || strings.TrimSpace(out) != "user dev@acme.io" {
		t.Fatalf("whoami with the stored token: exit %d, %q %q", code, out, stderr)
	}
	// A stored token is never sent to another server.
	if _, stderr, code := runCLI(t, bin, cliEnv(home, "RILLCTL_API_URL=http://127.0.0.1:1"), "whoami"); code != 1 || !strings.Contains(stderr, "stored token is for "+pollURL) {
		t.Fatalf("whoami against another server: exit %d, %q", code, stderr)
	}
	toks, err := admin.ListTokens(ctx, "dev@acme.io")
	if err != nil {
		t.Fatal(err)
	}
	var mine *apiv1.TokenInfo
	for i := range toks {
		if toks[i].DisplayName == "rillctl on "+host {
			mine = &toks[i]
		}
	}
	if mine == nil {
		t.Fatalf("no token named %q among %+v", "rillctl on "+host, toks)
	}
	if life := mine.ExpiresAt.Sub(mine.CreatedAt); life != ttl {
		t.Fatalf("the token lives %v, want %v", life, ttl)
	}
	evs, err := admin.ListAudit(ctx, "", "user:dev@acme.io", 100)
	if err != nil {
		t.Fatal(err)
	}
	audited := false
	for _, e := range evs {
		if e.Action == "token.issue" && strings.Contains(e.Target, mine.ID) && strings.Contains(e.Detail, "via: device") && e.Outcome == "ok" {
			audited = true
		}
	}
	if !audited {
		t.Fatalf("no token.issue via device audited for %s: %+v", mine.ID, evs)
	}
	creds, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tok := regexp.MustCompile(`rill_usr_[0-9A-Za-z]{60}`).FindString(string(creds))
	if tok == "" {
		t.Fatalf("no token in %s", creds)
	}

	out, stderr, code = runCLI(t, bin, cliEnv(home), "logout")
	if code != 0 || !strings.Contains(out, "Signed out") {
		t.Fatalf("logout: exit %d, %q %q", code, out, stderr)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("credentials file still there after logout: %v", err)
	}
	// Revoked on every replica: a check with it is a 401 (the feed takes it to the other).
	for _, base := range []string{pollURL, approveURL} {
		var err error
		for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if _, err = client.New(base, tok).Whoami(ctx); err != nil {
				break
			}
		}
		var ae *client.Error
		if !errors.As(err, &ae) || ae.Status != 401 {
			t.Fatalf("the logged-out token at %s: %v, want 401", base, err)
		}
	}
	if _, stderr, code := runCLI(t, bin, cliEnv(home), "whoami"); code != 1 || !strings.Contains(stderr, "rillctl login") {
		t.Fatalf("whoami after logout: exit %d, %q (want the no-token message naming rillctl login)", code, stderr)
	}
}

// TestLoginInChromium: the real rillctl logs in against a real daemon while Chromium approves
// the code in the console; the org's token policy sets the token's lifetime.
func TestLoginInChromium(t *testing.T) {
	newTab := loginTabs(t)
	d := testenv.Start(t, "")
	admin := client.New(d.URL(), d.Token)
	consoleTok := loginSetup(t, admin)
	bin := testenv.Bin(t, "rillctl")
	t.Run("default lifetime", func(t *testing.T) {
		loginFlow(t, newTab, bin, admin, d.URL(), d.URL(), consoleTok, 90*24*time.Hour)
	})
	t.Run("org policy", func(t *testing.T) {
		if _, err := admin.SetTokenPolicy(context.Background(), "acme", apiv1.TokenPolicy{MaxUserTokenTTLMinutes: 7 * 24 * 60}); err != nil {
			t.Fatal(err)
		}
		loginFlow(t, newTab, bin, admin, d.URL(), d.URL(), consoleTok, 7*24*time.Hour)
	})
	t.Run("login again", func(t *testing.T) {
		home := t.TempDir()
		host, _ := os.Hostname()
		stored := func() string {
			b, err := os.ReadFile(filepath.Join(home, "config", "rillctl", "credentials.json"))
			if err != nil {
				t.Fatal(err)
			}
			return regexp.MustCompile(`rill_usr_[0-9A-Za-z]{60}`).FindString(string(b))
		}
		var toks []string
		for range 2 {
			l := startLogin(t, bin, home, "--url", d.URL())
			approve(t, newTab(), d.URL(), l, consoleTok, host)
			if err := l.wait(t); err != nil {
				t.Fatalf("rillctl login: %v: %s", err, l.errb.String())
			}
			toks = append(toks, stored())
		}
		// The second login replaced the first, and revoked its token.
		var ae *client.Error
		if _, err := client.New(d.URL(), toks[0]).Whoami(context.Background()); !errors.As(err, &ae) || ae.Status != 401 {
			t.Fatalf("the first login's token after the second: %v, want 401", err)
		}
		if w, err := client.New(d.URL(), toks[1]).Whoami(context.Background()); err != nil || w.Subject != "dev@acme.io" {
			t.Fatalf("the second login's token: %+v %v", w, err)
		}
	})
	t.Run("denied", func(t *testing.T) {
		home := t.TempDir()
		l := startLogin(t, bin, home, "--url", d.URL())
		ctx := newTab()
		u, _ := url.Parse(l.url)
		tabDo(t, ctx, "open the verification URL", chromedp.Navigate(d.URL()+u.RequestURI()), chromedp.WaitVisible(chromedp.CSS("#token")))
		tabDo(t, ctx, "sign in", chromedp.SendKeys(chromedp.CSS("#token"), consoleTok), chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS("#deny")))
		tabDo(t, ctx, "deny", chromedp.Click(chromedp.CSS("#deny")), chromedp.WaitVisible(chromedp.CSS("#device-done")))
		if err := l.wait(t); err == nil || !strings.Contains(l.errb.String(), "denied in the console") {
			t.Fatalf("rillctl login after a denial: %v, stderr %q", err, l.errb.String())
		}
		if _, err := os.Stat(filepath.Join(l.config, "rillctl", "credentials.json")); !os.IsNotExist(err) {
			t.Fatalf("a denied login stored credentials: %v", err)
		}
		// The page, opened again, says the request is decided; nothing to approve.
		tabDo(t, ctx, "reopen", chromedp.Navigate(d.URL()+u.RequestURI()), chromedp.WaitVisible(chromedp.CSS(".error")))
		if got := tabText(t, ctx, ".error"); !strings.Contains(got, "already denied") {
			t.Fatalf("the page of a denied code: %q", got)
		}
	})
}

// TestLoginOnReplicas: rillctl polls replica B while the code is approved on replica A, both
// on one PostgreSQL.
func TestLoginOnReplicas(t *testing.T) {
	newTab := loginTabs(t)
	db, _ := testenv.PostgresDB(t, "")
	a := testenv.Spawn(t, "", "--store", db, "--device-token-ttl", "720h")
	a.WaitStarted(t)
	b := testenv.Spawn(t, "", "--store", db, "--device-token-ttl", "720h")
	b.WaitStarted(t)
	admin := client.New(a.URL(), a.Token)
	consoleTok := loginSetup(t, admin)
	loginFlow(t, newTab, testenv.Bin(t, "rillctl"), admin, b.URL(), a.URL(), consoleTok, 720*time.Hour)
}

// TestLoginUnsavedTokenRevoked: rillctl login never leaves a live token that no file holds.
// A symlinked credentials file (which it refuses to write through) is refused before a code is
// shown, so no token is issued at all; where the file cannot be told unwritable beforehand, the
// token received is revoked again (ctl's TestLoginCannotStore).
func TestLoginUnsavedTokenRevoked(t *testing.T) {
	d := testenv.Start(t, "")
	admin := client.New(d.URL(), d.Token)
	loginSetup(t, admin)
	home := t.TempDir()
	dir := filepath.Join(home, "config", "rillctl")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(home, "elsewhere.json"), filepath.Join(dir, "credentials.json")); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCLI(t, testenv.Bin(t, "rillctl"), cliEnv(home), "login", "--url", d.URL())
	if code == 0 || !strings.Contains(errOut, "symlink") || strings.Contains(out+errOut, "user_code=") {
		t.Fatalf("rillctl login with a symlinked credentials file: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if _, err := os.Lstat(filepath.Join(home, "elsewhere.json")); err == nil {
		t.Error("something was written through the symlink")
	}
	toks, err := admin.ListTokens(context.Background(), "dev@acme.io")
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range toks {
		if strings.HasPrefix(tk.DisplayName, "rillctl") {
			t.Fatalf("a rillctl login token was issued and is live: %+v", tk)
		}
	}
}
