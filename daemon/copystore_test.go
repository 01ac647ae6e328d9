package daemon_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/adminapi/client"
	"github.com/rill-authd/rill-authd/internal/testenv"
)

func copyStore(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(testenv.Bin(t, "rill-authd"), append([]string{"copy-store"}, args...)...).CombinedOutput()
	return string(out), err
}

// TestCopyStoreBothWays moves a deployment from Badger to PostgreSQL and back to an encrypted
// Badger directory with real daemons: every token keeps working (and a revoked one stays
// refused), the superuser is not bootstrapped again, the signing key and audit come along, and
// a destination that is not empty is refused unless --force.
func TestCopyStoreBothWays(t *testing.T) {
	db, _ := testenv.PostgresDB(t, "")
	dir := t.TempDir()
	ctx := context.Background()

	// A Badger deployment with a service token, a user token, a revoked token and a signing key.
	d := testenv.Start(t, filepath.Join(dir, "badger"))
	boot := d.Token
	c := client.New(d.URL(), boot)
	svc := acmeService(t, c, "ci")
	if _, err := c.CreateUser(ctx, apiv1.UserRequest{Email: "ada@acme.test", Org: "acme", OrgRole: "viewer"}); err != nil {
		t.Fatal(err)
	}
	usr, err := c.IssueToken(ctx, apiv1.TokenRequest{UserEmail: "ada@acme.test", DisplayName: "laptop"})
	if err != nil {
		t.Fatal(err)
	}
	gone, err := c.IssueServiceToken(ctx, "acme", "ci")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RevokeServiceToken(ctx, "acme", "ci", gone.ID); err != nil {
		t.Fatal(err)
	}
	if code := checkStatus(t, d, svc.Token); code != 200 {
		t.Fatalf("check before the copy: %d", code)
	}
	kid := jwksKID(t, d)
	if _, metrics := get(t, d.URL()+"/metrics"); strings.Contains(metrics, "rill_authd_store_") {
		t.Errorf("a Badger daemon has PostgreSQL metrics")
	}
	if out, err := copyStore(t, "--from", filepath.Join(dir, "badger"), "--to", db); err == nil || !strings.Contains(out, "in use: stop the daemon") {
		t.Errorf("copy from a directory a daemon is using: %v\n%s", err, out)
	}
	d.Stop(t)

	// Badger -> PostgreSQL.
	out, err := copyStore(t, "--from", filepath.Join(dir, "badger"), "--to", db)
	if err != nil || !strings.Contains(out, "1 org, 1 project, 2 users, 1 service, 3 tokens, 1 tombstone, 0 imported token ids, 1 signing key") {
		t.Fatalf("copy-store to PostgreSQL: %v\n%s", err, out)
	}
	p := testenv.Start(t, "", "--store", db)
	if p.Token != "" || strings.Contains(p.Stderr(), "first start") {
		t.Fatalf("the copy bootstrapped again:\n%s", p.Stderr())
	}
	assertCopied(t, p, boot, svc.Token, usr.Token, gone.Token, kid)
	pc := client.New(p.URL(), boot)
	made, err := pc.IssueServiceToken(ctx, "acme", "ci")
	if err != nil {
		t.Fatal(err)
	}
	if evs, err := pc.ListAudit(ctx, "", "", 0); err != nil || len(evs) < 5 {
		t.Errorf("audit after the copy: %d events, %v", len(evs), err)
	}
	p.Stop(t)

	// PostgreSQL -> an encrypted Badger directory.
	key := writeFile(t, dir, "key", strings.Repeat("cd", 32))
	back := filepath.Join(dir, "back")
	if out, err := copyStore(t, "--from", db, "--to", back, "--to-encryption-key-file", key); err != nil || !strings.Contains(out, "4 tokens") {
		t.Fatalf("copy-store to Badger: %v\n%s", err, out)
	}
	b := testenv.Start(t, back, "--encryption-key-file", key)
	if b.Token != "" {
		t.Fatalf("the copy bootstrapped again:\n%s", b.Stderr())
	}
	assertCopied(t, b, boot, svc.Token, usr.Token, gone.Token, kid)
	if code := checkStatus(t, b, made.Token); code != 200 {
		t.Errorf("a token made on PostgreSQL, on the Badger copy: %d", code)
	}
	b.Stop(t)

	// A destination with records is refused, then replaced with --force.
	out, err = copyStore(t, "--from", filepath.Join(dir, "badger"), "--to", back, "--to-encryption-key-file", key)
	if err == nil || !strings.Contains(out, "is not empty") || !strings.Contains(out, "--force") {
		t.Fatalf("copy into a store with records: %v\n%s", err, out)
	}
	if out, err := copyStore(t, "--from", filepath.Join(dir, "badger"), "--to", back, "--to-encryption-key-file", key, "--force"); err != nil {
		t.Fatalf("copy --force: %v\n%s", err, out)
	}
	b2 := testenv.Start(t, back, "--encryption-key-file", key)
	if code := checkStatus(t, b2, made.Token); code != 401 {
		t.Errorf("a token the replaced copy did not have: %d, want 401", code)
	}
	assertCopied(t, b2, boot, svc.Token, usr.Token, gone.Token, kid)
	b2.Stop(t)
	// Into PostgreSQL with a key: the signing keys are encrypted with it, and the daemon needs it.
	db2, _ := testenv.PostgresDB(t, "")
	if out, err := copyStore(t, "--from", back, "--from-encryption-key-file", key, "--to", db2, "--to-encryption-key-file", key); err != nil {
		t.Fatalf("copy-store to PostgreSQL with a key: %v\n%s", err, out)
	}
	if enc := query[bool](t, db2, "SELECT bool_and(encrypted) FROM signing_keys"); !enc {
		t.Error("signing keys copied in the clear into a store with a key")
	}
	p2 := testenv.Start(t, "", "--store", db2, "--encryption-key-file", key)
	assertCopied(t, p2, boot, svc.Token, usr.Token, gone.Token, kid)
	if out, err := copyStore(t, "--from", db, "--to", db); err == nil || !strings.Contains(out, "both") {
		t.Errorf("copy onto itself: %v\n%s", err, out)
	}
	if out, err := copyStore(t, "--from", filepath.Join(dir, "missing"), "--to", filepath.Join(dir, "x")); err == nil || !strings.Contains(out, "not a store directory") {
		t.Errorf("copy from a missing directory: %v\n%s", err, out)
	}
}

