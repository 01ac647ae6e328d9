package daemon_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/adminapi/client"
	"github.com/rill-authd/rill-authd/internal/testenv"
)

// githubKeys stands in for https://api.github.com/meta/public_keys/secret_scanning: one
// ECDSA P-256 key the test made, published on 127.0.0.1 in GitHub's document format.
type githubKeys struct {
	url string
	id  string
	key *ecdsa.PrivateKey
}

func startGitHubKeys(t *testing.T) *githubKeys {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	g := &githubKeys{id: fmt.Sprintf("%x", sha256.Sum256(der)), key: k}
	doc, _ := json.Marshal(map[string]any{"public_keys": []map[string]any{{"key_identifier": g.id,
		"key": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), "is_current": true}}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(doc)
	}))
	t.Cleanup(srv.Close)
	g.url = srv.URL + "/meta/public_keys/secret_scanning"
	return g
}

// report posts GitHub's report of toks to d, signed by key (nil: by g's published key).
func (g *githubKeys) report(t *testing.T, d *testenv.Daemon, key *ecdsa.PrivateKey, toks ...string) (int, string) {
	t.Helper()
	var reps []map[string]string
	for i, tok := range toks {
		reps = append(reps, map[string]string{"token": tok, "type": "rill_token", "source": "content",
			"url": fmt.Sprintf("https://github.com/octo/leak/blob/abc/f%d.env", i)})
	}
	body, _ := json.Marshal(reps)
	if key == nil {
		key = g.key
	}
	sum := sha256.Sum256(body)
	sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", d.URL()+"/v1/secret-scanning/github", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Github-Public-Key-Identifier", g.id)
	req.Header.Set("Github-Public-Key-Signature", base64.StdEncoding.EncodeToString(sig))
	resp, err := checkClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func leakedEvents(t *testing.T, c *client.Client) []apiv1.AuditEvent {
	t.Helper()
	evs, err := c.ListAudit(context.Background(), "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []apiv1.AuditEvent
	for _, e := range evs {
		if e.Action == "token.leaked" {
			out = append(out, e)
		}
	}
	return out
}

// TestSecretScanningReport: the real daemon takes GitHub's report at
// POST /v1/secret-scanning/github: a forged one (signed by a key GitHub does not publish) is
// 401 and changes nothing; a signed one revokes the reported service token (its next check is
// 401 "token revoked"), audits token.leaked with the URL, answers true_positive for it and
// false_positive for a token not ours, and leaves every other token working.
func TestSecretScanningReport(t *testing.T) {
	g := startGitHubKeys(t)
	d := testenv.Start(t, "", "--github-secret-scanning-keys-url", g.url)
	c := client.New(d.URL(), d.Token)
	leaked := acmeService(t, c, "ci").Token
	kept := acmeService(t, c, "etl").Token
	impostor, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if code, body := g.report(t, d, impostor, leaked); code != 401 {
		t.Fatalf("forged report: %d %s", code, body)
	}
	if code := checkStatus(t, d, leaked); code != 200 {
		t.Fatalf("the token after a forged report: %d", code)
	}
	notOurs := "rill_svc_" + strings.Repeat("0", 60)
	code, body := g.report(t, d, nil, leaked, notOurs)
	if code != 200 {
		t.Fatalf("signed report: %d %s", code, body)
	}
	var fb []struct{ TokenRaw, TokenType, Label string }
	var raw []map[string]string
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatal(err)
	}
	for _, r := range raw {
		fb = append(fb, struct{ TokenRaw, TokenType, Label string }{r["token_raw"], r["token_type"], r["label"]})
	}
	if len(fb) != 2 || fb[0].TokenRaw != leaked || fb[0].Label != "true_positive" || fb[1].TokenRaw != notOurs ||
		fb[1].Label != "false_positive" || fb[0].TokenType != "rill_token" {
		t.Fatalf("feedback %s", body)
	}
	code, msg, err := tryCheck(d, leaked)
	if err != nil || code != 401 || !strings.Contains(msg, "token revoked") {
		t.Fatalf("the reported token's check: %d %s %v", code, msg, err)
	}
	if code := checkStatus(t, d, kept); code != 200 {
		t.Fatalf("another token after the report: %d", code)
	}
	evs := leakedEvents(t, c)
	if len(evs) != 1 || !strings.HasPrefix(evs[0].Target, "service:acme/ci token:") || evs[0].Actor != "github-secret-scanning" ||
		!strings.Contains(evs[0].Detail, "https://github.com/octo/leak/blob/abc/f0.env") {
		t.Fatalf("token.leaked events: %+v", evs)
	}
	if strings.Contains(d.Stderr(), leaked) {
		t.Fatal("the leaked token's secret is in the log")
	}
}

