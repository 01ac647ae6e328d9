package daemon_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/rill-authd/rill-authd/internal/testenv"
)

// limitedDaemon runs the real daemon under `ulimit -n nofile` (soft and hard, so Go cannot
// raise it) and waits until it serves. testenv.Start cannot wrap the binary, hence this.
type limitedDaemon struct {
	cmd                      *exec.Cmd
	mu                       sync.Mutex
	out                      bytes.Buffer
	exited                   chan struct{}
	grpcAddr, httpAddr, tokn string
}

var (
	startedRe = regexp.MustCompile(`rill-authd started.*grpc_addr=([^\s"]+).*http_addr=([^\s"]+)`)
	tokenRe   = regexp.MustCompile(`bootstrap token \(shown once, store it now\): (\S+)`)
)

func startLimited(t *testing.T, nofile int, args ...string) *limitedDaemon {
	t.Helper()
	all := append([]string{"-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, nofile), testenv.Bin(t, "rill-authd"),
		"--data-dir", filepath.Join(t.TempDir(), "data"), "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}, args...)
	d := &limitedDaemon{cmd: exec.Command("/bin/sh", all...), exited: make(chan struct{})}
	pr, pw := io.Pipe()
	d.cmd.Stderr = pw
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.cmd.Wait(); pw.Close(); close(d.exited) }()
	started := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		once := false
		for sc.Scan() {
			d.mu.Lock()
			d.out.WriteString(sc.Text() + "\n")
			if m := tokenRe.FindStringSubmatch(sc.Text()); m != nil {
				d.tokn = m[1]
			}
			if m := startedRe.FindStringSubmatch(sc.Text()); m != nil && !once {
				d.grpcAddr, d.httpAddr, once = m[1], m[2], true
				close(started)
			}
			d.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.exited:
		case <-time.After(15 * time.Second):
			d.cmd.Process.Kill()
			<-d.exited
			t.Errorf("daemon did not stop on SIGTERM:\n%s", d.stderr())
		}
	})
	select {
	case <-started:
	case <-d.exited:
		t.Fatalf("rill-authd exited before serving:\n%s", d.stderr())
	case <-time.After(30 * time.Second):
		t.Fatalf("rill-authd did not start in 30s:\n%s", d.stderr())
	}
	return d
}

func (d *limitedDaemon) stderr() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.out.String()
}

// attacker holds n connections to addr, reopening each one the daemon closes: idle ones made
// one keep-alive request and wait; slow ones trickle a header line every 200 ms and never end
// their request (slowloris).
type attacker struct {
	opened, closed atomic.Int64
	wg             sync.WaitGroup
	stop           chan struct{}
}

func attack(addr string, idle, slow int) *attacker {
	a := &attacker{stop: make(chan struct{})}
	for i := range idle + slow {
		a.wg.Go(func() {
			for {
				select {
				case <-a.stop:
					return
				default:
				}
				a.hold(addr, i < idle)
				select {
				case <-a.stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		})
	}
	return a
}

func (a *attacker) hold(addr string, idle bool) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return
	}
	defer c.Close()
	go func() { <-a.stop; c.Close() }()
	a.opened.Add(1)
	defer a.closed.Add(1)
	if idle {
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return
		}
		io.Copy(io.Discard, c) // the response, then nothing until the daemon closes it
		return
	}
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n"); err != nil {
		return
	}
	for {
		select {
		case <-a.stop:
			return
		case <-time.After(200 * time.Millisecond):
		}
		if _, err := io.WriteString(c, "X-Slow: 1\r\n"); err != nil {
			return
		}
	}
}

func (a *attacker) end() {
	close(a.stop)
	a.wg.Wait()
}

