package ctl_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rill-authd/rill-authd/internal/testenv"
)

// TestSigninRulesCLI: `rillctl org signin-rules show|set` against the real daemon: an org admin
// sets domain and group rules from flags and from a JSON file, reads them back (text and
// --json); bad domains, unknown roles and malformed flags are refused with the reason; a viewer
// may neither read nor set them (403, audited); an org admin may add only their own email's
// domain and never a public one, a superuser any; a new domain brings the existing users there
// into the org (Rill's whitelisting); every change is audited org.signin_rules.
func TestSigninRulesCLI(t *testing.T) {
	d := testenv.Start(t, "")
	root := cli{t: t, bin: testenv.Bin(t, "rillctl"), env: []string{"RILLCTL_API_URL=" + d.URL(), "RILLCTL_ORG=acme", "TZ=UTC"}}
	su := root.as(d.Token)
	su.ok("org", "create", "acme")
	su.ok("user", "create", "ann@acme.io", "--org-role", "admin")
	su.ok("user", "create", "gil@gmail.com", "--org-role", "admin")
	su.ok("user", "create", "vic@acme.io", "--org-role", "viewer")
	su.ok("org", "create", "zorg")
	su.ok("user", "create", "zed@acme.io", "--org", "zorg") // not in acme: joins when acme.io becomes a rule
	tokRe := regexp.MustCompile(`Token: (rill_usr_[0-9A-Za-z]{60})`)
	issueFor := func(email string) cli {
		m := tokRe.FindStringSubmatch(su.ok("token", "issue", "--display-name", "t", "--user", email))
		if m == nil {
			t.Fatalf("token issue for %s printed no token", email)
		}
		return root.as(m[1])
	}
	ann, gil, vic := issueFor("ann@acme.io"), issueFor("gil@gmail.com"), issueFor("vic@acme.io")

	if out := ann.ok("org", "signin-rules", "show"); out != "No sign-in rules: only users who already exist can sign in to org \"acme\" with an identity provider.\n" {
		t.Errorf("show with no rules: %q", out)
	}
	vic.fails("lacks manage_org on org acme", "org", "signin-rules", "show")
	vic.fails("lacks manage_org on org acme", "org", "signin-rules", "set", "--domain", "acme.io=viewer")

	out := ann.ok("org", "signin-rules", "set", "--domain", "ACME.io=Viewer", "--group", "eng=editor:engineering,data",
		"--group", "CN=Admins,OU=Groups=admin", "--group", "all=guest")
	want := `Updated the sign-in rules of org "acme".
1 existing user(s) at the new domains joined the org: zed@acme.io
DOMAIN     ORG ROLE
acme.io    viewer

GROUP                  ORG ROLE    ATTRIBUTE GROUPS
eng                    editor      data,engineering
CN=Admins,OU=Groups    admin       -
all                    guest       -
`
	if out != want {
		t.Errorf("set printed:\n%s\nwant:\n%s", out, want)
	}
	if got := ann.ok("org", "signin-rules", "show"); got != strings.SplitN(want, "\n", 3)[2] {
		t.Errorf("show:\n%s", got)
	}
	js := ann.ok("--json", "org", "signin-rules", "show")
	for _, w := range []string{`"domain": "acme.io"`, `"org_role": "viewer"`, `"group": "CN=Admins,OU=Groups"`, `"attribute_groups": []`} {
		if !strings.Contains(js, w) {
			t.Errorf("show --json lacks %s:\n%s", w, js)
		}
	}

	// Refusals, each with its reason; none changes the rules.
	for _, tc := range []struct {
		who  cli
		want string
		args []string
	}{
		{ann, "holds an @", []string{"--domain", "ann@acme.io=viewer"}},
		{ann, "is not a domain name with a dot", []string{"--domain", "acme=viewer"}},
		{ann, `org_role "owner" is not an org role`, []string{"--domain", "acme.io=owner"}},
		{ann, `org_role "superuser" is not an org role`, []string{"--group", "eng=superuser"}},
		{ann, "is named twice", []string{"--group", "eng=viewer", "--group", "eng=editor"}},
		{ann, "want DOMAIN=ROLE", []string{"--domain", "acme.io"}},
		{ann, "want GROUP=ROLE", []string{"--group", "eng"}},
		{ann, "only for the domain of their own email", []string{"--domain", "acme.io=viewer", "--domain", "globex.io=viewer"}},
		{gil, "public email domain", []string{"--domain", "gmail.com=viewer"}},
		{ann, "nothing to set", nil},
		{ann, "--clear removes every rule: give it alone", []string{"--clear", "--domain", "acme.io=viewer"}},
		{ann, "either in --file or as --domain and --group flags", []string{"--file", "x.json", "--group", "eng=viewer"}},
	} {
		tc.who.fails(tc.want, append([]string{"org", "signin-rules", "set"}, tc.args...)...)
	}
	if got := ann.ok("org", "signin-rules", "show"); !strings.Contains(got, "CN=Admins,OU=Groups    admin") {
		t.Errorf("a refused set changed the rules:\n%s", got)
	}

	// A superuser adds any domain; an org admin keeps it while replacing the rest.
	su.ok("org", "signin-rules", "set", "--domain", "acme.io=viewer", "--domain", "partner.example=guest")
	out = ann.ok("org", "signin-rules", "set", "--domain", "acme.io=editor", "--domain", "partner.example=guest")
	if !strings.Contains(out, "partner.example    guest") || !strings.Contains(out, "acme.io            editor") {
		t.Errorf("set keeping a superuser's domain:\n%s", out)
	}

	// From a file; unknown keys are refused rather than dropped.
	dir := t.TempDir()
	file := filepath.Join(dir, "rules.json")
	if err := os.WriteFile(file, []byte(`{"domains":[{"domain":"acme.io","org_role":"guest"}],"groups":[{"group":"data team","org_role":"viewer","attribute_groups":["analytics"]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out = ann.ok("org", "signin-rules", "set", "--file", file)
	if !strings.Contains(out, "acme.io    guest") || !strings.Contains(out, "data team    viewer      analytics") {
		t.Errorf("set --file:\n%s", out)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"domain":[{"domain":"acme.io","org_role":"guest"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	ann.fails(`unknown field "domain"`, "org", "signin-rules", "set", "--file", bad)
	if out := su.ok("user", "list", "--org", "acme"); !strings.Contains(out, "zed@acme.io") {
		t.Errorf("zed did not join acme:\n%s", out)
	}

	out = ann.ok("org", "signin-rules", "set", "--clear")
	if !strings.Contains(out, "No sign-in rules") {
		t.Errorf("set --clear:\n%s", out)
	}

	audit := su.ok("audit", "list", "--limit", "1000")
	var got [][]string
	for _, l := range lines(audit)[1:] {
		if f := fields(l); len(f) == 5 && f[2] == "org.signin_rules" {
			got = append(got, f[1:])
		}
	}
	for _, w := range [][]string{
		{"user:vic@acme.io", "org.signin_rules", "org:acme", "denied: user:vic@acme.io lacks manage_org on org acme"},
		{"user:ann@acme.io", "org.signin_rules", "org:acme domains:acme.io=viewer groups:eng=editor(data,engineering),CN=Admins,OU=Groups=admin,all=guest", "ok"},
		{"user:gil@gmail.com", "org.signin_rules", "org:acme", "denied: domain gmail.com is a public email domain: anyone can have an address there, so only a superuser may add it or raise its role"},
		{"user:admin@localhost", "org.signin_rules", "org:acme domains:acme.io=viewer,partner.example=guest groups:", "ok"},
		{"user:ann@acme.io", "org.signin_rules", "org:acme domains: groups:", "ok"},
	} {
		if !slices.ContainsFunc(got, func(r []string) bool { return slices.Equal(r, w) }) {
			t.Errorf("audit lacks %q:\n%s", w, audit)
		}
	}
}
