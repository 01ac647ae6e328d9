package signin_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/internal/testenv"
)

// TestSignInRulesInChromium: who gets in, through the whole flow in Chromium against the
// orgs' sign-in rules: a new user at a domain a rule names is created with its role and lands
// in the console; one at a domain none names is refused (and not created); a group rule gives
// a new user its org role and attribute groups, and a changed group at the provider changes
// them at the next sign-in.
func TestSignInRulesInChromium(t *testing.T) {
	e := startWith(t, "")
	ctx := context.Background()
	for _, u := range []testenv.OPUser{
		{Username: "newbie", Password: password, Email: "new@acme.io", EmailVerified: true},
		{Username: "zed", Password: password, Email: "zed@other.example", EmailVerified: true},
		{Username: "gus", Password: password, Email: "gus@partner.example", EmailVerified: true, Groups: []string{"eng"}},
	} {
		e.op.SetUser(u)
	}
	if _, err := e.admin.SetSigninRules(ctx, "acme", apiv1.SigninRules{
		Domains: []apiv1.SigninDomainRule{{Domain: "acme.io", OrgRole: "viewer"}},
		Groups: []apiv1.SigninGroupRule{{Group: "eng", OrgRole: "editor", AttributeGroups: []string{"engineering", "data"}},
			{Group: "ops", OrgRole: "viewer", AttributeGroups: []string{"operations"}}},
	}); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t)
	user := func(email string) *apiv1.User {
		t.Helper()
		us, err := e.admin.ListUsers(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range us {
			if u.Email == email {
				return &u
			}
		}
		return nil
	}
	landAs := func(username, email string) {
		t.Helper()
		b.signIn(e, username)
		b.waitFor(`!!document.querySelector("nav")`)
		if who := b.eval(`document.querySelector(".who").textContent`); who != email {
			t.Fatalf("signed in as %q, want %s", who, email)
		}
		b.do("sign out", chromedp.Click(chromedp.CSS("form.signout button")))
		b.waitFor(`location.pathname === "/ui/signin"`)
	}

	t.Run("a new user admitted by domain", func(t *testing.T) {
		landAs("newbie", "new@acme.io")
		u := user("new@acme.io")
		if u == nil || u.OrgRoles["acme"] != "viewer" {
			t.Fatalf("new@acme.io: %+v", u)
		}
	})
	t.Run("a new user at a domain no rule names is refused", func(t *testing.T) {
		b.signIn(e, "zed")
		b.waitFor(`document.title.startsWith("Sign-in refused")`)
		if msg := b.eval(`document.querySelector("main").innerText`); !strings.Contains(msg, "zed@other.example signed in at test but is not a user here") {
			t.Fatalf("refusal: %s", msg)
		}
		if u := user("zed@other.example"); u != nil {
			t.Fatalf("a refused sign-in created %+v", u)
		}
	})
	t.Run("a groups mapping applied, and changed at the next sign-in", func(t *testing.T) {
		landAs("gus", "gus@partner.example")
		u := user("gus@partner.example")
		if u == nil || u.OrgRoles["acme"] != "editor" || !slices.Equal(sorted(u.Orgs["acme"].Groups), []string{"data", "engineering"}) {
			t.Fatalf("gus after the first sign-in: %+v", u)
		}
		e.op.SetUser(testenv.OPUser{Username: "gus", Password: password, Email: "gus@partner.example", EmailVerified: true, Groups: []string{"ops"}})
		landAs("gus", "gus@partner.example")
		u = user("gus@partner.example")
		if u == nil || u.OrgRoles["acme"] != "viewer" || !slices.Equal(u.Orgs["acme"].Groups, []string{"operations"}) {
			t.Fatalf("gus after his group changed: %+v", u)
		}
	})
	evs, err := e.admin.ListAudit(ctx, "", "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	var provisions int
	for _, ev := range evs {
		if ev.Action == "user.provision" && strings.Contains(ev.Detail, "test") {
			provisions++
		}
	}
	if provisions < 3 {
		t.Errorf("user.provision events with the provider: %d", provisions)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
