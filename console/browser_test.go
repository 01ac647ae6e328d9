package console_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/adminapi/client"
	"github.com/rill-authd/rill-authd/internal/testenv"
	"github.com/rill-authd/rill-authd/token"
)

// screenshotsEnv, when set, makes the browser test write a 1280x800 screenshot of each page
// (and one of a 420 px wide window) to docs/console/ (the README shows them).
const screenshotsEnv = "RILL_AUTHD_CONSOLE_SCREENSHOTS"

// chromium finds Debian's chromium: a missing one skips the browser tests loudly, and fails
// them under CI=true.
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"chromium", "/usr/bin/chromium", "chromium-browser"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	testenv.Unavailable(t, "chromium", "chromium is not installed, so the console's browser tests did not run; apt-get install chromium (.ci/run does)")
	return ""
}

// tab is one browser context (its own cookies) with the console messages it collects.
type tab struct {
	t    *testing.T
	ctx  context.Context
	base string
	mu   sync.Mutex
	msgs []chromedp.ConsoleMessage
}

func newTab(t *testing.T, parent context.Context, base string, opts ...chromedp.ContextOption) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(parent, opts...)
	t.Cleanup(cancel)
	tb := &tab{t: t, ctx: ctx, base: base}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			tb.mu.Lock()
			tb.msgs = append(tb.msgs, m)
			tb.mu.Unlock()
		}
	}()
	return tb
}

func (tb *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		loc, _ := chromedp.Run(tb.ctx, chromedp.Location())
		body, _ := chromedp.Run(tb.ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		tb.t.Fatalf("%s: %v\nat %s:\n%s", what, err, loc, body)
	}
}

func (tb *tab) text(sel string) string {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		tb.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func (tb *tab) eval(expr string) string {
	tb.t.Helper()
	s, err := chromedp.Run(tb.ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		tb.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return s
}

// waitTitle waits (through the navigation a form submit starts) for a page titled prefix.
func (tb *tab) waitTitle(prefix string) {
	tb.t.Helper()
	var title string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		title, _ = chromedp.Run(tb.ctx, chromedp.Title())
		if strings.HasPrefix(title, prefix) {
			return
		}
	}
	tb.t.Fatalf("no page titled %q in 30s (last %q)", prefix, title)
}

// waitFor waits (through a navigation) until expr is true in the page.
func (tb *tab) waitFor(expr string) {
	tb.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if ok, err := chromedp.Run(tb.ctx, chromedp.Evaluate[bool](expr)); err == nil && ok {
			return
		}
	}
	tb.t.Fatalf("not true in 30s: %s", expr)
}

func (tb *tab) open(path, wantH1 string) {
	tb.t.Helper()
	tb.do("open "+path, chromedp.Navigate(tb.base+path), chromedp.WaitVisible(chromedp.CSS("h1")))
	if h1 := tb.text("h1"); !strings.Contains(h1, wantH1) {
		body := tb.eval(`document.body.innerText`)
		tb.t.Fatalf("%s: heading %q, want %q:\n%s", path, h1, wantH1, body)
	}
	// Every control has a label (or an accessible name of its own, as a button's text).
	unlabelled := tb.eval(`Array.from(document.querySelectorAll("input:not([type=hidden]), select, textarea, button"))
		.filter(el => !(el.labels && el.labels.length) && !el.getAttribute("aria-label") && !(el.tagName === "BUTTON" && el.textContent.trim()))
		.map(el => el.outerHTML).join("\n")`)
	if unlabelled != "" {
		tb.t.Errorf("%s: controls without a label:\n%s", path, unlabelled)
	}
}

// shot saves the page as docs/console/<name>.png when screenshots are asked for.
func (tb *tab) shot(name string) {
	tb.t.Helper()
	if os.Getenv(screenshotsEnv) == "" {
		return
	}
	png, err := chromedp.Run(tb.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		tb.t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := filepath.Join(testenv.ModuleRoot(), "docs", "console")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
}

// signIn signs in with tok from the sign-in page, by keyboard.
func (tb *tab) signIn(tok, wantH1 string) {
	tb.t.Helper()
	tb.open("/ui/signin", "Sign in")
	tb.do("sign in", chromedp.SendKeys(chromedp.CSS("#token"), tok), chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS("nav")))
	if h1 := tb.text("h1"); h1 != wantH1 {
		tb.t.Fatalf("after sign-in: %q, want %q", h1, wantH1)
	}
}

