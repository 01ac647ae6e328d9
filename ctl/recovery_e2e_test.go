package ctl_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/rill-authd/rill-authd/internal/testenv"
)

// checkHTTP runs a check of tok in the daemon's HTTP mode against acme/web.
func checkHTTP(t *testing.T, d *testenv.Daemon, tok string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", d.URL()+"/ext_authz/v1/orgs/acme/projects/web/runtime/api/x", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// revokeRFC7009 revokes tok the way a secret scanner would: no credentials, just the token.
func revokeRFC7009(t *testing.T, d *testenv.Daemon, tok string) {
	t.Helper()
	resp, err := http.PostForm(d.URL()+"/v1/revoke", url.Values{"token": {tok}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(b) != 0 {
		t.Fatalf("revoke: %d %q", resp.StatusCode, b)
	}
}

func restore(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, err := exec.Command(testenv.Bin(t, "rill-authd"), append([]string{"restore"}, args...)...).CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

// TestBackupAndRestore backs up a live daemon with rillctl, revokes a token after the backup,
// restores into a fresh data dir and starts a daemon on it: what the backup held works again,
// the revoke made after it is undone (as the README warns), and the signing keys still verify
// the JWTs minted before.
func TestBackupAndRestore(t *testing.T) {
	dir := t.TempDir()
	// One --public-url for both daemons: it is the issuer of the JWTs, which must not change
	// with the port a restored daemon happens to get.
	d := testenv.Start(t, filepath.Join(dir, "data"), "--public-url", "http://authd.test")
	root := cli{t: t, bin: testenv.Bin(t, "rillctl"), env: []string{"RILLCTL_API_URL=" + d.URL(), "RILLCTL_ORG=acme", "TZ=UTC"}}
	su := root.as(d.Token)
	su.ok("org", "create", "acme")
	su.ok("project", "create", "web")
	robot := regexp.MustCompile(`Access token: (rill_svc_\S+)`).FindStringSubmatch(su.ok("service", "create", "robot", "--org-role", "admin"))[1]
	su.ok("user", "create", "dev@example.com", "--org-role", "viewer", "--project", "web", "--project-role", "viewer")
	userTok := func(name string) string {
		return regexp.MustCompile(`Token: (rill_usr_\S+)`).FindStringSubmatch(su.ok("token", "issue", "--user", "dev@example.com", "--display-name", name))[1]
	}
	kept, revokedLater, revokedBefore := userTok("kept"), userTok("revoked-later"), userTok("revoked-before")
	revokeRFC7009(t, d, revokedBefore)
	jwt := credentialsJWT(t, d.URL(), robot)
	for name, tok := range map[string]string{"superuser": d.Token, "service": robot, "kept": kept, "revoked-later": revokedLater, "jwt": jwt} {
		if code := checkHTTP(t, d, tok); code != 200 {
			t.Fatalf("%s before the backup: %d", name, code)
		}
	}

	// Back up with rillctl: never over an existing file unless --force; superusers only.
	file := filepath.Join(dir, "backups", "authd.backup")
	os.MkdirAll(filepath.Dir(file), 0o700)
	out := su.ok("admin", "backup", "-o", file)
	fi, err := os.Stat(file)
	if err != nil || !regexp.MustCompile(`^Wrote backup to `+regexp.QuoteMeta(file)+` \(\d+\.\d [KM]iB, \d+ bytes\)\.\n$`).MatchString(out) ||
		!strings.Contains(out, " "+strconv.FormatInt(fi.Size(), 10)+" bytes") || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin backup printed %q; file %v %v", out, fi, err)
	}
	su.fails("exists: pass --force to replace it", "admin", "backup", "-o", file)
	root.as(kept).fails("only a superuser", "admin", "backup", "-o", file+".2")
	if _, err := os.Stat(file + ".2"); err == nil {
		t.Error("a refused backup left a file")
	}
	su.ok("admin", "backup", "-o", file, "--force")
	if left, _ := filepath.Glob(filepath.Join(dir, "backups", ".*partial")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}

	// After the backup: a revoke the restore will not know of.
	revokeRFC7009(t, d, revokedLater)
	if code := checkHTTP(t, d, revokedLater); code != 401 {
		t.Fatalf("revoked token: %d", code)
	}
	d.Stop(t)

	// Restore refuses a store that is not empty, and fills an empty one.
	if out, code := restore(t, "--data-dir", filepath.Join(dir, "data"), "--from", file); code == 0 || !strings.Contains(out, "not empty") || !strings.Contains(out, "--force") {
		t.Fatalf("restore over the live store: exit %d: %s", code, out)
	}
	fresh := filepath.Join(dir, "restored")
	out, code := restore(t, "--data-dir", fresh, "--from", file)
	if code != 0 || !strings.Contains(out, "1 org, 1 project, 2 users, 1 service, 4 tokens, 1 tombstone, 0 imported token ids, 1 signing key,") || !strings.Contains(out, "revoke them again") {
		t.Fatalf("restore: exit %d: %s", code, out)
	}

	d2 := testenv.Start(t, fresh, "--public-url", "http://authd.test")
	if d2.Token != "" || strings.Contains(d2.Stderr(), "first start") {
		t.Fatalf("the restored store bootstrapped again:\n%s", d2.Stderr())
	}
	for name, tok := range map[string]string{"superuser": d.Token, "service": robot, "kept": kept, "jwt minted before": jwt,
		"revoked after the backup (works again)": revokedLater} {
		if code := checkHTTP(t, d2, tok); code != 200 {
			t.Errorf("%s after restore: %d", name, code)
		}
	}
	if code := checkHTTP(t, d2, revokedBefore); code != 401 {
		t.Errorf("token revoked before the backup: %d after restore", code)
	}
	root2 := cli{t: t, bin: root.bin, env: []string{"RILLCTL_API_URL=" + d2.URL(), "RILLCTL_ORG=acme"}}
	if got := root2.as(d.Token).ok("whoami"); got != "user admin@localhost (superuser)\n" {
		t.Errorf("bootstrap superuser after restore: %q", got)
	}
	// As the README says: revoke again what was revoked after the backup.
	revokeRFC7009(t, d2, revokedLater)
	if code := checkHTTP(t, d2, revokedLater); code != 401 {
		t.Errorf("revoked again: %d", code)
	}
	if audit := root2.as(d.Token).ok("audit", "list", "--limit", "1000"); !strings.Contains(audit, "admin.backup") || !strings.Contains(audit, "token-holder") {
		t.Errorf("audit after restore:\n%s", audit)
	}
	d2.Stop(t)
}

// credentialsJWT mints an ephemeral JWT for acme/web with an issuer's token.
func credentialsJWT(t *testing.T, api, issuer string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", api+"/v1/orgs/acme/projects/web/credentials", strings.NewReader(`{"user_email":"guest@example.com","ttl_seconds":3600}`))
	req.Header.Set("Authorization", "Bearer "+issuer)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var cr struct {
		AccessToken string `json:"accessToken"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&cr); err != nil || resp.StatusCode != 200 || cr.AccessToken == "" {
		t.Fatalf("credentials: %d %v", resp.StatusCode, err)
	}
	return cr.AccessToken
}
