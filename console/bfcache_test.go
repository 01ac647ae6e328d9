package console_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/rill-authd/rill-authd/internal/testenv"
)

// TestIssuedSecretNotRestoredByBack (third red team): after issuing a token in the console,
// Back brought the page with the secret again, from Chromium's back/forward cache (which keeps a
// no-store page in some cases). In a real Chromium against a real daemon: issue, go on to
// another page, go Back (and Forward and Back again): the page comes back, the secret does not.
func TestIssuedSecretNotRestoredByBack(t *testing.T) {
	exe := chromium(t)
	d := testenv.Start(t, "")
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()))
	defer cancelAlloc()
	browserCtx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	tb := newTab(t, browserCtx, d.URL())
	tb.signIn(d.Token, "Overview")
	tb.open("/ui/tokens", "My tokens")
	tb.do("issue", chromedp.Focus(chromedp.CSS("#display_name")), chromedp.KeyEvent("bfcache"), chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.CSS("#secret")))
	secret := tb.eval(`document.getElementById("secret").value`)
	if !strings.HasPrefix(secret, "rill_usr_") {
		t.Fatalf("no secret shown after issuing: %q", secret)
	}
	// A mark in the page's window: it is still there after Back only if the page itself came
	// back from the back/forward cache (a reload makes a new window).
	tb.eval(`window.bfcacheMark = "kept"; ""`)
	tb.do("go on to the Overview", chromedp.Click(chromedp.CSS(`nav a[href="/ui/overview"]`)), chromedp.WaitVisible(chromedp.CSS("h1")))
	tb.waitTitle("Overview")
	for i, step := range []string{"back", "forward", "back"} {
		tb.eval(`history.` + step + `(); ""`)
		if step == "back" {
			tb.waitTitle("My tokens")
		} else {
			tb.waitTitle("Overview")
			continue
		}
		time.Sleep(200 * time.Millisecond) // pageshow has run
		restored := tb.eval(`String(window.bfcacheMark || "reloaded")`)
		t.Logf("Back %d: the page was %s", i/2+1, restored)
		html := tb.eval(`document.documentElement.outerHTML`)
		if strings.Contains(html, secret) || strings.Contains(html, secret[9:30]) {
			t.Fatalf("Back %d (page %s) shows the issued secret again", i/2+1, restored)
		}
		if n := tb.eval(`String(document.querySelectorAll("#secret").length)`); n != "0" {
			t.Fatalf("Back %d (page %s): %s secret fields", i/2+1, restored, n)
		}
		if restored == "kept" && !strings.Contains(tb.eval(`document.body.innerText`), "shown once and is no longer on this page") {
			t.Errorf("Back %d: the page came back from the cache without saying where the secret went", i/2+1)
		}
	}
}
