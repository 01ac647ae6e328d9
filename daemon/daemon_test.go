package daemon_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/rill-authd/rill-authd/internal/testenv"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestBootstrapOnceHealthAndShutdown(t *testing.T) {
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "secrets", "bootstrap-token")
	d := testenv.Start(t, filepath.Join(dir, "data"), "--bootstrap-token-file", tokFile)
	if _, err := token.Parse(d.Token); err != nil || !strings.HasPrefix(d.Token, "rill_usr_") {
		t.Fatalf("bootstrap token %q: %v\n%s", d.Token, err, d.Stderr())
	}
	b, err := os.ReadFile(tokFile)
	if err != nil || strings.TrimSpace(string(b)) != d.Token {
		t.Fatalf("token file: %q %v", b, err)
	}
	if fi, _ := os.Stat(tokFile); fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v", fi.Mode().Perm())
	}
	if code, body := get(t, d.URL()+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("healthz: %d %q", code, body)
	}
	if code, _ := get(t, d.URL()+"/readyz"); code != 200 {
		t.Fatalf("readyz: %d", code)
	}
	conn, err := grpc.NewClient(d.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hr, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil || hr.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("gRPC health: %v %v", hr, err)
	}
	// The secret goes only in the one bootstrap line, never in a log line.
	for _, line := range strings.Split(d.Stderr(), "\n") {
		if strings.Contains(line, d.Token[9:]) && !strings.Contains(line, "bootstrap token (shown once") {
			t.Fatalf("token leaked in %q", line)
		}
	}
	d.Stop(t)
	if !strings.Contains(d.Stderr(), "msg=stopped") {
		t.Fatalf("no clean stop:\n%s", d.Stderr())
	}

	// Second start: no new bootstrap, the first token is still there.
	d2 := testenv.Start(t, filepath.Join(dir, "data"), "--bootstrap-token-file", tokFile)
	if d2.Token != "" || strings.Contains(d2.Stderr(), "first start") {
		t.Fatalf("bootstrapped twice:\n%s", d2.Stderr())
	}
	d2.Stop(t)
	assertTokenStored(t, filepath.Join(dir, "data"), d.Token)
}

func assertTokenStored(t *testing.T, dataDir, tok string) {
	t.Helper()
	parsed, err := token.Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(store.Options{Dir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rec, err := st.GetToken(context.Background(), parsed.ID.String())
	if err != nil || !parsed.Matches(rec.Hash) {
		t.Fatalf("bootstrap token not stored: %+v %v", rec, err)
	}
}

func TestSIGKILLAfterBootstrapLosesNothing(t *testing.T) {
	dir := t.TempDir()
	d := testenv.Start(t, dir)
	if d.Token == "" {
		t.Fatal("no bootstrap token")
	}
	d.Kill()
	assertTokenStored(t, dir, d.Token)
	d2 := testenv.Start(t, dir) // Badger recovers and the daemon does not bootstrap again
	if d2.Token != "" {
		t.Fatal("bootstrapped again after a crash")
	}
}

func TestConfigFileAndEnv(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "authd.yaml")
	os.WriteFile(cfg, []byte("bootstrap_email: root@example.com\nlog-format: json\n"), 0o600)
	t.Setenv("RILL_AUTHD_LOG_LEVEL", "debug")
	d := testenv.Start(t, filepath.Join(dir, "data"), "--config", cfg)
	out := d.Stderr()
	if !strings.Contains(out, "created superuser root@example.com") || !strings.Contains(out, `"msg":"rill-authd started"`) {
		t.Fatalf("config file not applied:\n%s", out)
	}
}

func TestStartupErrorsAreClear(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "key")
	os.WriteFile(bad, []byte("too short"), 0o600)
	cases := map[string][]string{
		"want 16, 24 or 32 bytes":    {"--encryption-key-file", bad},
		"no such file":               {"--encryption-key-file", filepath.Join(dir, "missing")},
		"listen HTTP on 256.0.0.1:":  {"--http-addr", "256.0.0.1:1"},
		"parse config file":          {"--config", writeFile(t, dir, "bad.yaml", "a: [")},
		"--log-level must be one of": {"--log-level", "loud"},
	}
	for want, args := range cases {
		cmd := exec.Command(testenv.Bin(t, "rill-authd"), append([]string{"--data-dir", filepath.Join(dir, "d"), "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}, args...)...)
		done := make(chan struct{})
		var out []byte
		go func() { out, _ = cmd.CombinedOutput(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("%v: daemon did not exit", args)
		}
		if cmd.ProcessState.ExitCode() == 0 || !strings.Contains(string(out), want) {
			t.Errorf("%v: exit %d, output %q, want %q", args, cmd.ProcessState.ExitCode(), out, want)
		}
	}
}

func writeFile(t *testing.T, dir, name, body string) string {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestVersion(t *testing.T) {
	out, err := exec.Command(testenv.Bin(t, "rill-authd"), "--version").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Fatalf("--version: %q %v", out, err)
	}
}
