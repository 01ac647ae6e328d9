package console_test

import (
	"context"
	"encoding/csv"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

func TestSecurityHeadersAndCookieFlags(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		e := setup(t, useTLS)
		b := e.browser(t)
		r := b.get("/ui/signin")
		for h, want := range map[string]string{
			"X-Content-Type-Options": "nosniff",
			"Referrer-Policy":        "no-referrer",
			"Cache-Control":          "no-store",
		} {
			if got := r.h.Get(h); got != want {
				t.Errorf("%s: %q, want %q", h, got, want)
			}
		}
		csp := r.h.Get("Content-Security-Policy")
		for _, want := range []string{"script-src 'self'", "frame-ancestors 'none'", "default-src 'none'", "form-action 'self'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("CSP %q lacks %q", csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(r.body, "<script>") || strings.Contains(r.body, " style=") {
			t.Errorf("inline script or style allowed or used: %q", csp)
		}
		r = b.signIn(e.tokens["su"])
		if r.code != http.StatusSeeOther {
			t.Fatalf("sign in: %d %s", r.code, r.body)
		}
		var sess *http.Cookie
		for _, c := range r.ck {
			if c.Name == "rill_console" {
				sess = c
			}
		}
		if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode || sess.Path != "/ui" || sess.Secure != useTLS {
			t.Fatalf("session cookie (TLS %v): %+v", useTLS, sess)
		}
		if strings.Contains(sess.Value, e.tokens["su"][9:]) || len(sess.Value) < 40 {
			t.Errorf("the cookie is not an opaque random id: %q", sess.Value)
		}
		if r := b.get("/ui/static/console.js"); r.code != 200 || !strings.HasPrefix(r.h.Get("Content-Type"), "text/javascript") || r.h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("static script: %d %v", r.code, r.h)
		}
	}
}

func TestFormsWithoutTheCSRFTokenAreRefused(t *testing.T) {
	e := setup(t, false)
	b := e.browser(t)
	// Sign-in itself needs the form's token.
	if r := b.do("POST", "/ui/signin", url.Values{"token": {e.tokens["su"]}}); r.code != http.StatusForbidden || strings.Contains(r.body, "Set-Cookie") {
		t.Fatalf("sign-in without CSRF token: %d", r.code)
	}
	b.signIn(e.tokens["su"])
	before := tokenCount(t, e, "u-su")
	for name, form := range map[string]url.Values{
		"no token":    {"display_name": {"x"}, "ttl_minutes": {"60"}},
		"wrong token": {"display_name": {"x"}, "ttl_minutes": {"60"}, "csrf": {"AAAA" + b.csrf[4:]}},
		"empty token": {"display_name": {"x"}, "ttl_minutes": {"60"}, "csrf": {""}},
	} {
		r := b.do("POST", "/ui/tokens", form)
		if r.code != http.StatusForbidden || !strings.Contains(r.body, "CSRF") {
			t.Errorf("%s: %d %s", name, r.code, r.body)
		}
	}
	// The right token from another origin is refused too.
	r := b.do("POST", "/ui/tokens", url.Values{"display_name": {"x"}, "ttl_minutes": {"60"}, "csrf": {b.csrf}}, "Origin", "https://evil.example")
	if r.code != http.StatusForbidden {
		t.Errorf("cross-origin post: %d", r.code)
	}
	if n := tokenCount(t, e, "u-su"); n != before {
		t.Fatalf("a refused form issued a token: %d -> %d", before, n)
	}
	if r := b.post("/ui/tokens", url.Values{"display_name": {"ok"}, "ttl_minutes": {"60"}}); r.code != http.StatusSeeOther {
		t.Fatalf("the same form with its token: %d %s", r.code, r.body)
	}
	if n := tokenCount(t, e, "u-su"); n != before+1 {
		t.Fatalf("issued %d tokens, want 1", n-before)
	}
}

func tokenCount(t *testing.T, e *env, owner string) int {
	t.Helper()
	toks, err := e.st.ListTokens(context.Background(), owner)
	if err != nil {
		t.Fatal(err)
	}
	return len(toks)
}

