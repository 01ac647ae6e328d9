package ctl_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/internal/testenv"
)

// storedCreds reads rillctl's credentials file under the XDG_CONFIG_HOME xdg (nil: none).
func storedCreds(t *testing.T, xdg string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(xdg, "rillctl", "credentials.json"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("credentials file %s: %v", b, err)
	}
	return m
}

// checkAs runs the check's HTTP mode with tok on acme/web and returns its status and headers.
func checkAs(t *testing.T, d *testenv.Daemon, tok string) (int, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("GET", d.URL()+"/ext_authz/v1/orgs/acme/projects/web/runtime/api/x", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

// TestSudoAssume drives rillctl sudo user assume and unassume through the real binary against
// the real daemon, on Badger and on PostgreSQL, with the superuser's token stored in the
// credentials file (as rillctl login leaves it) and, separately, given in RILLCTL_TOKEN; then
// revoke --all and --representing.
func TestSudoAssume(t *testing.T) {
	t.Run("Badger", func(t *testing.T) { testSudoAssume(t) })
	t.Run("PostgreSQL", func(t *testing.T) {
		dbURL, _ := testenv.PostgresDB(t, "")
		testSudoAssume(t, "--store", dbURL)
	})
}

func testSudoAssume(t *testing.T, args ...string) {
	d := testenv.Start(t, "", args...)
	home := t.TempDir()
	xdg := filepath.Join(home, "config")
	base := cli{t: t, bin: testenv.Bin(t, "rillctl"), env: []string{"RILLCTL_API_URL=" + d.URL(), "RILLCTL_ORG=acme", "TZ=UTC", "HOME=" + home, "XDG_CONFIG_HOME=" + xdg}}
	su := base.as(d.Token)
	su.ok("org", "create", "acme")
	su.ok("project", "create", "web")
	su.ok("user", "create", "bob@acme.io", "--project", "web", "--project-role", "viewer", "--groups", "eng")
	bobTok := userTokenRe.FindStringSubmatch(su.ok("token", "issue", "--user", "bob@acme.io", "--display-name", "bob's own"))[1]
	bob := base.as(bobTok)

	// The superuser's token stored as rillctl login stores it; base uses it.
	if err := os.MkdirAll(filepath.Join(xdg, "rillctl"), 0o700); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]string{"url": d.URL(), "token": d.Token})
	if err := os.WriteFile(filepath.Join(xdg, "rillctl", "credentials.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := base.ok("whoami"); got != "user admin@localhost (superuser)\n" {
		t.Fatalf("whoami with the stored token: %q", got)
	}

	// Refusals: not a superuser (nothing stored), yourself, an unknown user, a bad ttl.
	bob.fails("only a superuser may act as another user (user:bob@acme.io is not one)", "sudo", "user", "assume", "admin@localhost")
	base.fails("you cannot act as yourself", "sudo", "user", "assume", "admin@localhost")
	base.fails(`user "nobody@acme.io" not found`, "sudo", "user", "assume", "nobody@acme.io")
	base.fails("--ttl-minutes must be from 1 to 1440", "sudo", "user", "assume", "bob@acme.io", "--ttl-minutes", "0")
	base.fails("you are not acting as another user: the stored token is admin@localhost's own", "sudo", "user", "unassume")
	if c := storedCreds(t, xdg); c["token"] != d.Token || c["backup_token"] != "" {
		t.Fatalf("refusals changed the stored credentials: %v", c)
	}

	out := base.ok("sudo", "user", "assume", "bob@acme.io", "--ttl-minutes", "30")
	if !strings.HasPrefix(out, "Acting as bob@acme.io until ") || !strings.Contains(out, "rillctl sudo user unassume") || strings.Contains(out, "rill_usr_") && regexp.MustCompile(`rill_usr_[0-9A-Za-z]{60}`).MatchString(out) {
		t.Errorf("assume printed %q", out)
	}
	c := storedCreds(t, xdg)
	assumed := c["token"]
	if c["backup_token"] != d.Token || !strings.HasPrefix(assumed, "rill_usr_") || assumed == d.Token || c["url"] != d.URL() {
		t.Fatalf("after assume the file holds %v", c)
	}
	if fi, err := os.Stat(filepath.Join(xdg, "rillctl", "credentials.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("credentials file mode: %v %v", fi.Mode(), err)
	}
	if got := base.ok("whoami"); got != "user bob@acme.io (assumed by admin@localhost)\n" {
		t.Errorf("whoami while assumed: %q", got)
	}
	// A check with it is bob, with bob's role and groups.
	status, hdr := checkAs(t, d, assumed)
	if status != 200 || hdr.Get("X-Rill-Subject") != "bob@acme.io" || hdr.Get("X-Rill-Project-Role") != "viewer" {
		t.Errorf("check with the assumed token: %d %v", status, hdr)
	}
	base.fails("you are already acting as another user: run rillctl sudo user unassume first", "sudo", "user", "assume", "bob@acme.io")
	// Lists show it as such, the superuser's and bob's.
	for name, out := range map[string]string{"superuser": su.ok("token", "list"), "bob": bob.ok("token", "list")} {
		if !strings.Contains(out, `Support for bob@acme.io (acting as bob@acme.io, by admin@localhost)`) {
			t.Errorf("%s's token list does not show the assumed token as such:\n%s", name, out)
		}
	}
	// What it does is audited as bob, assumed by the superuser. It cannot issue bob a token
	// that would outlive it.
	base.fails("no token may be issued with an assumed token", "token", "issue", "--display-name", "made while assumed")

	out = base.ok("sudo", "user", "unassume")
	if out != "Stopped acting as bob@acme.io; back to the token stored before.\n" {
		t.Errorf("unassume printed %q", out)
	}
	if c := storedCreds(t, xdg); c["token"] != d.Token || c["backup_token"] != "" {
		t.Errorf("after unassume the file holds %v", c)
	}
	if got := base.ok("whoami"); got != "user admin@localhost (superuser)\n" {
		t.Errorf("whoami after unassume: %q", got)
	}
	if status, _ := checkAs(t, d, assumed); status != 401 {
		t.Errorf("the assumed token after unassume: %d, want 401 (revoked)", status)
	}
	base.fails("you are not acting as another user", "sudo", "user", "unassume")

	var evs []apiv1.AuditEvent
	if err := json.Unmarshal([]byte(su.ok("audit", "list", "--json")), &evs); err != nil {
		t.Fatal(err)
	}
	var assume, issued, revoked bool
	for _, ev := range evs {
		switch {
		case ev.Action == "user.assume" && ev.Outcome == "ok":
			assume = ev.Actor == "user:admin@localhost" && strings.HasPrefix(ev.Target, "user:bob@acme.io token:") && strings.Contains(ev.Detail, "acting as user:bob@acme.io")
		case ev.Action == "token.issue" && ev.Actor == "user:bob@acme.io":
			issued = strings.HasPrefix(ev.Outcome, "denied: ") && strings.Contains(ev.Detail, "assumed by user:admin@localhost")
		case ev.Action == "token.revoke" && strings.Contains(ev.Detail, "Support for bob@acme.io"):
			revoked = ev.Actor == "user:bob@acme.io" && strings.Contains(ev.Detail, "assumed by user:admin@localhost")
		}
	}
	if !assume || !issued || !revoked {
		t.Errorf("audit with both identities: assume %v, issue refused while assumed %v, unassume's revoke %v\n%+v", assume, issued, revoked, evs)
	}

	// With RILLCTL_TOKEN and no stored file: the env token is never written; the file holds
	// the assumed token only, the env token still wins (rillctl says so), and unassume revokes
	// the stored assumed token and removes the file.
	home2 := t.TempDir()
	xdg2 := filepath.Join(home2, "config")
	env2 := cli{t: t, bin: base.bin, env: []string{"RILLCTL_API_URL=" + d.URL(), "TZ=UTC", "HOME=" + home2, "XDG_CONFIG_HOME=" + xdg2}}.as(d.Token)
	r := env2.run("sudo", "user", "assume", "bob@acme.io")
	if r.code != 0 || !strings.Contains(r.err, "unset RILLCTL_TOKEN") {
		t.Fatalf("assume with RILLCTL_TOKEN: exit %d, stderr %q", r.code, r.err)
	}
	c2 := storedCreds(t, xdg2)
	raw, _ := os.ReadFile(filepath.Join(xdg2, "rillctl", "credentials.json"))
	if c2["token"] == "" || c2["backup_token"] != "" || strings.Contains(string(raw), d.Token) {
		t.Fatalf("assume with RILLCTL_TOKEN stored %s", raw)
	}
	if got := env2.ok("whoami"); got != "user admin@localhost (superuser)\n" {
		t.Errorf("whoami with RILLCTL_TOKEN set after assume: %q (the env token wins)", got)
	}
	if got := (cli{t: t, bin: base.bin, env: []string{"RILLCTL_API_URL=" + d.URL(), "HOME=" + home2, "XDG_CONFIG_HOME=" + xdg2}}).ok("whoami"); got != "user bob@acme.io (assumed by admin@localhost)\n" {
		t.Errorf("whoami without RILLCTL_TOKEN after assume: %q", got)
	}
	// Assuming again with RILLCTL_TOKEN does not keep the stored assumed token as the backup
	// (unassume would restore it as if it were one's own).
	env2.fails("you are already acting as bob@acme.io (the stored token)", "sudo", "user", "assume", "bob@acme.io")
	if c := storedCreds(t, xdg2); c["token"] != c2["token"] || c["backup_token"] != "" {
		t.Errorf("a refused second assume changed the file: %v", c)
	}
	if got := env2.ok("sudo", "user", "unassume"); got != "Stopped acting as bob@acme.io; no stored token is left.\n" {
		t.Errorf("unassume with RILLCTL_TOKEN: %q", got)
	}
	if storedCreds(t, xdg2) != nil {
		t.Error("unassume left the credentials file")
	}
	if status, _ := checkAs(t, d, c2["token"]); status != 401 {
		t.Errorf("the assumed token after unassume: %d, want 401", status)
	}
	if got := env2.ok("whoami"); got != "user admin@localhost (superuser)\n" {
		t.Errorf("the env token after unassume: %q", got)
	}

	// revoke --representing: only the tokens acting as bob; --all: all of a user's.
	base.ok("sudo", "user", "assume", "bob@acme.io")
	assumed = storedCreds(t, xdg)["token"]
	bob.fails("only a superuser may revoke the tokens that act as a user", "token", "revoke", "--representing", "--user", "bob@acme.io")
	bob.fails("only a superuser may manage another user's tokens", "token", "revoke", "--all", "--user", "admin@localhost")
	su.fails("--representing needs --user EMAIL", "token", "revoke", "--representing")
	su.fails("give --all or --representing, not both", "token", "revoke", "--all", "--representing", "--user", "bob@acme.io")
	if got := su.ok("token", "revoke", "--representing", "--user", "bob@acme.io"); !strings.HasPrefix(got, "Revoked 1 of the tokens acting as bob@acme.io.\n") {
		t.Errorf("revoke --representing: %q", got)
	}
	if status, _ := checkAs(t, d, assumed); status != 401 {
		t.Errorf("assumed token after revoke --representing: %d", status)
	}
	if status, _ := checkAs(t, d, bobTok); status != 200 {
		t.Errorf("bob's own token after revoke --representing: %d", status)
	}
	// The stored assumed token is gone: unassume goes back all the same.
	if got := base.ok("sudo", "user", "unassume"); !strings.HasPrefix(got, "Stopped acting as") {
		t.Errorf("unassume of a revoked assumed token: %q", got)
	}
	if got := base.ok("whoami"); got != "user admin@localhost (superuser)\n" {
		t.Errorf("whoami after unassuming a revoked token: %q", got)
	}
	second := userTokenRe.FindStringSubmatch(bob.ok("token", "issue", "--display-name", "second"))[1]
	if got := su.ok("token", "revoke", "--all", "--user", "bob@acme.io"); !strings.HasPrefix(got, "Revoked 2 of bob@acme.io's tokens.\n") { // own, second (the assumed token issued none)
		t.Errorf("revoke --all --user: %q", got)
	}
	for _, tok := range []string{bobTok, second} {
		if status, _ := checkAs(t, d, tok); status != 401 {
			t.Errorf("bob's token after revoke --all: %d", status)
		}
	}
	su.ok("user", "create", "carol@acme.io", "--org-role", "viewer")
	carol := base.as(userTokenRe.FindStringSubmatch(su.ok("token", "issue", "--user", "carol@acme.io", "--display-name", "c"))[1])
	carol.ok("token", "issue", "--display-name", "c2")
	if got := carol.ok("token", "revoke", "--all"); !strings.HasPrefix(got, "Revoked 2 of your tokens.\n") {
		t.Errorf("revoke --all (own): %q", got)
	}
	carol.fails("token revoked", "whoami")
}

// TestStoredTokenRefused: a command whose stored token (rillctl login's, or an assumed user's)
// was revoked says it is the stored one and what to run, and unassume of a revoked assumed
// token says so rather than "Stopped acting as -".
func TestStoredTokenRefused(t *testing.T) {
	d := testenv.Start(t, "")
	home := t.TempDir()
	xdg := filepath.Join(home, "config")
	base := cli{t: t, bin: testenv.Bin(t, "rillctl"), env: []string{"RILLCTL_API_URL=" + d.URL(), "TZ=UTC", "HOME=" + home, "XDG_CONFIG_HOME=" + xdg}}
	su := base.as(d.Token)
	su.ok("user", "create", "bob@acme.io")
	bobTok := userTokenRe.FindStringSubmatch(su.ok("token", "issue", "--user", "bob@acme.io", "--display-name", "bob's"))[1]
	store := func(tok string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(xdg, "rillctl"), 0o700); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(map[string]string{"url": d.URL(), "token": tok})
		if err := os.WriteFile(filepath.Join(xdg, "rillctl", "credentials.json"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(xdg, "rillctl", "credentials.json")

	store(bobTok)
	su.ok("token", "revoke", "--all", "--user", "bob@acme.io")
	base.fails("token revoked: the token stored in "+path+" (run rillctl login again", "whoami")
	// A token given explicitly is not the stored one: no hint.
	if r := base.as(bobTok).run("whoami"); r.code != 1 || strings.Contains(r.err, path) {
		t.Errorf("whoami with a revoked RILLCTL_TOKEN: exit %d, %q", r.code, r.err)
	}

	store(d.Token)
	base.ok("sudo", "user", "assume", "bob@acme.io")
	su.ok("token", "revoke", "--representing", "--user", "bob@acme.io")
	base.fails("token revoked: the token of rillctl sudo user assume, stored in "+path+" (run rillctl sudo user unassume", "whoami")
	if got := base.ok("sudo", "user", "unassume"); got != "Stopped acting as another user (the assumed token was already revoked or expired); back to the token stored before.\n" {
		t.Errorf("unassume of a revoked assumed token: %q", got)
	}
	if got := base.ok("whoami"); got != "user admin@localhost (superuser)\n" {
		t.Errorf("whoami after unassume: %q", got)
	}
}
