package signin_test

import (
	"context"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/rill-authd/rill-authd/internal/testenv"
)

// chromium finds Debian's chromium: a missing one skips loudly, and fails under CI=true.
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"chromium", "/usr/bin/chromium", "chromium-browser"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	testenv.Unavailable(t, "chromium", "chromium is not installed, so the sign-in browser tests did not run; apt-get install chromium (.ci/run does)")
	return ""
}

// browser is one Chromium tab with the URLs its main frame navigated to.
type browser struct {
	t   *testing.T
	ctx context.Context
	mu  sync.Mutex
	nav []string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	exe := chromium(t)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()))
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	b := &browser{t: t, ctx: ctx}
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*cdppage.EventFrameNavigated); ok && e.Frame.ParentID == "" {
			b.mu.Lock()
			b.nav = append(b.nav, e.Frame.URL)
			b.mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		loc, _ := chromedp.Run(b.ctx, chromedp.Location())
		body, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		b.t.Fatalf("%s: %v\nat %s:\n%s", what, err, loc, body)
	}
}

func (b *browser) eval(expr string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return s
}

// waitFor waits (through navigations) until expr is true in the page.
func (b *browser) waitFor(expr string) {
	b.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](expr)); err == nil && ok {
			return
		}
	}
	loc, _ := chromedp.Run(b.ctx, chromedp.Location())
	body, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	b.t.Fatalf("not true in 30s: %s\nat %s:\n%s", expr, loc, body)
}

// signIn clicks "Sign in with test" on the console's sign-in page and logs in at the provider
// as username.
func (b *browser) signIn(e *env, username string) {
	b.t.Helper()
	b.do("open the sign-in page", chromedp.Navigate(e.d.URL()+"/ui/signin"), chromedp.WaitVisible(chromedp.CSS("#oidc-test")))
	if got := b.eval(`document.getElementById("oidc-test").textContent`); got != "Sign in with test" {
		b.t.Fatalf("button: %q", got)
	}
	b.do("go to the provider", chromedp.Click(chromedp.CSS("#oidc-test")), chromedp.WaitVisible(chromedp.CSS("#password")))
	if loc := b.eval(`location.origin`); loc != e.op.Issuer {
		b.t.Fatalf("the login page is at %s, not the provider %s", loc, e.op.Issuer)
	}
	b.do("log in at the provider", chromedp.SendKeys(chromedp.CSS("#username"), username), chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Submit(chromedp.CSS("#password")))
}

func (b *browser) callbacks() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, u := range b.nav {
		if strings.Contains(u, "/ui/oidc/test/callback") {
			out = append(out, u)
		}
	}
	return out
}