func TestSessionIdleAbsoluteAndRevoked(t *testing.T) {
	e := setup(t, false)
	b := e.browser(t)
	b.signIn(e.tokens["admin"])
	e.clock.add(29 * time.Minute)
	if r := b.get("/ui/tokens"); r.code != 200 {
		t.Fatalf("29 min idle: %d", r.code)
	}
	e.clock.add(30 * time.Minute)
	if r := b.get("/ui/tokens"); r.code != http.StatusSeeOther || !strings.Contains(r.h.Get("Location"), "ended=idle") {
		t.Fatalf("30 min idle: %d %v", r.code, r.h.Get("Location"))
	}
	// Active all along, the session still ends at 12 h.
	b.signIn(e.tokens["admin"])
	for range 24 {
		e.clock.add(29 * time.Minute)
		if r := b.get("/ui/tokens"); r.code != 200 {
			t.Fatalf("active session refused before 12 h: %d", r.code)
		}
	}
	e.clock.add(29 * time.Minute) // 12 h 05 min
	if r := b.get("/ui/tokens"); r.code != http.StatusSeeOther || !strings.Contains(r.h.Get("Location"), "ended=expired") {
		t.Fatalf("12 h: %d %v", r.code, r.h.Get("Location"))
	}
	// Revoked elsewhere (here: straight in the store): the next page ends the session, and it
	// stays ended when the same cookie comes back.
	b.signIn(e.tokens["admin"])
	tok, _ := token.Parse(e.tokens["admin"])
	if err := e.st.DeleteToken(context.Background(), tok.ID); err != nil {
		t.Fatal(err)
	}
	if r := b.get("/ui/services"); r.code != http.StatusSeeOther || !strings.Contains(r.h.Get("Location"), "ended=revoked") {
		t.Fatalf("revoked token: %d %v", r.code, r.h.Get("Location"))
	}
	if r := b.get("/ui/tokens"); r.code != http.StatusSeeOther || !strings.Contains(r.h.Get("Location"), "/ui/signin") {
		t.Fatalf("after revocation: %d", r.code)
	}
}

func TestOnlyUserTokensSignIn(t *testing.T) {
	e := setup(t, false)
	b := e.browser(t)
	if r := b.signIn(e.tokens["svc"]); r.code != http.StatusForbidden || !strings.Contains(r.body, "user token") {
		t.Errorf("service token: %d %s", r.code, r.body)
	}
	bad := e.tokens["su"][:len(e.tokens["su"])-6] + "AAAAAA"
	if r := b.signIn(bad); r.code != http.StatusUnauthorized || !strings.Contains(r.body, "not accepted") || strings.Contains(r.body, bad) {
		t.Errorf("bad token: %d %s", r.code, r.body)
	}
	// The token with what is copied next to it: the curl header, rillctl's "Token: " line.
	for _, pasted := range []string{"Bearer " + e.tokens["viewer"], "Token: " + e.tokens["viewer"]} {
		if r := b.signIn(pasted); r.code != http.StatusBadRequest || !strings.Contains(r.body, "Paste the token alone, from rill_usr_ on") ||
			strings.Contains(r.body, e.tokens["viewer"][9:]) {
			t.Errorf("%.12s…: %d %s", pasted, r.code, r.body)
		}
	}
	if r := b.signIn(e.tokens["viewer"]); r.code != http.StatusSeeOther {
		t.Errorf("user token: %d", r.code)
	}
}