// TestSecretScanningOff: without --github-secret-scanning-keys-url the endpoint is 404 and a
// report changes nothing.
func TestSecretScanningOff(t *testing.T) {
	g := startGitHubKeys(t)
	d := testenv.Start(t, "")
	tok := acmeService(t, client.New(d.URL(), d.Token), "ci").Token
	if code, body := g.report(t, d, nil, tok); code != 404 || !strings.Contains(body, "--github-secret-scanning-keys-url") {
		t.Fatalf("%d %s, want 404", code, body)
	}
	if code := checkStatus(t, d, tok); code != 200 {
		t.Fatalf("the token: %d", code)
	}
}

// TestSecretScanningOnReplicas: two replicas on one PostgreSQL database; GitHub's report
// reaches A, and B refuses the token within revokeLag (the revoke is a store write the change
// feed carries), as every revoke; the report reaching B as well (GitHub retries) is answered
// and audits nothing twice.
func TestSecretScanningOnReplicas(t *testing.T) {
	g := startGitHubKeys(t)
	db, _ := testenv.PostgresDB(t, "")
	a := testenv.Spawn(t, "", "--store", db, "--github-secret-scanning-keys-url", g.url)
	a.WaitStarted(t)
	b := testenv.Spawn(t, "", "--store", db, "--github-secret-scanning-keys-url", g.url)
	b.WaitStarted(t)
	ca := client.New(a.URL(), a.Token)
	tok := acmeService(t, ca, "ci").Token
	if took := within(2*time.Second, func() bool { return checkStatus(t, b, tok) == 200 }); took < 0 {
		t.Fatalf("the token does not work on B: %d", checkStatus(t, b, tok))
	}
	if code, body := g.report(t, a, nil, tok); code != 200 || !strings.Contains(body, `"true_positive"`) {
		t.Fatalf("report to A: %d %s", code, body)
	}
	reported := time.Now()
	if code := checkStatus(t, a, tok); code != 401 {
		t.Fatalf("A after the report: %d", code)
	}
	took := within(2*time.Second, func() bool { code, _, err := tryCheck(b, tok); return err == nil && code == 401 })
	if lag := time.Since(reported); took < 0 || lag > revokeLag {
		t.Errorf("B denied the leaked token after %v (took %v), want within %v", lag, took, revokeLag)
	}
	if code, body := g.report(t, b, nil, tok); code != 200 || !strings.Contains(body, `"false_positive"`) {
		t.Fatalf("the same report to B: %d %s", code, body)
	}
	if evs := leakedEvents(t, ca); len(evs) != 1 {
		t.Fatalf("token.leaked events: %+v", evs)
	}
}

// TestSecretScanningKeysURLChecked: a --github-secret-scanning-keys-url that is not an http(s)
// URL stops the daemon at start, before a store is created, with one line that says so.
func TestSecretScanningKeysURLChecked(t *testing.T) {
	for _, bad := range []string{"api.github.com/meta/public_keys/secret_scanning", "ftp://api.github.com/x", "https://", "https://u:p@api.github.com/x"} {
		dir := filepath.Join(t.TempDir(), "data")
		cmd := exec.Command(testenv.Bin(t, "rill-authd"), "--data-dir", dir, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
			"--github-secret-scanning-keys-url", bad)
		out, err := cmd.CombinedOutput()
		if err == nil || cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), "--github-secret-scanning-keys-url") ||
			!strings.Contains(string(out), "is not a URL") {
			t.Errorf("%s: exit %d, %q", bad, cmd.ProcessState.ExitCode(), out)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s: the data directory was made (%v)", bad, err)
		}
	}
}
