package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

var menuRe = regexp.MustCompile(`<nav aria-label="Console pages" id="menu"><ul>([\s\S]*?)</ul></nav>`)
var menuItemRe = regexp.MustCompile(`<a href="(/ui/[a-z]+)"`)

// menuOf is the menu's links on a page.
func menuOf(body string) []string {
	m := menuRe.FindStringSubmatch(body)
	if m == nil {
		return nil
	}
	var out []string
	for _, it := range menuItemRe.FindAllStringSubmatch(m[1], -1) {
		out = append(out, it[1])
	}
	return out
}

// TestMenuOffersOnlyWhatOpens: each role's menu lists exactly the pages that answer it 200,
// and every page left out answers it 403.
func TestMenuOffersOnlyWhatOpens(t *testing.T) {
	e := setup(t, false)
	ctx := context.Background()
	if err := e.st.CreateUser(ctx, store.User{ID: "u-editor", Email: "ed@acme.io", OrgRoles: map[string]policy.Role{"acme": "editor"}}); err != nil {
		t.Fatal(err)
	}
	e.tokens["editor"] = e.issue(t, token.User, "u-editor", "editor")
	all := []string{"/ui/overview", "/ui/tokens", "/ui/services", "/ui/publicurls", "/ui/members", "/ui/hygiene", "/ui/settings", "/ui/audit"}
	for who, want := range map[string][]string{
		"su":     all,
		"admin":  {"/ui/tokens", "/ui/services", "/ui/publicurls", "/ui/members", "/ui/hygiene", "/ui/settings"},
		"editor": {"/ui/tokens", "/ui/members"},
		"viewer": {"/ui/tokens"},
	} {
		b := e.browser(t)
		b.signIn(e.tokens[who])
		got := menuOf(b.get("/ui/tokens").body)
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s's menu: %v, want %v", who, got, want)
		}
		for _, p := range all {
			code := b.get(p).code
			if offered := strings.Contains(" "+strings.Join(want, " ")+" ", " "+p+" "); offered != (code == http.StatusOK) || !offered && code != http.StatusForbidden {
				t.Errorf("%s: %s answers %d, offered in the menu: %v", who, p, code, offered)
			}
		}
	}
}

// TestNotFoundSignedIn: a path with no page answers 404 with the menu to a signed-in user, and
// with a sign-in link (no menu) to anyone else.
func TestNotFoundSignedIn(t *testing.T) {
	e := setup(t, false)
	b := e.browser(t)
	r := b.get("/ui/nope")
	if r.code != 404 || !strings.Contains(r.body, `href="/ui/signin"`) || menuOf(r.body) != nil {
		t.Fatalf("signed out: %d %s", r.code, r.body)
	}
	b.signIn(e.tokens["viewer"])
	for _, p := range []string{"/ui/nope", "/ui/services/x/y/z", "/ui/tokens/zz"} {
		r = b.get(p)
		if r.code != 404 || strings.Contains(r.body, `href="/ui/signin"`) || strings.Contains(r.body, ">Sign in<") ||
			len(menuOf(r.body)) == 0 || !strings.Contains(r.body, "Sign out") || !strings.Contains(r.body, "There is no console page at") {
			t.Errorf("%s signed in: %d %s", p, r.code, r.body)
		}
	}
}

// TestSearchAndPagingOnEveryList: every list takes ?q= and pages past 50 rows, keeping its org
// and the search in the pager's links.
func TestSearchAndPagingOnEveryList(t *testing.T) {
	e := setup(t, false)
	ctx := context.Background()
	now := time.Now()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range 60 {
		tok, err := token.New(token.User)
		must(err)
		must(e.st.CreateToken(ctx, store.NewToken(tok, "u-admin", fmt.Sprintf("laptop-%02d", i), "test", now.Add(-time.Duration(i)*time.Minute), 0)))
		must(e.st.CreateService(ctx, store.Service{ID: fmt.Sprintf("s-%d", i), Org: "acme", Name: fmt.Sprintf("job-%02d", i), OrgRole: "viewer", Attributes: map[string]any{"n": i}}))
		must(e.st.CreateUser(ctx, store.User{ID: fmt.Sprintf("u-%d", i), Email: fmt.Sprintf("m%02d@acme.io", i), OrgRoles: map[string]policy.Role{"acme": "viewer"}}))
		stok, err := token.New(token.Service)
		must(err)
		must(e.st.CreateToken(ctx, store.NewToken(stok, "s-etl", "", "test", now.Add(-time.Duration(i)*time.Minute), 0)))
	}
	b := e.browser(t)
	b.signIn(e.tokens["admin"])
	for _, tc := range []struct {
		path, q, hit, miss string
		total, found       int
	}{
		{"/ui/tokens", "LAPTOP-4", "laptop-42", "laptop-12", 61, 10},
		{"/ui/services?org=acme", "job-1", "job-13", "job-23", 61, 10},
		{"/ui/members?org=acme", "m3", "m37@acme.io", "m47@acme.io", 62, 10},
		{"/ui/hygiene?org=acme", "etl never", "service etl", "laptop", 61, 61},
		{"/ui/services/etl?org=acme", "rill_svc_", "rill_svc_", "", 61, 61},
	} {
		r := b.get(tc.path)
		if r.code != 200 {
			t.Fatalf("%s: %d", tc.path, r.code)
		}
		if !strings.Contains(r.body, `role="search"`) {
			t.Errorf("%s has no search", tc.path)
		}
		if tc.total > 50 && (!strings.Contains(r.body, fmt.Sprintf("%d ", tc.total)) || !strings.Contains(r.body, "Page 1 of 2") || !strings.Contains(r.body, `rel="next"`)) {
			t.Errorf("%s: no pager over %d rows:\n%s", tc.path, tc.total, r.body)
		}
		sep := "?"
		if strings.Contains(tc.path, "?") {
			sep = "&"
		}
		r = b.get(tc.path + sep + url.Values{"q": {tc.q}}.Encode())
		if !strings.Contains(r.body, tc.hit) || (tc.miss != "" && strings.Contains(r.body, tc.miss)) {
			t.Errorf("%s q=%s: hit %v, miss %v", tc.path, tc.q, strings.Contains(r.body, tc.hit), !strings.Contains(r.body, tc.miss))
		}
		if tc.found > 0 && !strings.Contains(r.body, fmt.Sprintf("%d of %d", tc.found, tc.total)) {
			t.Errorf("%s q=%s: no %d of %d", tc.path, tc.q, tc.found, tc.total)
		}
	}
	// Page 2 of the service list keeps the org and shows the rest.
	r := b.get("/ui/services?org=acme&page=2")
	if !strings.Contains(r.body, "Page 2 of 2") || !strings.Contains(r.body, `href="/ui/services?org=acme" rel="prev"`) || !strings.Contains(r.body, "showing 51–61") {
		t.Errorf("services page 2:\n%s", r.body)
	}
	// A search that finds nothing says so.
	if r := b.get("/ui/tokens?q=zzzz"); !strings.Contains(r.body, "No token matches “zzzz”") {
		t.Errorf("empty search:\n%s", r.body)
	}
}