func TestViewerGetsA403PageAndEveryActionIsAudited(t *testing.T) {
	e := setup(t, false)
	v := e.browser(t)
	v.signIn(e.tokens["viewer"])
	r := v.get("/ui/services")
	if r.code != http.StatusForbidden || !strings.Contains(r.body, "Not allowed (403)") || !strings.Contains(r.body, "lacks manage_org") {
		t.Fatalf("viewer on Services: %d %s", r.code, r.body)
	}
	if !strings.Contains(r.body, `href="/ui/tokens"`) {
		t.Error("the 403 page has no way back")
	}
	// A viewer posting the create form anyway is refused by the API, and the refusal is
	// audited as made through the console.
	r = v.post("/ui/services", url.Values{"org": {"acme"}, "name": {"sneaky"}, "org_role": {"viewer"}})
	if r.code != http.StatusForbidden {
		t.Fatalf("viewer creating a service: %d", r.code)
	}
	a := e.browser(t)
	a.signIn(e.tokens["admin"])
	r = a.post("/ui/services", url.Values{"org": {"acme"}, "name": {"billing"}, "org_role": {"viewer"}, "attributes": {`{"team": "data", "tier": 2}`}})
	if r.code != http.StatusSeeOther {
		t.Fatalf("admin creating a service: %d %s", r.code, r.body)
	}
	page := a.get(r.h.Get("Location"))
	if !strings.Contains(page.body, "rill_svc_") || !strings.Contains(page.body, "only time it is shown") {
		t.Fatalf("no one-time secret on the service page:\n%s", page.body)
	}
	if again := a.get(r.h.Get("Location")); strings.Contains(again.body, `id="secret"`) {
		t.Fatal("the secret was shown twice")
	}
	evs, err := e.st.ListAudit(context.Background(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var denied, created bool
	for _, ev := range evs {
		if ev.Action == "service.create" && ev.Actor == "user:viewer@acme.io" && strings.HasPrefix(ev.Outcome, "denied") && ev.Detail == "via: ui" {
			denied = true
		}
		if ev.Action == "service.create" && ev.Actor == "user:admin@acme.io" && ev.Outcome == "ok" && ev.Target == "service:acme/billing" && ev.Detail == "via: ui" {
			created = true
		}
	}
	if !denied || !created {
		t.Fatalf("audit (denied %v, created %v): %+v", denied, created, evs)
	}
	s, err := e.st.GetServiceByName(context.Background(), "acme", "billing")
	if err != nil || s.Attributes["team"] != "data" {
		t.Fatalf("service attributes: %+v %v", s, err)
	}
}

func TestBadInputIsShownInThePage(t *testing.T) {
	e := setup(t, false)
	b := e.browser(t)
	b.signIn(e.tokens["admin"])
	for _, attrs := range []string{`{"team": `, `[1, 2]`, `null`, `"x"`, `{"a":1} {"b":2}`} {
		r := b.post("/ui/services", url.Values{"org": {"acme"}, "name": {"x1"}, "org_role": {"viewer"}, "attributes": {attrs}})
		if r.code != http.StatusSeeOther {
			t.Fatalf("%s: %d", attrs, r.code)
		}
		page := b.get(r.h.Get("Location"))
		if !strings.Contains(page.body, `id="attributes-msg" class="field-error" aria-live="polite">⚠ attributes`) || !strings.Contains(page.body, `aria-invalid="true"`) {
			t.Fatalf("%s: no inline error:\n%s", attrs, page.body)
		}
	}
	if _, err := e.st.GetServiceByName(context.Background(), "acme", "x1"); err == nil {
		t.Fatal("a service with bad attributes was created")
	}
	// The API's own refusal (a duplicate name) comes back next to the field too.
	r := b.post("/ui/services", url.Values{"org": {"acme"}, "name": {"etl"}, "org_role": {"viewer"}})
	if page := b.get(r.h.Get("Location")); !strings.Contains(page.body, "already exists") {
		t.Fatalf("duplicate service: %s", page.body)
	}
	for path, code := range map[string]int{"/ui/nowhere": 404, "/ui/services/nope?org=acme": 404, "/ui/services?org=nope": 404, "/ui/audit": 403} {
		r := b.get(path)
		if r.code != code || !strings.Contains(r.body, `role="alert"`) || strings.Contains(r.body, "goroutine") {
			t.Errorf("%s: %d, want %d with the error in the page", path, r.code, code)
		}
	}
}

func TestAuditFiltersPagesAndCSV(t *testing.T) {
	e := setup(t, false)
	ctx := context.Background()
	base := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	for i := range 120 {
		out := "ok"
		if i%3 == 0 {
			out = "denied: no"
		}
		if err := e.st.AppendAudit(ctx, store.AuditEvent{Time: base.Add(time.Duration(i) * time.Minute), Actor: "user:a@x.io",
			Action: "token.issue", Target: "=HYPERLINK(\"http://evil\")", Outcome: out}); err != nil {
			t.Fatal(err)
		}
	}
	b := e.browser(t)
	b.signIn(e.tokens["su"])
	r := b.get("/ui/audit?action=token.issue&outcome=denied&from=2026-01-02T03:00&to=2026-01-02T04:00")
	if r.code != 200 || !strings.Contains(r.body, "21 event(s)") || strings.Contains(r.body, "Page 1 of") {
		t.Fatalf("filtered audit: %d %s", r.code, r.body)
	}
	r = b.get("/ui/audit?action=token.issue&page=2")
	if !strings.Contains(r.body, "120 event(s)") || !strings.Contains(r.body, "Page 2 of 3") || !strings.Contains(r.body, `rel="prev"`) {
		t.Fatalf("page 2: %s", r.body)
	}
	r = b.get("/ui/audit.csv?action=token.issue&outcome=denied")
	if r.code != 200 || r.h.Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Fatalf("csv: %d %v", r.code, r.h)
	}
	rows, err := csv.NewReader(strings.NewReader(r.body)).ReadAll()
	if err != nil || len(rows) != 41 || rows[0][0] != "time" {
		t.Fatalf("csv rows %d: %v", len(rows), err)
	}
	if rows[1][3] != `'=HYPERLINK("http://evil")` {
		t.Errorf("formula not defused: %q", rows[1][3])
	}
	// From and To are UTC, 24-hour, ISO text fields (not the browser's local, 12-hour picker);
	// a bad value is a 400 saying what to type, with the value kept in the field.
	r = b.get("/ui/audit")
	for _, want := range []string{`id="from" name="from" value="" placeholder="YYYY-MM-DD HH:MM" pattern=`, `From (UTC, 24-hour)`} {
		if !strings.Contains(r.body, want) || strings.Contains(r.body, "datetime-local") {
			t.Errorf("the audit page's time field lacks %q", want)
		}
	}
	for _, bad := range []string{"yesterday", "01/02/2026, 03:04 PM"} {
		r := b.get("/ui/audit?" + url.Values{"from": {bad}}.Encode())
		if r.code != 400 || !strings.Contains(r.body, "must be a date and time in UTC, 24-hour, as YYYY-MM-DD HH:MM") || !strings.Contains(r.body, `value="`+template.HTMLEscapeString(bad)+`"`) {
			t.Errorf("bad time %q: %d", bad, r.code)
		}
	}
	r = b.get("/ui/audit?action=token.issue&from=2026-01-02+04:58&to=2026-01-02T04:59Z")
	if !strings.Contains(r.body, "2 event(s)") || !strings.Contains(r.body, `value="2026-01-02 04:59"`) {
		t.Errorf("the last two minutes, To inclusive: %s", r.body)
	}
}

func TestHygieneFindsAndRevokesASelection(t *testing.T) {
	e := setup(t, false)
	ctx := context.Background()
	now := time.Now()
	mk := func(owner, name string, lastUsed, expires time.Time) string {
		tok, err := token.New(token.Service)
		if err != nil {
			t.Fatal(err)
		}
		rec := store.NewToken(tok, owner, name, "test", now.Add(-90*24*time.Hour), 0)
		rec.ExpiresAt = expires
		if err := e.st.CreateToken(ctx, rec); err != nil {
			t.Fatal(err)
		}
		if err := e.st.TouchTokens(ctx, map[token.ID]time.Time{tok.ID: lastUsed}); err != nil {
			t.Fatal(err)
		}
		return tok.ID.String()
	}
	stale := mk("s-etl", "", now.Add(-40*24*time.Hour), now.Add(300*24*time.Hour))
	soon := mk("s-etl", "", now.Add(-time.Hour), now.Add(2*24*time.Hour))
	fresh := mk("s-etl", "", now.Add(-time.Hour), now.Add(300*24*time.Hour))
	a := e.browser(t)
	a.signIn(e.tokens["admin"])
	r := a.get("/ui/hygiene?org=acme&days=30")
	for _, want := range []string{"unused for over 30 days", "expires within 7 days", "never used", "Service tokens and public URLs only"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("hygiene lacks %q", want)
		}
	}
	if strings.Contains(r.body, "svc|etl|"+fresh) || strings.Contains(r.body, "viewer@acme.io") {
		t.Errorf("hygiene lists a healthy token, or (to an org admin) users' tokens")
	}
	if r := a.get("/ui/hygiene?org=acme&show=expiring"); !strings.Contains(r.body, soon) || strings.Contains(r.body, "svc|etl|"+stale) {
		t.Errorf("expiring filter")
	}
	r = a.post("/ui/hygiene/revoke", url.Values{"org": {"acme"}, "ref": {"svc|etl|" + stale, "svc|etl|" + soon}})
	if r.code != http.StatusSeeOther {
		t.Fatalf("revoke: %d %s", r.code, r.body)
	}
	if page := a.get(r.h.Get("Location")); !strings.Contains(page.body, "Revoked 2 token(s)") {
		t.Fatalf("after revoking: %s", page.body)
	}
	for id, gone := range map[string]bool{stale: true, soon: true, fresh: false} {
		tid, _ := token.ParseID(id)
		if _, err := e.st.GetToken(ctx, tid); (err != nil) != gone {
			t.Errorf("token %s: revoked %v, want %v", id, err != nil, gone)
		}
	}
	// A viewer's selection is refused by the API, token by token.
	v := e.browser(t)
	v.signIn(e.tokens["viewer"])
	v.get("/ui/tokens")
	if r := v.post("/ui/hygiene/revoke", url.Values{"org": {"acme"}, "ref": {"svc|etl|" + fresh}}); r.code != http.StatusForbidden {
		t.Fatalf("viewer revoking: %d", r.code)
	}
}