// TestConnectionsCannotStarveChecks: under a 256-file limit, 150 idle keep-alive and 150
// slowloris HTTP connections (reopened as the daemon closes them) leave the daemon able to
// answer gRPC checks and /healthz on new connections, each within 2 s, with the HTTP port
// holding no more than its bound of (256-128)/2 = 64 connections. Before the bound, 239 idle
// connections took every descriptor and the check port could accept nothing.
func TestConnectionsCannotStarveChecks(t *testing.T) {
	// Long header and idle timeouts: the bound, not a timeout, is what keeps the room.
	d := startLimited(t, 256, "--http-read-header-timeout", "1m", "--http-idle-timeout", "1m")
	if !strings.Contains(d.stderr(), `msg="HTTP connections limited" max=64 from="(RLIMIT_NOFILE 256 - 128) / 2"`) {
		t.Fatalf("no bound of 64 derived from the file limit:\n%s", d.stderr())
	}
	a := attack(d.httpAddr, 150, 150)
	defer a.end()
	for deadline := time.Now().Add(5 * time.Second); a.opened.Load() < 300; {
		if time.Now().After(deadline) {
			t.Fatalf("attack opened only %d connections", a.opened.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Deadlines of 2 s: generous for a loaded CI machine, yet before the bound every check
	// waited forever.
	healthz := &http.Client{Timeout: 4 * time.Second, Transport: retryGet{&http.Transport{DisableKeepAlives: true}}}
	check := func() error {
		// A new connection each time: the check port must still accept.
		conn, err := grpc.NewClient(d.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return err
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{Method: "GET",
				Path: "/v1/orgs/acme/projects/web/x", Headers: map[string]string{"authorization": "Bearer " + d.tokn}}}}})
		if err != nil {
			return err
		}
		if resp.GetStatus().GetCode() != 0 {
			return fmt.Errorf("check denied: %v", resp.GetStatus())
		}
		return nil
	}
	const rounds = 20
	var slowestCheck, slowestHealthz time.Duration
	for i := range rounds {
		t0 := time.Now()
		err := check()
		if err != nil {
			t.Fatalf("gRPC check %d under attack: %v\n%s", i, err, d.stderr())
		}
		t1 := time.Now()
		resp, err := healthz.Get("http://" + d.httpAddr + "/healthz")
		if err != nil {
			t.Fatalf("/healthz %d under attack: %v\n%s", i, err, d.stderr())
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("/healthz %d under attack: %d", i, resp.StatusCode)
		}
		slowestCheck, slowestHealthz = max(slowestCheck, t1.Sub(t0)), max(slowestHealthz, time.Since(t1))
		time.Sleep(50 * time.Millisecond)
	}

	m := scrapeWith(t, healthz, "http://"+d.httpAddr)
	if open := m["rill_authd_http_connections{}"]; open > 64 || open < 32 {
		t.Errorf("HTTP connections open under attack: %v, want at most 64 (and the attack holding most)", open)
	}
	if m["rill_authd_http_connections_shed_total{}"] == 0 {
		t.Errorf("no connection shed under attack")
	}
	t.Logf("attack: %d connections opened, %d closed by the daemon; %d checks (slowest %v) and %d /healthz (slowest %v) answered on new connections; daemon holds %v, shed %v",
		a.opened.Load(), a.closed.Load(), rounds, slowestCheck, rounds, slowestHealthz, m["rill_authd_http_connections{}"], m["rill_authd_http_connections_shed_total{}"])
	if out := d.stderr(); strings.Contains(out, "too many open files") {
		t.Errorf("the daemon ran out of file descriptors:\n%s", out)
	}
	if !strings.Contains(d.stderr(), "HTTP connection limit reached") {
		t.Errorf("shedding not logged:\n%s", d.stderr())
	}
}

// retryGet retries a GET for up to 2 s. At the connection bound a new connection can itself be
// shed before its request arrives (it is the oldest one without a request once 64 newer ones
// came in); a probe or a scraper retries, and must get through within that time.
type retryGet struct{ http.RoundTripper }

func (r retryGet) RoundTrip(req *http.Request) (*http.Response, error) {
	deadline := time.Now().Add(2 * time.Second)
	for {
		resp, err := r.RoundTripper.RoundTrip(req)
		if err == nil || req.Method != http.MethodGet || time.Now().After(deadline) {
			return resp, err
		}
	}
}

func scrapeWith(t *testing.T, c *http.Client, url string) map[string]float64 {
	t.Helper()
	orig := http.DefaultClient
	http.DefaultClient = c
	defer func() { http.DefaultClient = orig }()
	return scrape(t, url)
}

// TestIdleAndSlowConnectionsAreClosed: an idle keep-alive HTTP connection is closed after
// --http-idle-timeout, a slowloris one after --http-read-header-timeout however it trickles,
// and an idle gRPC connection after --grpc-max-connection-idle.
func TestIdleAndSlowConnectionsAreClosed(t *testing.T) {
	d := testenv.Start(t, "", "--http-idle-timeout", "1s", "--http-read-header-timeout", "1s", "--grpc-max-connection-idle", "1s")

	closedAfter := func(c net.Conn) time.Duration {
		start := time.Now()
		c.SetReadDeadline(start.Add(6 * time.Second))
		io.Copy(io.Discard, c)
		return time.Since(start)
	}
	idle, err := net.Dial("tcp", d.HTTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	io.WriteString(idle, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(idle)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("first request: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	start := time.Now()
	idle.SetReadDeadline(start.Add(5 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("idle connection: %v, want EOF", err)
	}
	if took := time.Since(start); took < 800*time.Millisecond || took > 4*time.Second {
		t.Errorf("idle keep-alive connection closed after %v, want about 1s", took)
	}

	slow, err := net.Dial("tcp", d.HTTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	io.WriteString(slow, "GET /healthz HTTP/1.1\r\nHost: x\r\n")
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				if _, err := io.WriteString(slow, "X-Slow: 1\r\n"); err != nil {
					return
				}
			}
		}
	}()
	took := closedAfter(slow)
	close(stop)
	if took > 4*time.Second {
		t.Errorf("slowloris connection still open after %v, want closed after about 1s", took)
	}

	conn, err := grpc.NewClient(d.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Connect()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	for s := conn.GetState(); s != connectivity.Ready; s = conn.GetState() {
		if !conn.WaitForStateChange(ctx, s) {
			t.Fatalf("gRPC connection never ready: %v", s)
		}
	}
	start = time.Now()
	// The server's GOAWAY after MaxConnectionIdle moves the client to IDLE.
	for s := conn.GetState(); s == connectivity.Ready; s = conn.GetState() {
		if !conn.WaitForStateChange(ctx, s) {
			t.Fatalf("idle gRPC connection still open after 8s")
		}
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("idle gRPC connection closed after %v, want about 1s", took)
	}
}