// TestSignInInChromium: ana signs in with her password at the provider and lands in the
// console as herself, through the landing page (the Strict session cookie would not be sent at
// the end of the provider's redirect chain); her session's token is audited, named after the
// provider, and revoked when she signs out; the callback URL used again is refused; an
// unverified email gets a clear refusal page.
func TestSignInInChromium(t *testing.T) {
	e := start(t, "")
	b := newBrowser(t)
	ctx := context.Background()

	b.signIn(e, "ana")
	b.waitFor(`location.pathname === "/ui/tokens" && !!document.querySelector("nav")`)
	if who := b.eval(`document.querySelector(".who").textContent`); who != "ana@acme.io" {
		t.Fatalf("signed in as %q", who)
	}
	cbs := b.callbacks()
	if len(cbs) != 1 {
		t.Fatalf("callbacks navigated to: %v (all: %v)", cbs, b.nav)
	}
	cookies, err := chromedp.Call(b.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{e.d.URL() + "/ui/", e.d.URL() + "/ui/oidc/test/callback"}})
	if err != nil {
		t.Fatal(err)
	}
	var sess *network.Cookie
	for _, c := range cookies.Cookies {
		switch c.Name {
		case "rill_console":
			sess = c
		case "rill_oidc_test":
			t.Errorf("the flow cookie outlived its callback: %+v", c)
		}
	}
	if sess == nil || !sess.HTTPOnly || sess.SameSite != network.CookieSameSiteStrict {
		t.Fatalf("session cookie: %+v", sess)
	}

	// Why the landing page: the same navigation started on the provider's site does not carry
	// the Strict cookie, so it arrives signed out; started on ours, it does.
	b.do("a page at the provider", chromedp.Navigate(e.op.Issuer+"/logged-out"))
	b.do("navigate from it to the console", chromedp.Evaluate[chromedp.Void](`location.href = `+jsString(e.d.URL()+"/ui/tokens")))
	b.waitFor(`location.pathname === "/ui/signin"`)
	b.do("navigate from our own page", chromedp.Evaluate[chromedp.Void](`location.href = "/ui/tokens"`))
	b.waitFor(`location.pathname === "/ui/tokens" && !!document.querySelector("nav")`)

	toks, err := e.admin.ListTokens(ctx, "ana@acme.io")
	if err != nil {
		t.Fatal(err)
	}
	if len(toks) != 1 || toks[0].DisplayName != "console (via test)" || toks[0].ExpiresAt.IsZero() {
		t.Fatalf("ana's tokens: %+v", toks)
	}
	evs, err := e.admin.ListAudit(ctx, "", "user:ana@acme.io", 100)
	if err != nil {
		t.Fatal(err)
	}
	var signins int
	for _, ev := range evs {
		if ev.Action == "user.signin" && ev.Outcome == "ok" && strings.Contains(ev.Detail, "provider test") {
			signins++
		}
	}
	if signins != 1 {
		t.Fatalf("user.signin events with the provider: %d in %+v", signins, evs)
	}

	b.do("sign out", chromedp.Click(chromedp.CSS("form.signout button")))
	b.waitFor(`location.pathname === "/ui/signin"`)
	if toks, err = e.admin.ListTokens(ctx, "ana@acme.io"); err != nil || len(toks) != 0 {
		t.Fatalf("after sign-out ana still holds %+v (%v)", toks, err)
	}
	b.do("the console after sign-out", chromedp.Navigate(e.d.URL()+"/ui/tokens"))
	b.waitFor(`location.pathname === "/ui/signin"`)

	// The callback URL again (its state and code spent): refused, no session.
	b.do("replay the callback", chromedp.Navigate(cbs[0]))
	b.waitFor(`document.title.startsWith("Sign-in refused")`)
	if msg := b.eval(`document.querySelector("main").innerText`); !strings.Contains(msg, "No sign-in with test was in progress") || strings.Contains(msg, "ana@acme.io") {
		t.Fatalf("replayed callback: %s", msg)
	}
	if b.eval(`String(!!document.querySelector("nav"))`) != "false" {
		t.Fatal("a replayed callback opened a session")
	}

	// A forged answer (a state this browser's sign-in did not make) and an unknown provider.
	b.do("start a sign-in", chromedp.Navigate(e.d.URL()+"/ui/oidc/test/start"), chromedp.WaitVisible(chromedp.CSS("#password")))
	for _, tc := range []struct {
		path   string
		status int64
		want   string
	}{
		{"/ui/oidc/test/callback?code=stolen&state=forged", 400, "its state differs"},
		{"/ui/oidc/nope/start", 404, `no identity provider named "nope"`},
	} {
		resp, err := chromedp.Run(b.ctx, chromedp.NavigateResponse(e.d.URL()+tc.path))
		if err != nil {
			t.Fatal(err)
		}
		if msg := b.eval(`document.querySelector("main").innerText`); resp.Status != tc.status || !strings.Contains(msg, tc.want) || !strings.HasPrefix(b.eval(`document.title`), "Sign-in refused") {
			t.Fatalf("%s: %d:\n%s", tc.path, resp.Status, msg)
		}
	}

	b.signIn(e, "unverified")
	b.waitFor(`document.title.startsWith("Sign-in refused")`)
	if msg := b.eval(`document.querySelector("main").innerText`); !strings.Contains(msg, "is not verified") {
		t.Fatalf("unverified email: %s", msg)
	}
	if toks, _ := e.admin.ListTokens(ctx, "ana@acme.io"); len(toks) != 0 {
		t.Fatalf("tokens after a refusal: %+v", toks)
	}
}

func jsString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
