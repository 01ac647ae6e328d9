package daemon

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestReloadUnderLoad: an in-process daemon takes real SIGHUPs, each with a changed file
// (log level and format, caps, sampling, frontend URL), while checks and admin requests run:
// under -race, the settings a reload changes are read safely by the requests in flight.
func TestReloadUnderLoad(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "rill-authd.yaml")
	write := func(i int) {
		t.Helper()
		level, format := []string{"debug", "info"}[i%2], []string{"text", "json"}[i/2%2]
		s := fmt.Sprintf("log_level: %s\nlog_format: %s\nmax_tokens_per_owner: %d\ntoken_issue_rate: %d\nlog_allowed_every: %d\nfrontend_url: https://rill%d.example\n",
			level, format, 100+i, 60+i, i%3, i)
		if err := os.WriteFile(conf, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(0)
	cfg, err := LoadConfig([]string{"--config", conf, "--data-dir", filepath.Join(dir, "data"), "--grpc-addr", "127.0.0.1:0",
		"--http-addr", "127.0.0.1:0", "--bootstrap-token-file", filepath.Join(dir, "token")})
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	d, err := Start(context.Background(), cfg, &logs)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Shutdown()
	b, err := os.ReadFile(filepath.Join(dir, "token"))
	if err != nil {
		t.Fatal(err)
	}
	tok, base := strings.TrimSpace(string(b)), "http://"+d.httpLis.Addr().String()
	do := func(method, path string) (int, error) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(`{"display_name":"t"}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, r := range []struct{ method, path string }{
		{"GET", "/ext_authz/v1/orgs/acme/projects/web/x"},
		{"POST", "/v1/tokens"},
		{"GET", "/metrics"},
	} {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if code, err := do(r.method, r.path); err != nil || code >= 500 {
					t.Errorf("%s %s during reloads: %d %v", r.method, r.path, code, err)
					return
				}
			}
		})
	}
	const reloads = 12
	for i := 1; i <= reloads; i++ {
		write(i)
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for strings.Count(logs.String(), "config reloaded") < i && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	close(stop)
	wg.Wait()
	if n := strings.Count(logs.String(), "config reloaded"); n != reloads {
		t.Fatalf("%d reloads logged, want %d:\n%s", n, reloads, logs.String())
	}
	if want := fmt.Sprintf("max-tokens-per-owner: %d -> %d", 100+reloads-1, 100+reloads); !strings.Contains(logs.String(), want) {
		t.Errorf("the last reload's line does not say %q:\n%s", want, logs.String())
	}
}
