package daemon_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/rill-authd/rill-authd/adminapi/client"
	"github.com/rill-authd/rill-authd/internal/testenv"
)

// unixHTTP is an HTTP client whose every request goes to the socket at path.
func unixHTTP(path string) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		}}}
}

func unixGet(t *testing.T, path, url string) (int, string) {
	t.Helper()
	resp, err := unixHTTP(path).Get("http://authd" + url)
	if err != nil {
		t.Fatalf("GET %s over %s: %v", url, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// otherGroup is a real group of this machine that is not the process's own, so that a socket
// in it shows --socket-group applied; chown to it needs root.
func otherGroup(t *testing.T) (name string, gid int) {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Unavailable(t, "root", "giving a socket another group (--socket-group) needs root: run the tests as root")
	}
	for _, n := range []string{"daemon", "nogroup", "adm", "users"} {
		if g, err := user.LookupGroup(n); err == nil {
			gid, _ := strconv.Atoi(g.Gid)
			if gid != os.Getegid() {
				return n, gid
			}
		}
	}
	testenv.Unavailable(t, "a group", "no group daemon, nogroup, adm or users in /etc/group")
	return "", 0
}

// TestUnixSockets runs the daemon with both listeners on Unix sockets: a gRPC check, gRPC
// health and the HTTP API answer over them; they are mode 0660 in --socket-group (by name or
// by gid); a stale socket left by a killed daemon is replaced; a regular file or a live
// socket at the path is refused, untouched; the sockets are gone after a clean stop.
func TestUnixSockets(t *testing.T) {
	group, gid := otherGroup(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	grpcSock, httpSock := filepath.Join(dir, "authz.sock"), filepath.Join(dir, "http.sock")
	args := func(group string) []string {
		return []string{"--grpc-addr", "unix://" + grpcSock, "--http-addr", "unix://" + httpSock,
			"--socket-group", group, "--public-url", "https://authd.example.com"}
	}
	serves := func(t *testing.T, d *testenv.Daemon, tok string) {
		t.Helper()
		if d.GRPCAddr != "unix://"+grpcSock || d.HTTPAddr != "unix://"+httpSock {
			t.Fatalf("start log names %s and %s, want the sockets", d.GRPCAddr, d.HTTPAddr)
		}
		for _, p := range []string{grpcSock, httpSock} {
			fi, err := os.Lstat(p)
			if err != nil {
				t.Fatal(err)
			}
			st := fi.Sys().(*syscall.Stat_t)
			if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o660 || int(st.Gid) != gid {
				t.Fatalf("%s: mode %v gid %d, want a socket 0660 in group %s (%d)", p, fi.Mode(), st.Gid, group, gid)
			}
		}
		conn, err := grpc.NewClient(d.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := grpcCheck(conn, tok); err != nil {
			t.Fatalf("gRPC check over the socket: %v", err)
		}
		hr, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
		if err != nil || hr.Status != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("gRPC health over the socket: %v %v", hr, err)
		}
		if code, body := unixGet(t, httpSock, "/healthz"); code != 200 || body != "ok\n" {
			t.Fatalf("healthz over the socket: %d %q", code, body)
		}
		req, _ := http.NewRequest("GET", "http://authd/ext_authz/v1/orgs/acme/projects/web/x", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := unixHTTP(httpSock).Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("HTTP check over the socket: %v %v", resp, err)
		}
		resp.Body.Close()
		if code, body := unixGet(t, httpSock, "/.well-known/jwks.json"); code != 200 || !strings.Contains(body, `"keys"`) {
			t.Fatalf("JWKS over the socket: %d %s", code, body)
		}
		if !strings.Contains(d.Stderr(), "issuer=https://authd.example.com") {
			t.Fatalf("the issuer is not --public-url:\n%s", d.Stderr())
		}
	}

	d := testenv.Start(t, data, args(group)...)
	tok := d.Token
	serves(t, d, tok)

	// A second daemon on the same sockets: refused, and the first one's sockets left alone.
	out, err := exec.Command(testenv.Bin(t, "rill-authd"), append([]string{"--data-dir", filepath.Join(dir, "data2")}, args(group)...)...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "another process is listening on this socket") {
		t.Fatalf("second daemon on a live socket: %v\n%s", err, out)
	}
	serves(t, d, tok)

	// Killed: the sockets stay behind, stale. The next start (group by gid) replaces them.
	d.Kill()
	for _, p := range []string{grpcSock, httpSock} {
		if fi, err := os.Lstat(p); err != nil || fi.Mode().Type() != os.ModeSocket {
			t.Fatalf("after SIGKILL %s: %v %v (want a stale socket left)", p, fi, err)
		}
	}
	d = testenv.Start(t, data, args(strconv.Itoa(gid))...)
	serves(t, d, tok)

	// A clean stop removes both sockets.
	d.Stop(t)
	for _, p := range []string{grpcSock, httpSock} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Fatalf("after a clean stop %s: %v (want it removed)", p, err)
		}
	}

	// A regular file at the path is never replaced.
	if err := os.WriteFile(grpcSock, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(testenv.Bin(t, "rill-authd"), append([]string{"--data-dir", data}, args(group)...)...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "exists and is not a socket") {
		t.Fatalf("daemon over a regular file: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(grpcSock); err != nil || string(b) != "precious" {
		t.Fatalf("the regular file was touched: %q %v", b, err)
	}
	if _, err := os.Lstat(httpSock); !os.IsNotExist(err) {
		t.Fatalf("a failed start left %s: %v", httpSock, err)
	}
}

// TestUnixSocketFlags: mistakes in the socket flags stop the start with a clear error.
func TestUnixSocketFlags(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"relative path", []string{"--grpc-addr", "unix://authz.sock"}, "want an absolute path"},
		{"path too long", []string{"--grpc-addr", "unix://" + filepath.Join(dir, strings.Repeat("x", 100), "authz.sock")}, "too long for a Unix socket"},
		{"unknown group", []string{"--grpc-addr", "unix://" + filepath.Join(dir, "a.sock"), "--socket-group", "no-such-group-here"}, "--socket-group no-such-group-here"},
		{"HTTP socket without --public-url", []string{"--http-addr", "unix://" + filepath.Join(dir, "h.sock")}, "set --public-url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			all := append([]string{"--data-dir", filepath.Join(dir, tc.name), "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}, tc.args...)
			out, err := exec.Command(testenv.Bin(t, "rill-authd"), all...).CombinedOutput()
			if err == nil || !strings.Contains(string(out), tc.want) {
				t.Fatalf("want a failed start saying %q: %v\n%s", tc.want, err, out)
			}
		})
	}
}

