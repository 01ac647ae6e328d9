package console_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/adminapi/client"
	"github.com/rill-authd/rill-authd/internal/testenv"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// TestExpiryBanner: a signed-in user whose own tokens expire within --expiry-warning sees them
// on every page; another user, and a token beyond the window or never expiring, do not count.
func TestExpiryBanner(t *testing.T) {
	e := setup(t, false)
	add := func(owner, name string, ttl time.Duration) {
		tok, err := token.New(token.User)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.st.CreateToken(context.Background(), store.NewToken(tok, owner, name, "test", time.Now(), ttl)); err != nil {
			t.Fatal(err)
		}
	}
	add("u-admin", "deploy-bot", 48*time.Hour)
	add("u-admin", "later", 30*24*time.Hour)
	add("u-viewer", "viewers-own", time.Hour)

	b := e.browser(t)
	b.signIn(e.tokens["admin"])
	for _, page := range []string{"/ui/tokens", "/ui/services"} {
		r := b.get(page)
		if r.code != 200 {
			t.Fatalf("%s: %d", page, r.code)
		}
		if !strings.Contains(r.body, "1 of your tokens expires within 7 days") || !strings.Contains(r.body, "(deploy-bot)") {
			t.Fatalf("%s: no banner for the admin's expiring token:\n%s", page, r.body)
		}
		if strings.Contains(r.body, "(later)") || strings.Contains(r.body, "viewers-own") {
			t.Fatalf("%s: the banner names a token beyond the window or another user's", page)
		}
	}
	su := e.browser(t)
	su.signIn(e.tokens["su"])
	if r := su.get("/ui/tokens"); r.code != 200 || strings.Contains(r.body, "of your tokens expire") {
		t.Fatalf("a user with no expiring token sees a banner: %d", r.code)
	}
}

// TestExpiryBannerInChromium: against a real daemon (--expiry-warning 168h by default), the
// banner of a user's own token expiring in an hour is shown, visible, in Chromium.
func TestExpiryBannerInChromium(t *testing.T) {
	exe := chromium(t)
	d := testenv.Start(t, "")
	admin := client.New(d.URL(), d.Token)
	if _, err := admin.IssueToken(context.Background(), apiv1.TokenRequest{DisplayName: "deploy-bot", TTLMinutes: 60}); err != nil {
		t.Fatal(err)
	}
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
	tb.do("banner", chromedp.WaitVisible(chromedp.CSS("section.expiring")))
	if got := tb.text("section.expiring"); !strings.Contains(got, "1 of your tokens expires within 7 days") || !strings.Contains(got, "deploy-bot") {
		t.Fatalf("banner: %q", got)
	}
}