// TestAuditNamesTokens: audit rows name a token by its display prefix and name, also after it
// was revoked (the API labels the issue and revocation), and a token.use summary names live
// tokens from the store; the UUID stays in the title.
func TestAuditNamesTokens(t *testing.T) {
	e := setup(t, false)
	ctx := context.Background()
	b := e.browser(t)
	b.signIn(e.tokens["su"])
	r := b.post("/ui/tokens", url.Values{"display_name": {"ci <laptop>"}, "ttl_minutes": {"60"}})
	if r.code != http.StatusSeeOther {
		t.Fatalf("issue: %d", r.code)
	}
	toks, err := e.st.ListTokens(ctx, "u-su")
	if err != nil {
		t.Fatal(err)
	}
	var ci store.Token
	for _, tk := range toks {
		if tk.DisplayName == "ci <laptop>" {
			ci = tk
		}
	}
	b.get("/ui/tokens")
	if r := b.post("/ui/tokens/revoke", url.Values{"id": {ci.ID.String()}}); r.code != http.StatusSeeOther {
		t.Fatalf("revoke: %d", r.code)
	}
	// A usage summary (as the resolver writes it) of a token that lives.
	adminTok, _ := token.Parse(e.tokens["admin"])
	if err := e.st.AppendAudit(ctx, store.AuditEvent{Time: time.Now(), Actor: "system", Action: "token.use", Target: "1 tokens, 3 checks", Outcome: "ok", Detail: adminTok.ID.String() + "×3"}); err != nil {
		t.Fatal(err)
	}
	r = b.get("/ui/audit")
	named := `<span class="token" title="token id ` + ci.ID.String() + `">token <code>` + ci.Prefix + `…</code> ci &lt;laptop&gt;</span>`
	if n := strings.Count(r.body, named); n != 2 {
		t.Errorf("the issue and the revocation name the token %d times, want 2:\n%s", n, r.body)
	}
	if !strings.Contains(r.body, `title="token id `+adminTok.ID.String()+`">token <code>`+adminTok.Display()+`…</code> admin</span>×3`) {
		t.Errorf("the use summary does not name the live token:\n%s", r.body)
	}
	if strings.Contains(r.body, "token:"+ci.ID.String()) {
		t.Error("a row still names the token by UUID")
	}
}

// TestOrgPickerOffersOrgsThatAllowThePage: a user who is an admin in one org and a viewer in
// another gets Services on the first by default (not a 403 on the second), the picker offers
// only the orgs where the page opens, and a service's page picks into the other org's list.
func TestOrgPickerOffersOrgsThatAllowThePage(t *testing.T) {
	e := setup(t, false)
	ctx := context.Background()
	for _, org := range []string{"aaa", "zed"} {
		if err := e.st.CreateOrg(ctx, store.Org{Name: org}); err != nil {
			t.Fatal(err)
		}
	}
	// "aaa" sorts first: a viewer there; an admin in acme and zed.
	if _, err := e.st.UpdateUser(ctx, "u-admin", func(u *store.User) error {
		u.OrgRoles["aaa"], u.OrgRoles["zed"] = "viewer", "admin"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	b := e.browser(t)
	b.signIn(e.tokens["admin"])
	r := b.get("/ui/services")
	if r.code != 200 || !strings.Contains(r.body, "Services of acme") {
		t.Fatalf("default org: %d", r.code)
	}
	opts := regexp.MustCompile(`<select id="org-pick" name="org">(.*?)</select>`).FindStringSubmatch(r.body)
	if opts == nil || opts[1] != "<option selected>acme</option><option>zed</option>" {
		t.Fatalf("picker: %q", opts)
	}
	if r := b.get("/ui/members"); strings.Contains(r.body, "<option>aaa</option>") || !strings.Contains(r.body, "<option>zed</option>") {
		t.Error("Members' picker offers an org where the user is a viewer (no read_org_members), or leaves out one where they are an admin")
	}
	if r := b.get("/ui/services/etl?org=acme"); !strings.Contains(r.body, `<form method="get" class="orgpicker" action="/ui/services">`) {
		t.Errorf("a service's picker does not go to the list:\n%s", r.body)
	}
	if r := b.get("/ui/services?org=aaa"); r.code != http.StatusForbidden || !strings.Contains(r.body, "lacks manage_org on org aaa") {
		t.Errorf("an org picked by hand where the role does not allow the page: %d", r.code)
	}
}