func TestServiceActionsAndLosingARole(t *testing.T) {
	e := setup(t, false)
	ctx := context.Background()
	a := e.browser(t)
	a.signIn(e.tokens["admin"])
	back := "/ui/services/etl?org=acme"
	a.get(back)
	steps := []struct {
		path string
		form url.Values
		want string
	}{
		{"/ui/services/etl/edit", url.Values{"org": {"acme"}, "new_name": {"etl"}, "attributes": {`{"team": "ops"}`}}, "Service etl saved."},
		{"/ui/services/etl/role", url.Values{"org": {"acme"}, "project": {"web"}, "project_role": {"editor"}}, "Roles of etl updated."},
		{"/ui/services/etl/role", url.Values{"org": {"acme"}, "org_role": {"admin"}}, "Roles of etl updated."},
		{"/ui/services/etl/tokens", url.Values{"org": {"acme"}}, "rill_svc_"},
	}
	for _, st := range steps {
		r := a.post(st.path, st.form)
		if r.code != http.StatusSeeOther {
			t.Fatalf("%s: %d %s", st.path, r.code, r.body)
		}
		if page := a.get(r.h.Get("Location")); !strings.Contains(page.body, st.want) {
			t.Fatalf("%s: page lacks %q:\n%s", st.path, st.want, page.body)
		}
	}
	s, err := e.st.GetServiceByName(ctx, "acme", "etl")
	if err != nil || s.Attributes["team"] != "ops" || s.OrgRole != "admin" || s.ProjectRoles["web"] != "editor" {
		t.Fatalf("service after the edits: %+v %v", s, err)
	}
	toks, _ := e.st.ListTokens(ctx, s.ID)
	if len(toks) != 2 {
		t.Fatalf("%d tokens, want 2", len(toks))
	}
	if r := a.post("/ui/services/etl/tokens/revoke", url.Values{"org": {"acme"}, "id": {toks[0].ID.String()}}); r.code != http.StatusSeeOther {
		t.Fatalf("revoke: %d", r.code)
	}
	if r := a.post("/ui/services/etl/delete", url.Values{"org": {"acme"}}); r.code != http.StatusSeeOther || r.h.Get("Location") != "/ui/services?org=acme" {
		t.Fatalf("delete: %d %v", r.code, r.h.Get("Location"))
	}
	if _, err := e.st.GetServiceByName(ctx, "acme", "etl"); err == nil {
		t.Fatal("service not deleted")
	}
	evs, _ := e.st.ListAudit(ctx, store.AuditFilter{Actor: "user:admin@acme.io"})
	got := map[string]bool{}
	for _, ev := range evs {
		if ev.Outcome == "ok" && strings.HasSuffix(ev.Detail, "via: ui") {
			got[ev.Action] = true
		}
	}
	for _, act := range []string{"service.edit", "service.set_role", "service.token.issue", "service.token.revoke", "service.delete"} {
		if !got[act] {
			t.Errorf("no %s audited via ui: %+v", act, evs)
		}
	}
	// Demoted to viewer while signed in: the next Services page is a 403, My tokens still works.
	if _, err := e.st.UpdateUser(ctx, "u-admin", func(u *store.User) error { u.OrgRoles["acme"] = "viewer"; return nil }); err != nil {
		t.Fatal(err)
	}
	if r := a.get("/ui/services?org=acme"); r.code != http.StatusForbidden {
		t.Fatalf("demoted admin on Services: %d", r.code)
	}
	if r := a.get("/ui/tokens"); r.code != 200 {
		t.Fatalf("demoted admin on My tokens: %d", r.code)
	}
	// Sign-out ends the session on the server: the cookie, kept, no longer works.
	old := a.c.Jar.Cookies(mustURL(t, e.srv.URL+"/ui/"))
	if len(old) == 0 {
		t.Fatal("no session cookie")
	}
	if r := a.post("/ui/signout", nil); r.code != http.StatusSeeOther || !strings.Contains(r.h.Get("Location"), "ended=signedout") {
		t.Fatalf("sign out: %d %v", r.code, r.h.Get("Location"))
	}
	b := e.browser(t)
	b.c.Jar.SetCookies(mustURL(t, e.srv.URL+"/ui/"), old)
	if r := b.get("/ui/tokens"); r.code != http.StatusSeeOther {
		t.Fatalf("the signed-out session still works: %d", r.code)
	}
}

