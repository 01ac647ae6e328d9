// Package deploy_test checks the deployment files against the real daemon: the image of the
// Containerfile (run from its exported filesystem), the Helm chart's manifests (decoded strictly,
// their config, flags, ports and probes served by the daemon) and the systemd unit.
package deploy_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/rill-authd/rill-authd/adminapi/client"
)

var startedRe = regexp.MustCompile(`rill-authd started.*grpc_addr"?[=:]"?([^\s"]+).*http_addr"?[=:]"?([^\s"]+)`)

// proc is a daemon started from a prepared command (chrooted, or with a rendered config).
type proc struct {
	cmd                *exec.Cmd
	grpcAddr, httpAddr string
	mu                 sync.Mutex
	stderr             strings.Builder
	exited             chan struct{}
}

func (p *proc) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// start runs cmd and waits for its start-up line; the process is stopped (SIGTERM, exit 0
// expected) at cleanup.
func start(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{cmd: cmd, exited: make(chan struct{})}
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", cmd.Args, err)
	}
	go func() { cmd.Wait(); pw.Close(); close(p.exited) }()
	started := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		once := false
		for sc.Scan() {
			p.mu.Lock()
			p.stderr.WriteString(sc.Text() + "\n")
			if m := startedRe.FindStringSubmatch(sc.Text()); m != nil && !once {
				p.grpcAddr, p.httpAddr, once = m[1], m[2], true
				close(started)
			}
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() { p.stop(t) })
	select {
	case <-started:
	case <-p.exited:
		t.Fatalf("%v exited before serving:\n%s", cmd.Args, p.Stderr())
	case <-time.After(30 * time.Second):
		t.Fatalf("%v did not start in 30s:\n%s", cmd.Args, p.Stderr())
	}
	return p
}

func (p *proc) signal(t *testing.T, s syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(s); err != nil {
		t.Fatal(err)
	}
}

func (p *proc) stop(t *testing.T) {
	t.Helper()
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
		t.Errorf("no exit within 20s of SIGTERM:\n%s", p.Stderr())
		return
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit %d after SIGTERM:\n%s", code, p.Stderr())
	}
}

// exercise proves a daemon works: an admin call (create an org and a project with the bootstrap
// superuser's token), gRPC health SERVING, and ext_authz checks that allow that token on the
// project and refuse a missing one.
func exercise(t *testing.T, grpcAddr, httpAddr, token string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := client.New("http://"+httpAddr, token)
	if _, err := c.CreateOrg(ctx, "acme"); err != nil {
		t.Fatalf("admin API: create org: %v", err)
	}
	if _, err := c.CreateProject(ctx, "acme", "web"); err != nil {
		t.Fatalf("admin API: create project: %v", err)
	}
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("gRPC health: %v %v", h, err)
	}
	check := func(tok string) int32 {
		t.Helper()
		hdr := map[string]string{}
		if tok != "" {
			hdr["authorization"] = "Bearer " + tok
		}
		resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: "GET", Path: "/v1/orgs/acme/projects/web/runtime/x", Headers: hdr}}}})
		if err != nil {
			t.Fatalf("ext_authz check: %v", err)
		}
		return resp.GetStatus().GetCode()
	}
	if code := check(token); code != 0 {
		t.Errorf("check with the superuser's token: gRPC code %d, want OK", code)
	}
	if code := check(""); code != 16 {
		t.Errorf("check without a token: gRPC code %d, want 16 (UNAUTHENTICATED)", code)
	}
}

// get fetches url and returns its status.
func get(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