// checker answers Envoy's check over the daemon's real gRPC port.
type checker struct {
	c authv3.AuthorizationClient
}

func (ch checker) check(t *testing.T, tok string) (int32, map[string]string) {
	t.Helper()
	resp, err := ch.c.Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Path: "/v1/orgs/acme/projects/web/runtime/api/q", Headers: map[string]string{"authorization": "Bearer " + tok}}}}})
	if err != nil {
		t.Fatal(err)
	}
	hs := map[string]string{}
	for _, h := range resp.GetOkResponse().GetHeaders() {
		hs[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	if d := resp.GetDeniedResponse(); d != nil {
		return int32(d.GetStatus().GetCode()), hs
	}
	return resp.GetStatus().GetCode(), hs
}

// TestConsoleInChromium drives the console of a real daemon in a real Chromium, one browser for
// the whole run: each subtest goes on from where the one before left the pages.
func TestConsoleInChromium(t *testing.T) {
	exe := chromium(t)
	d := testenv.Start(t, "")
	t.Cleanup(func() {
		if t.Failed() {
			for _, l := range strings.Split(d.Stderr(), "\n") {
				if strings.Contains(l, "console") {
					t.Log("daemon: " + l)
				}
			}
		}
	})
	ctx := context.Background()
	admin := client.New(d.URL(), d.Token)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := admin.CreateOrg(ctx, "acme")
	must(err)
	_, err = admin.CreateProject(ctx, "acme", "web")
	must(err)
	for email, role := range map[string]string{"viewer@acme.io": "viewer", "ana@acme.io": "editor"} {
		_, err = admin.CreateUser(ctx, apiv1.UserRequest{Email: email, Org: "acme", OrgRole: role, Groups: []string{"analysts"}})
		must(err)
	}
	_, err = admin.SetUserRole(ctx, "ana@acme.io", apiv1.RoleRequest{Org: "acme", Project: "web", ProjectRole: "editor"})
	must(err)
	viewerTok, err := admin.IssueToken(ctx, apiv1.TokenRequest{DisplayName: "viewer laptop", UserEmail: "viewer@acme.io"})
	must(err)
	_, err = admin.CreateService(ctx, "acme", apiv1.ServiceRequest{Name: "nightly-etl", OrgRole: "viewer", Attributes: map[string]any{"team": "platform"}})
	must(err)
	conn, err := grpc.NewClient(d.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	must(err)
	defer conn.Close()
	ch := checker{authv3.NewAuthorizationClient(conn)}
	// Traffic for the Overview's chart: allowed and denied checks.
	for range 5 {
		ch.check(t, d.Token)
	}
	ch.check(t, viewerTok.Token[:len(viewerTok.Token)-6]+"AAAAAA")
	ch.check(t, viewerTok.Token) // a viewer has no read_prod on acme/web: 403

	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()))
	defer cancelAlloc()
	browserCtx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	su := newTab(t, browserCtx, d.URL())

	t.Run("sign in, with the cookie's flags and the page's headers", func(t *testing.T) {
		su.t = t
		resp, err := chromedp.Run(su.ctx, chromedp.NavigateResponse(d.URL()+"/ui/signin"))
		must(err)
		h := map[string]string{}
		for k, v := range resp.Headers {
			h[strings.ToLower(k)] = fmt.Sprint(v)
		}
		csp := h["content-security-policy"]
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") ||
			h["x-content-type-options"] != "nosniff" || h["referrer-policy"] != "no-referrer" {
			t.Fatalf("headers of the sign-in page: %v", h)
		}
		su.shot("signin")
		su.signIn(d.Token, "Overview")
		cookies, err := chromedp.Call(su.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{d.URL() + "/ui/"}})
		must(err)
		var sess *network.Cookie
		for _, c := range cookies.Cookies {
			if c.Name == "rill_console" {
				sess = c
			}
		}
		if sess == nil || !sess.HTTPOnly || sess.SameSite != network.CookieSameSiteStrict || sess.Path != "/ui" || sess.Secure {
			t.Fatalf("session cookie: %+v", sess)
		}
		// The page's script sees no cookie, and nothing of the token is stored in the browser.
		if got := su.eval(`document.cookie + "|" + JSON.stringify(localStorage) + "|" + JSON.stringify(sessionStorage)`); got != "|{}|{}" {
			t.Fatalf("the browser holds %q", got)
		}
		if !strings.Contains(su.text("main"), "denied in the last hour") {
			t.Fatal("no check counts on the Overview")
		}
		allowed := su.eval(`document.querySelectorAll(".card .big")[2].textContent`)
		if allowed == "0" {
			t.Fatalf("the Overview counts no allowed checks after 5: %q", allowed)
		}
		if su.eval(`String(document.querySelectorAll("svg.chart rect.allowed").length)`) != "60" {
			t.Fatal("the chart has not 60 minutes")
		}
		su.shot("overview")
	})

	var issued, reportsTok string
	t.Run("issue a token by keyboard, see it once, use it at the check", func(t *testing.T) {
		su.t = t
		su.open("/ui/tokens", "My tokens")
		su.do("type the name", chromedp.Focus(chromedp.CSS("#display_name")), chromedp.KeyEvent("ci laptop"), chromedp.KeyEvent(kb.Tab))
		if id := su.eval(`document.activeElement.id`); id != "ttl_minutes" {
			t.Fatalf("Tab from the name went to %q", id)
		}
		su.do("tab to the networks", chromedp.KeyEvent(kb.Tab))
		if id := su.eval(`document.activeElement.id`); id != "allowed_networks" {
			t.Fatalf("Tab from the expiry went to %q", id)
		}
		su.do("tab to issue", chromedp.KeyEvent(kb.Tab))
		if id := su.eval(`document.activeElement.id`); id != "issue" {
			t.Fatalf("Tab from the allowed networks went to %q", id)
		}
		su.do("issue", chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS("#secret")))
		issued = su.eval(`document.getElementById("secret").value`)
		if _, err := token.Parse(issued); err != nil || !strings.HasPrefix(issued, "rill_usr_") {
			t.Fatalf("secret %q: %v", issued, err)
		}
		if !strings.Contains(su.text(".secret"), "only time it is shown") {
			t.Fatal("no warning with the secret")
		}
		su.do("copy", chromedp.Click(chromedp.CSS("#copy")))
		if _, err := chromedp.Run(su.ctx, chromedp.Poll[bool](`document.getElementById("copy-status").textContent !== ""`)); err != nil {
			t.Fatalf("the copy button says nothing: %v", err)
		}
		su.shot("tokens")
		if code, hs := ch.check(t, issued); code != 0 || hs["x-rill-subject"] != "admin@localhost" {
			t.Fatalf("the new token at the check: %d %v", code, hs)
		}
		su.open("/ui/tokens", "My tokens")
		if n := su.eval(`String(document.querySelectorAll("#secret").length)`); n != "0" {
			t.Fatal("the secret is shown a second time")
		}
	})

	t.Run("revoke it by keyboard, and the check answers 401", func(t *testing.T) {
		su.t = t
		tok, err := token.Parse(issued)
		must(err)
		summary := fmt.Sprintf(`form input[value=%q]`, tok.ID.String())
		su.do("open the confirmation", chromedp.Focus(chromedp.CSS("tr:has("+summary+") td.act summary")), chromedp.KeyEvent(kb.Enter))
		su.do("tab to the button", chromedp.KeyEvent(kb.Tab))
		if got := su.eval(`document.activeElement.textContent`); got != "Yes, revoke ci laptop" {
			t.Fatalf("focus after Tab: %q", got)
		}
		su.do("revoke", chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS(".notice")))
		// The page before the revoke may still be the one shown (its own notice, of the issue):
		// wait for the revoke's page rather than read the first notice there is.
		// A read while that page is replaced fails ("Cannot find context with specified id"): it is
		// read again, not taken as the answer.
		var notice string
		for deadline := time.Now().Add(20 * time.Second); !strings.Contains(notice, "revoked") && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			notice, _ = chromedp.Run(su.ctx, chromedp.Evaluate[string](`(document.querySelector(".notice") || {}).textContent || ""`))
		}
		if !strings.Contains(notice, "revoked") {
			t.Fatalf("notice: %q", notice)
		}
		if code, _ := ch.check(t, issued); code != 401 {
			t.Fatalf("revoked token at the check: %d", code)
		}
	})

	t.Run("create a service with attributes; the check passes them on", func(t *testing.T) {
		su.t = t
		su.open("/ui/services?org=acme", "Services")
		su.do("bad JSON", chromedp.SendKeys(chromedp.CSS("#attributes"), `{"team": `))
		if msg := su.text("#attributes-msg"); !strings.Contains(msg, "Not valid JSON") {
			t.Fatalf("inline validation: %q", msg)
		}
		su.eval(`document.getElementById("attributes").value = ""`)
		su.do("fill the form", chromedp.SendKeys(chromedp.CSS("#attributes"), `{"team": "data", "tier": 2}`),
			chromedp.SendKeys(chromedp.CSS("#name"), "reports"), chromedp.SetValue(chromedp.CSS("#project"), "web"),
			chromedp.SetValue(chromedp.CSS("#project_role"), "viewer"))
		if msg := su.text("#attributes-msg"); msg != "" {
			t.Fatalf("valid JSON still flagged: %q", msg)
		}
		su.shot("services")
		su.do("create", chromedp.Click(chromedp.CSS("#create")), chromedp.WaitVisible(chromedp.CSS("#secret")))
		svcTok := su.eval(`document.getElementById("secret").value`)
		code, hs := ch.check(t, svcTok)
		if code != 0 {
			t.Fatalf("the service's token at the check: %d", code)
		}
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(hs["x-rill-attributes"], "="))
		must(err)
		var attrs map[string]any
		must(json.Unmarshal(raw, &attrs))
		if attrs["team"] != "data" || attrs["tier"] != 2.0 || hs["x-rill-auth-kind"] != "service" {
			t.Fatalf("check headers: %v (attributes %s)", hs, raw)
		}
		su.open("/ui/services/reports?org=acme", "Service reports")
		su.shot("service")
		reportsTok = svcTok
	})

	t.Run("bind a service token to a network and a public URL to an origin, by keyboard; the check refuses them elsewhere", func(t *testing.T) {
		su.t = t
		// waitNotice waits for the page after a post, whose notice says want.
		waitNotice := func(want string) {
			t.Helper()
			notice := ""
			for deadline := time.Now().Add(20 * time.Second); !strings.Contains(notice, want) && time.Now().Before(deadline); {
				time.Sleep(100 * time.Millisecond)
				notice = su.eval(`(document.querySelector(".notice") || {textContent: ""}).textContent`)
			}
			if !strings.Contains(notice, want) {
				t.Fatalf("notice %q, want %q", notice, want)
			}
		}
		su.open("/ui/services/reports?org=acme", "Service reports")
		su.do("open the networks", chromedp.Focus(chromedp.CSS("td:not(.act) > details > summary")), chromedp.KeyEvent(kb.Enter))
		su.do("tab to the field", chromedp.KeyEvent(kb.Tab))
		if id := su.eval(`document.activeElement.id`); !strings.HasPrefix(id, "nets-") {
			t.Fatalf("Tab from the networks summary went to %q", id)
		}
		su.do("type a network and save", chromedp.KeyEvent("10.0.0.0/8"), chromedp.KeyEvent(kb.Enter))
		waitNotice("may now be used from 10.0.0.0/8 only")
		if got := su.text("td:not(.act) > details > summary"); got != "10.0.0.0/8" {
			t.Fatalf("the row's networks: %q", got)
		}
		// The check gives no client address here: a token bound to networks is refused, 403.
		if code, _ := ch.check(t, reportsTok); code != 403 {
			t.Fatalf("the bound service token at the check: %d, want 403", code)
		}

		mgc, err := admin.IssueMagicToken(ctx, "acme", "web", apiv1.MagicTokenRequest{Resources: []apiv1.ResourceName{{Type: "explore", Name: "sales"}}, TTLMinutes: 60})
		must(err)
		if code, _ := ch.check(t, mgc.Token); code != 0 {
			t.Fatalf("the public URL at the check before: %d", code)
		}
		su.open("/ui/publicurls?org=acme&project=web", "Public URLs")
		su.do("open where", chromedp.Focus(chromedp.CSS("td:not(.act) > details > summary")), chromedp.KeyEvent(kb.Enter))
		su.do("tab past the networks to the origins", chromedp.KeyEvent(kb.Tab), chromedp.KeyEvent(kb.Tab))
		if id := su.eval(`document.activeElement.id`); !strings.HasPrefix(id, "origins-") {
			t.Fatalf("two Tabs from the summary went to %q", id)
		}
		su.do("type an origin and save", chromedp.KeyEvent("https://shop.example.com"), chromedp.KeyEvent(kb.Enter))
		waitNotice("on pages of https://shop.example.com only")
		su.shot("publicurls")
		if code, _ := ch.check(t, mgc.Token); code != 403 {
			t.Fatalf("the public URL bound to an origin, at a check without one: %d, want 403", code)
		}
	})

	t.Run("members, hygiene and audit pages", func(t *testing.T) {
		su.t = t
		su.open("/ui/members?org=acme", "Members")
		if !strings.Contains(su.text("main"), "ana@acme.io") || !strings.Contains(su.text("main"), "web: editor") {
			t.Fatalf("members: %s", su.text("main"))
		}
		su.shot("members")
		su.open("/ui/hygiene?org=acme", "Token hygiene")
		if !strings.Contains(su.text("main"), "nightly-etl") {
			t.Fatalf("hygiene: %s", su.text("main"))
		}
		su.shot("hygiene")
		su.open("/ui/audit?action=token", "Audit log")
		if !strings.Contains(su.text("main"), "via: ui") {
			t.Fatalf("audit: %s", su.text("main"))
		}
		su.shot("audit")
	})

	t.Run("search a list and page through it, by keyboard", func(t *testing.T) {
		su.t = t
		for i := range 55 {
			_, err := admin.IssueToken(ctx, apiv1.TokenRequest{DisplayName: fmt.Sprintf("build-agent-%02d", i), TTLMinutes: 60 * 24 * 30})
			must(err)
		}
		su.open("/ui/tokens", "My tokens")
		if got := su.text(".pager .where"); got != "Page 1 of 2" {
			t.Fatalf("pager: %q", got)
		}
		su.do("search", chromedp.Focus(chromedp.CSS("#q")), chromedp.KeyEvent("build-agent-1"), chromedp.KeyEvent(kb.Enter))
		su.waitFor(`location.search.includes("q=build-agent-1") && document.readyState === "complete"`)
		rows := su.eval(`Array.from(document.querySelectorAll("main table tbody tr td:nth-child(2)")).map(td => td.textContent).join(",")`)
		if want := "build-agent-19,build-agent-18,build-agent-17,build-agent-16,build-agent-15,build-agent-14,build-agent-13,build-agent-12,build-agent-11,build-agent-10"; rows != want {
			t.Fatalf("rows found: %s", rows)
		}
		if info := su.text("#listinfo"); !strings.HasPrefix(info, "10 of ") || !strings.Contains(info, "match “build-agent-1”") {
			t.Fatalf("list info: %q", info)
		}
		su.shot("search")
		su.do("clear", chromedp.Click(chromedp.CSS("a.clear")), chromedp.WaitVisible(chromedp.CSS(".pager")))
		su.do("next page", chromedp.Click(chromedp.CSS(`.pager a[rel="next"]`)), chromedp.WaitVisible(chromedp.CSS(`.pager a[rel="prev"]`)))
		if got := su.text(".pager .where"); got != "Page 2 of 2" {
			t.Fatalf("pager after Next: %q", got)
		}
	})

	t.Run("a narrow window: the menu wraps, forms take one column, tables scroll in their panel", func(t *testing.T) {
		su.t = t
		must(chromedp.Do(su.ctx, chromedp.EmulateViewport(420, 860)))
		defer func() { must(chromedp.Do(su.ctx, chromedp.EmulateViewport(1280, 800))) }()
		su.open("/ui/services?org=acme", "Services")
		// Nothing but a table's own scroller is wider than the window.
		if w := su.eval(`String(document.documentElement.scrollWidth)`); w != "420" {
			t.Fatalf("the page is %s px wide in a 420 px window", w)
		}
		if cols := su.eval(`getComputedStyle(document.querySelector("form.form-grid")).gridTemplateColumns.split(" ").length + ""`); cols != "1" {
			t.Fatalf("the create form has %s columns in a narrow window", cols)
		}
		su.shot("narrow")
	})

	viewer := newTab(t, browserCtx, d.URL(), chromedp.WithNewBrowserContext())
	menu := func(tb *tab) string {
		return tb.eval(`Array.from(document.querySelectorAll("#menu a")).map(a => a.textContent).join(",")`)
	}
	t.Run("each role's menu offers only the pages it may open", func(t *testing.T) {
		viewer.t = t
		if got := menu(su); got != "Overview,My tokens,Services,Public URLs,Members,Token hygiene,Org settings,Audit log" {
			t.Fatalf("the superuser's menu: %q", got)
		}
		viewer.signIn(viewerTok.Token, "My tokens")
		if got := menu(viewer); got != "My tokens" {
			t.Fatalf("an org viewer's menu: %q", got)
		}
		viewer.shot("viewer")
		editorTok, err := admin.IssueToken(ctx, apiv1.TokenRequest{DisplayName: "ana laptop", UserEmail: "ana@acme.io"})
		must(err)
		editor := newTab(t, browserCtx, d.URL(), chromedp.WithNewBrowserContext())
		editor.signIn(editorTok.Token, "My tokens")
		if got := menu(editor); got != "My tokens,Members" {
			t.Fatalf("an org editor's menu: %q", got)
		}
		editor.open("/ui/members", "Members")
		if !strings.Contains(editor.text("main"), "viewer@acme.io") {
			t.Fatalf("the editor's Members: %s", editor.text("main"))
		}
		// A page typed in anyway is the API's clear 403, with the menu; a path with no page is a
		// 404 with the menu and no sign-in link.
		viewer.open("/ui/services", "Not allowed (403)")
		if !strings.Contains(viewer.text("main"), "lacks manage_org") {
			t.Fatalf("403 page: %s", viewer.text("main"))
		}
		viewer.shot("forbidden")
		viewer.open("/ui/nope", "Not found (404)")
		if menu(viewer) != "My tokens" || viewer.eval(`String(document.querySelectorAll("a[href='/ui/signin']").length)`) != "0" {
			t.Fatalf("signed-in 404: %s", viewer.eval(`document.body.innerHTML`))
		}
	})

	t.Run("the session ends when its token is revoked elsewhere", func(t *testing.T) {
		viewer.t = t
		if _, err := admin.RevokeToken(ctx, "viewer@acme.io", viewerTok.ID); err != nil {
			t.Fatal(err)
		}
		viewer.open("/ui/tokens", "Sign in")
		if !strings.Contains(viewer.text("main"), "was revoked or has expired") {
			t.Fatalf("sign-in page: %s", viewer.text("main"))
		}
	})

	t.Run("a form without its CSRF token is refused", func(t *testing.T) {
		su.t = t
		su.open("/ui/tokens", "My tokens")
		before, err := admin.ListTokens(ctx, "")
		must(err)
		su.eval(`document.querySelector("form[action='/ui/tokens'] input[name=csrf]").remove(); ""`)
		su.do("post without the token", chromedp.SendKeys(chromedp.CSS("#display_name"), "forged"), chromedp.Click(chromedp.CSS("#issue")))
		su.waitTitle("Form refused")
		if !strings.Contains(su.text("main"), "CSRF") {
			t.Fatalf("refusal page: %s", su.text("main"))
		}
		after, err := admin.ListTokens(ctx, "")
		must(err)
		if len(after) != len(before) {
			t.Fatal("a form without its CSRF token issued a token")
		}
	})

	for name, tb := range map[string]*tab{"superuser": su, "viewer": viewer} {
		tb.mu.Lock()
		for _, m := range tb.msgs {
			// The two pages that answered 403 on purpose (the viewer's Services, the form without
			// its CSRF token): a browser logs a document's 4xx as an error.
			if m.Source == "network" && (strings.Contains(m.Text, "status of 403") &&
				(strings.HasSuffix(m.URL, "/ui/services") || strings.HasSuffix(m.URL, "/ui/tokens")) ||
				strings.Contains(m.Text, "status of 404") && strings.HasSuffix(m.URL, "/ui/nope")) {
				continue
			}
			t.Errorf("console message in the %s's tab: %s (%s:%d)", name, m, m.URL, m.Line)
		}
		tb.mu.Unlock()
	}
}