// TestServiceRoleFormsPreselectNoRole: the role pickers on a service's page start at the
// service's own org role, or at "choose a role", never at the first option (admin): a reader who
// opened the page to change something else and pressed "Set org role" granted admin.
func TestServiceRoleFormsPreselectNoRole(t *testing.T) {
	e := setup(t, false)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(e.st.CreateService(context.Background(), store.Service{ID: "s-rep", Org: "acme", Name: "reports",
		ProjectRoles: map[string]policy.Role{"web": "viewer"}, Attributes: map[string]any{}}))
	a := e.browser(t)
	a.signIn(e.tokens["admin"])
	for _, tc := range []struct{ service, orgRole, projectRole string }{
		{"etl", "viewer", "choose a role"},            // org viewer: its own role
		{"reports", "choose a role", "choose a role"}, // no org role: nothing chosen
	} {
		page := a.get("/ui/services/" + tc.service + "?org=acme")
		if page.code != 200 {
			t.Fatalf("%s: %d", tc.service, page.code)
		}
		for id, want := range map[string]string{"set_org_role": tc.orgRole, "set_project_role": tc.projectRole} {
			if got := selectedOption(t, page.body, id); got != want {
				t.Errorf("%s: #%s starts at %q, want %q", tc.service, id, got, want)
			}
		}
	}
	// The placeholder is not a role: posted anyway (no browser check), the API refuses it.
	if r := a.post("/ui/services/reports/role", url.Values{"org": {"acme"}, "org_role": {""}}); r.code == http.StatusSeeOther {
		if page := a.get(r.h.Get("Location")); strings.Contains(page.body, "Roles of reports updated.") {
			t.Fatal("an empty org role was taken")
		}
	}
}