// BenchmarkCheckGRPCUnixVsTCP: two daemons on Badger (real processes, 100 cached service tokens
// each), one with the check on a Unix socket, one on loopback TCP, answer the same checks over
// real gRPC from 4 clients per core, in alternating equal rounds; it reports the socket's
// throughput as a ratio of TCP's, both p99 latencies, and the median latency of a second of
// checks at a fixed 2,000/s (the transport's own cost, less swayed by a loaded machine).
func BenchmarkCheckGRPCUnixVsTCP(b *testing.B) {
	sock := filepath.Join(b.TempDir(), "authz.sock")
	ds := map[string]*testenv.Daemon{"tcp": testenv.Start(b, ""), "unix": testenv.Start(b, "", "--grpc-addr", "unix://"+sock)}
	cs := map[string]*grpcChecker{}
	for name, d := range ds {
		cs[name] = newChecker(b, d, serviceTokens(b, client.New(d.URL(), d.Token), "ci", 100))
		cs[name].run(b, 4, 2*len(cs[name].reqs), nil) // warm the cache and the connection
	}
	workers := 4 * runtime.GOMAXPROCS(0)
	took := map[string]time.Duration{}
	count := map[string]int{}
	lats := map[string][]time.Duration{}
	fixed := map[string][]time.Duration{} // latencies at a fixed 2,000 checks/s
	order := []string{"tcp", "unix"}
	for b.Loop() {
		for _, name := range order {
			n, d, l := cs[name].run(b, workers, 20_000, nil)
			took[name] += d
			count[name] += n
			lats[name] = append(lats[name], l...)
			_, _, l = cs[name].runAt(b, 4, 2_000, 2_000, nil)
			fixed[name] = append(fixed[name], l...)
		}
		slices.Reverse(order)
	}
	b.ReportMetric(float64(pct(fixed["unix"], 50))/float64(pct(fixed["tcp"], 50)), "p50@2k-unix/tcp")
	b.ReportMetric(float64(pct(fixed["unix"], 50).Microseconds()), "unix-p50@2k-µs")
	b.ReportMetric(float64(pct(fixed["tcp"], 50).Microseconds()), "tcp-p50@2k-µs")
	rps := func(name string) float64 { return float64(count[name]) / took[name].Seconds() }
	b.ReportMetric(rps("unix")/rps("tcp"), "unix/tcp")
	b.ReportMetric(rps("unix"), "unix-rps")
	b.ReportMetric(rps("tcp"), "tcp-rps")
	b.ReportMetric(float64(pct(lats["unix"], 99).Microseconds()), "unix-p99-µs")
	b.ReportMetric(float64(pct(lats["tcp"], 99).Microseconds()), "tcp-p99-µs")
}
