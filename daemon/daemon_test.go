package daemon_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/rill-authd/rill-authd/internal/testenv"
	"github.com/rill-authd/rill-authd/store/badger"
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
	// With a token file the token goes there only: stderr ends up in container logs.
	if d.Token != "" || !strings.Contains(d.Stderr(), "bootstrap token written to "+tokFile+" (mode 0600); it is not printed") {
		t.Fatalf("bootstrap token printed although --bootstrap-token-file was given:\n%s", d.Stderr())
	}
	b, err := os.ReadFile(tokFile)
	if err != nil {
		t.Fatalf("token file: %v", err)
	}
	d.Token = strings.TrimSpace(string(b))
	if _, err := token.Parse(d.Token); err != nil || !strings.HasPrefix(d.Token, "rill_usr_") {
		t.Fatalf("bootstrap token %q: %v\n%s", d.Token, err, d.Stderr())
	}
	if strings.Contains(d.Stderr(), d.Token[9:]) {
		t.Fatalf("bootstrap token on stderr:\n%s", d.Stderr())
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
	// The root sends a browser to the console; other unknown paths stay 404.
	noFollow := http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for path, want := range map[string]int{"/": http.StatusFound, "/nope": http.StatusNotFound, "/ui/": http.StatusSeeOther} {
		resp, err := noFollow.Get(d.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want || (path == "/" && resp.Header.Get("Location") != "/ui/") {
			t.Errorf("GET %s: %d Location %q, want %d", path, resp.StatusCode, resp.Header.Get("Location"), want)
		}
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
	st, err := badger.Open(badger.Options{Dir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rec, err := st.GetToken(context.Background(), parsed.ID)
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
	// The token from before the crash still passes a check: the restarted daemon rebuilt its
	// in-memory token index from disk.
	req, _ := http.NewRequest("GET", d2.URL()+"/ext_authz/v1/orgs/acme/projects/web/x", nil)
	req.Header.Set("Authorization", "Bearer "+d.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("check with the pre-crash token after restart: %d, want 200", resp.StatusCode)
	}
}

func TestConfigFileAndEnv(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "authd.yaml")
	os.WriteFile(cfg, []byte("bootstrap_email: root@example.com\nlog-format: json\ncache_size: 7\n"), 0o600)
	t.Setenv("RILL_AUTHD_LOG_LEVEL", "debug")
	// The environment wins over the file (kong alone would let the file win).
	t.Setenv("RILL_AUTHD_BOOTSTRAP_EMAIL", "env@example.com")
	d := testenv.Start(t, filepath.Join(dir, "data"), "--config", cfg)
	out := d.Stderr()
	if !strings.Contains(out, "created superuser env@example.com") || !strings.Contains(out, `"msg":"rill-authd started"`) {
		t.Fatalf("config file and environment not applied, the environment first:\n%s", out)
	}
}

func TestStartupErrorsAreClear(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "key")
	os.WriteFile(bad, []byte("too short"), 0o600)
	cases := map[string][]string{
		"want 16, 24 or 32 bytes":                                   {"--encryption-key-file", bad},
		"no such file":                                              {"--encryption-key-file", filepath.Join(dir, "missing")},
		"listen on --http-addr 256.0.0.1:":                          {"--http-addr", "256.0.0.1:1"},
		"parse config file":                                         {"--config", writeFile(t, dir, "bad.yaml", "a: [")},
		"--log-level must be one of":                                {"--log-level", "loud"},
		"issuer, jwks, audience and org are required":               {"--trusted-issuer", "issuer=https://a.example,jwks=https://a.example/jwks"},
		`unknown key "aud"`:                                         {"--trusted-issuer", "issuer=https://a.example,aud=x"},
		`--issuer "rill-authd" is not a URL`:                        {"--issuer", "rill-authd"},
		`--issuer "authd.example.com" is not a URL`:                 {"--issuer", "authd.example.com"},
		`--issuer "ftp://authd.example" is not a URL`:               {"--issuer", "ftp://authd.example"},
		`--issuer "https://" is not a URL`:                          {"--issuer", "https://"},
		`--public-url "https://a.example/?x=1" is not a URL`:        {"--public-url", "https://a.example/?x=1"},
		`--frontend-url "ui.example.com" is not a URL: iframe URLs`: {"--frontend-url", "ui.example.com"},
		"that is this daemon's own --issuer":                        {"--public-url", "https://a.example", "--trusted-issuer", "issuer=https://a.example,jwks=https://a.example/jwks,audience=x,org=acme"},
	}
	// A port another process holds: the error names the flag that moves it.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cases["address already in use (another process listens there, perhaps another rill-authd: pass another --grpc-addr)"] = []string{"--grpc-addr", busy.Addr().String()}
	cases["perhaps another rill-authd: pass another --http-addr)"] = []string{"--http-addr", busy.Addr().String()}
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

// TestServesChecks proves the daemon wires ext_authz on its gRPC port and the HTTP mode on its
// admin port: the bootstrap superuser passes, a forged token does not, and the deny is logged
// with its reason but without the token.
func TestServesChecks(t *testing.T) {
	d := testenv.Start(t, filepath.Join(t.TempDir(), "data"), "--default-org", "acme", "--default-project", "web")
	conn, err := grpc.NewClient(d.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := authv3.NewAuthorizationClient(conn)
	check := func(auth string) *authv3.CheckResponse {
		t.Helper()
		resp, err := client.Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: "GET", Path: "/v1/instances/default/query", Headers: map[string]string{"authorization": auth}}}}})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	ok := check("Bearer " + d.Token)
	if ok.GetStatus().GetCode() != 0 {
		t.Fatalf("superuser refused: %v", ok.GetStatus())
	}
	got := map[string]string{}
	for _, h := range ok.GetOkResponse().GetHeaders() {
		got[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	if got["x-rill-subject"] != "admin@localhost" || got["x-rill-org"] != "acme" || got["x-rill-project"] != "web" || got["x-rill-project-role"] != "admin" {
		t.Errorf("headers from the default org/project: %v", got)
	}
	forged := d.Token[:len(d.Token)-6] + "AAAAAA"
	if r := check("Bearer " + forged); r.GetDeniedResponse().GetStatus().GetCode() != 401 || r.GetStatus().GetMessage() != "bad checksum" {
		t.Errorf("forged token: %v", r.GetStatus())
	}

	req, _ := http.NewRequest("GET", d.URL()+"/ext_authz/v1/orgs/acme/projects/web/x", nil)
	req.Header.Set("Authorization", "Bearer "+d.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Rill-Org-Role") != "admin" {
		t.Errorf("HTTP mode: %d %v", resp.StatusCode, resp.Header)
	}
	if !d.WaitFor(`reason="bad checksum"`, 5*time.Second) {
		t.Errorf("deny not logged with its reason:\n%s", d.Stderr())
	}
	logs := d.Stderr()
	if i := strings.Index(logs, "bootstrap token"); i >= 0 {
		logs = logs[strings.IndexByte(logs[i:], '\n')+i:] // the one line that shows it on purpose
	}
	if strings.Contains(logs, forged[9:30]) || strings.Contains(logs, d.Token[20:]) {
		t.Errorf("a token reached the log:\n%s", logs)
	}
	d.Stop(t)
}

// TestHTTPModeRefusesDotSegmentsWith400: the daemon's HTTP mode answers a raw ".." in the
// target with the check's 400, not the mux's redirect to the cleaned path.
func TestHTTPModeRefusesDotSegmentsWith400(t *testing.T) {
	d := testenv.Start(t, "")
	for _, p := range []string{"/ext_authz/v1/orgs/acme/projects/web/../../victim/projects/secret/x", "/ext_authz/v1/orgs/acme//projects/web", "/ext_authz/v1/orgs/acme/projects/./web"} {
		req, _ := http.NewRequest("GET", d.URL()+p, nil)
		req.Header.Set("Authorization", "Bearer "+d.Token)
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d (Location %q), want 400", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}