// selectedOption is the text of the option a browser shows first in the select of that id: the
// one marked selected, else the first.
func selectedOption(t *testing.T, body, id string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)<select id="` + regexp.QuoteMeta(id) + `"[^>]*>(.*?)</select>`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no select #%s in:\n%s", id, body)
	}
	opts := regexp.MustCompile(`<option([^>]*)>([^<]*)</option>`).FindAllStringSubmatch(m[1], -1)
	if len(opts) == 0 {
		t.Fatalf("select #%s has no options", id)
	}
	for _, o := range opts {
		if strings.Contains(o[1], "selected") {
			return o[2]
		}
	}
	return opts[0][2]
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestAuditCSVQuotesAndDefusesEveryCell: every field of the export is quoted, and a formula
// character is defused wherever a spreadsheet could start a cell: at the start of a field and
// after any separator it may split on (third red team: "x;=1+1;@evil" in an email was three
// cells, two of them formulas, to a spreadsheet splitting on ';').
func TestAuditCSVQuotesAndDefusesEveryCell(t *testing.T) {
	e := setup(t, false)
	evil := []string{"x;=1+1;@evil", "a,+SUM(1)|-2\t=3", `q";=HYPERLINK("http://evil")`, "line\n@cmd"}
	for i, s := range evil {
		if err := e.st.AppendAudit(context.Background(), store.AuditEvent{Time: time.Date(2026, 1, 2, 3, i, 0, 0, time.UTC),
			Actor: "user:" + s, Action: "user.create", Target: s, Outcome: "ok", Detail: s}); err != nil {
			t.Fatal(err)
		}
	}
	b := e.browser(t)
	b.signIn(e.tokens["su"])
	r := b.get("/ui/audit.csv?action=user.create")
	if r.code != 200 {
		t.Fatalf("csv: %d %s", r.code, r.body)
	}
	rows, err := csv.NewReader(strings.NewReader(r.body)).ReadAll()
	if err != nil || len(rows) != 1+len(evil) {
		t.Fatalf("csv rows %d: %v\n%s", len(rows), err, r.body)
	}
	// Every field quoted: each record, read as a CSV reader does, must be written back exactly
	// as quoted fields joined by commas.
	var want strings.Builder
	for _, row := range rows {
		for i, f := range row {
			if i > 0 {
				want.WriteByte(',')
			}
			want.WriteString(`"` + strings.ReplaceAll(f, `"`, `""`) + `"`)
		}
		want.WriteString("\r\n")
	}
	if r.body != want.String() {
		t.Errorf("not every field quoted:\n%q\nwant\n%q", r.body, want.String())
	}
	// Split on any separator a spreadsheet may use, no piece (its quotes trimmed) is a formula.
	for _, sep := range []string{",", ";", "\t", "|", "\n", `"`} {
		for _, piece := range strings.Split(r.body, sep) {
			piece = strings.TrimLeft(piece, `"`)
			if piece != "" && strings.ContainsRune("=+-@", rune(piece[0])) {
				t.Errorf("split on %q, a cell starts a formula: %q", sep, piece)
			}
		}
	}
	// Nothing is lost: the defused text is the original with quotes inserted.
	for _, row := range rows[1:] {
		if got := strings.ReplaceAll(row[3], "'", ""); !slices.Contains(evil, got) {
			t.Errorf("target %q is none of %q with only quotes added", row[3], evil)
		}
	}
}