// assertCopied checks a daemon on a copied store: the superuser, the service and user tokens
// work, the revoked one is refused as revoked (its tombstone was copied), and the JWKS still has the copied signing key.
func assertCopied(t *testing.T, d *testenv.Daemon, boot, svcTok, usrTok, goneTok, kid string) {
	t.Helper()
	if w, err := client.New(d.URL(), boot).Whoami(context.Background()); err != nil || !w.Superuser {
		t.Errorf("the bootstrap token on the copy: %+v %v", w, err)
	}
	if code := checkStatus(t, d, svcTok); code != 200 {
		t.Errorf("the service token on the copy: %d", code)
	}
	if w, err := client.New(d.URL(), usrTok).Whoami(context.Background()); err != nil || w.Subject != "ada@acme.test" {
		t.Errorf("the user token on the copy: %+v %v", w, err)
	}
	// Refused as revoked, not as unknown: the tombstone came along.
	if code, body, err := tryCheck(d, goneTok); err != nil || code != 401 || !strings.Contains(body, "revoked") {
		t.Errorf("the revoked token on the copy: %d %s %v, want 401 saying revoked", code, body, err)
	}
	if got := jwksKID(t, d); got != kid {
		t.Errorf("signing key on the copy %q, want %q", got, kid)
	}
}

// jwksKID is the kid of the daemon's JWKS (one key).
func jwksKID(t *testing.T, d *testenv.Daemon) string {
	t.Helper()
	code, body := get(t, d.URL()+"/.well-known/jwks.json")
	i := strings.Index(body, `"kid":"`)
	if code != 200 || i < 0 {
		t.Fatalf("jwks: %d %s", code, body)
	}
	rest := body[i+7:]
	return rest[:strings.IndexByte(rest, '"')]
}