// TestSessionsPerUserAndSigninRate (third red team): sessions were one pool with oldest-first
// eviction, so a member signing in 10,000 times signed everyone out. Now one user signs in at
// most 10 times a minute (429 with Retry-After past it), holds at most 10 sessions (their own
// oldest ends for an 11th), and never ends anyone else's.
func TestSessionsPerUserAndSigninRate(t *testing.T) {
	e := setup(t, false)
	victim := e.browser(t)
	if r := victim.signIn(e.tokens["viewer"]); r.code != http.StatusSeeOther {
		t.Fatalf("the viewer signs in: %d", r.code)
	}
	var mine []*browser
	for i := range 10 {
		b := e.browser(t)
		if r := b.signIn(e.tokens["admin"]); r.code != http.StatusSeeOther {
			t.Fatalf("the admin's sign-in %d of 10: %d %s", i+1, r.code, r.body)
		}
		mine = append(mine, b)
	}
	extra := e.browser(t)
	r := extra.signIn(e.tokens["admin"])
	if secs, _ := strconv.Atoi(r.h.Get("Retry-After")); r.code != http.StatusTooManyRequests || secs < 1 || secs > 6 || !strings.Contains(r.body, "more than 10 times in a minute") {
		t.Fatalf("an 11th sign-in in a minute: %d, Retry-After %q; want 429 and a wait of 1-6 s", r.code, r.h.Get("Retry-After"))
	}
	for _, ck := range r.ck {
		if ck.Name == "rill_console" && ck.Value != "" {
			t.Fatal("a refused sign-in set a session cookie")
		}
	}
	e.clock.add(time.Minute)
	if r := extra.signIn(e.tokens["admin"]); r.code != http.StatusSeeOther {
		t.Fatalf("the 11th sign-in a minute later: %d %s", r.code, r.body)
	}
	// The admin's oldest session made room; their others, and the viewer's, are still in.
	if r := mine[0].get("/ui/tokens"); r.code != http.StatusSeeOther || !strings.Contains(r.h.Get("Location"), "/ui/signin") {
		t.Errorf("the admin's oldest session after an 11th: %d, want signed out", r.code)
	}
	for name, b := range map[string]*browser{"the admin's 2nd": mine[1], "the admin's newest": extra, "the viewer's": victim} {
		if r := b.get("/ui/tokens"); r.code != 200 {
			t.Errorf("%s session: %d, want still signed in", name, r.code)
		}
	}
}
