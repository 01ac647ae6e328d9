package daemon_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/rill-authd/rill-authd/internal/testenv"
)

func checkRequest(tok string) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/v1/orgs/acme/projects/web/x",
			Headers: map[string]string{"authorization": "Bearer " + tok}}}}}
}

// grpcCheck runs one check on conn and returns the serial of the server certificate of the
// connection it went over.
func grpcCheck(conn *grpc.ClientConn, tok string) (serial string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var p peer.Peer
	resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, checkRequest(tok), grpc.Peer(&p), grpc.WaitForReady(false))
	if err != nil {
		return "", err
	}
	if c := resp.GetStatus().GetCode(); c != 0 {
		return "", fmt.Errorf("check denied: %v", resp.GetStatus())
	}
	if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok {
		return ti.State.PeerCertificates[0].SerialNumber.String(), nil
	}
	return "", nil
}

func dialGRPC(t *testing.T, addr string, cfg *tls.Config) *grpc.ClientConn {
	t.Helper()
	creds := insecure.NewCredentials()
	if cfg != nil {
		creds = credentials.NewTLS(cfg)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func clientTLS(t *testing.T, ca *testCA, certFile, keyFile string) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	cfg := &tls.Config{RootCAs: pool, ServerName: "localhost"}
	if certFile != "" {
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return cfg
}

// serverSerial makes a new TLS handshake with addr and returns the serial of the certificate
// the server presented.
func serverSerial(t *testing.T, addr string, cfg *tls.Config) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatalf("TLS handshake with %s: %v", addr, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// TestMTLSOnBothListeners: with a certificate and a client CA, both listeners speak TLS only
// and refuse a client without a certificate signed by that CA; rillctl reaches the admin API
// with its TLS flags or environment; SIGHUP reloads replaced files for new handshakes while a
// gRPC connection and an HTTP keep-alive connection made before go on with the old certificate.
func TestMTLSOnBothListeners(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca")
	srvCert, srvKey, srv1 := ca.issue(t, "server", true)
	cliCert, cliKey, _ := ca.issue(t, "envoy", false)
	rogueCA := newTestCA(t, dir, "rogue-ca")
	rogueCert, rogueKey, _ := rogueCA.issue(t, "rogue", false)

	d := testenv.Start(t, "", "--tls-cert-file", srvCert, "--tls-key-file", srvKey, "--tls-client-ca-file", ca.File,
		"--tls-reload-interval", "0")
	if !strings.Contains(d.Stderr(), "grpc_tls=true http_tls=true client_certs_required=true") {
		t.Fatalf("start line does not say TLS is on:\n%s", d.Stderr())
	}
	good := clientTLS(t, ca, cliCert, cliKey)

	// gRPC: a client certificate from our CA passes; none, a foreign one or plaintext do not.
	held := dialGRPC(t, d.GRPCAddr, good)
	if s, err := grpcCheck(held, d.Token); err != nil || s != srv1.SerialNumber.String() {
		t.Fatalf("gRPC check over mTLS: serial %s, %v", s, err)
	}
	for name, cfg := range map[string]*tls.Config{"no client certificate": clientTLS(t, ca, "", ""),
		"a client certificate of another CA": clientTLS(t, ca, rogueCert, rogueKey)} {
		if _, err := grpcCheck(dialGRPC(t, d.GRPCAddr, cfg), d.Token); status.Code(err) != codes.Unavailable {
			t.Errorf("gRPC with %s: %v, want refused at the handshake", name, err)
		}
	}
	if _, err := grpcCheck(dialGRPC(t, d.GRPCAddr, nil), d.Token); status.Code(err) != codes.Unavailable {
		t.Errorf("plaintext gRPC: %v, want refused", err)
	}

	// HTTP: the same, on a keep-alive connection held for the reload below.
	heldHTTP, err := tls.Dial("tcp", d.HTTPAddr, good)
	if err != nil {
		t.Fatal(err)
	}
	defer heldHTTP.Close()
	br := bufio.NewReader(heldHTTP)
	healthz := func() (int, error) {
		if _, err := fmt.Fprintf(heldHTTP, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
			return 0, err
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := healthz(); code != 200 {
		t.Fatalf("HTTPS /healthz with a client certificate: %d %v", code, err)
	}
	noCert := &http.Client{Transport: &http.Transport{TLSClientConfig: clientTLS(t, ca, "", "")}, Timeout: 3 * time.Second}
	if resp, err := noCert.Get("https://" + d.HTTPAddr + "/healthz"); err == nil {
		resp.Body.Close()
		t.Errorf("HTTPS without a client certificate: %d, want refused", resp.StatusCode)
	}
	if resp, err := http.Get("http://" + d.HTTPAddr + "/healthz"); err == nil && resp.StatusCode == 200 {
		t.Errorf("plain HTTP answered 200 on the TLS port")
	}

	// rillctl, by flags and by environment.
	rillctl := testenv.Bin(t, "rillctl")
	run := func(env []string, args ...string) (string, int) {
		cmd := exec.Command(rillctl, args...)
		cmd.Env = append([]string{"RILLCTL_API_URL=https://" + d.HTTPAddr, "RILLCTL_TOKEN=" + d.Token}, env...)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	if out, code := run(nil, "whoami", "--ca-file", ca.File, "--client-cert-file", cliCert, "--client-key-file", cliKey); code != 0 || !strings.Contains(out, "admin@localhost") {
		t.Errorf("rillctl whoami with TLS flags: exit %d: %s", code, out)
	}
	if out, code := run([]string{"RILLCTL_CA_FILE=" + ca.File, "RILLCTL_CLIENT_CERT_FILE=" + cliCert, "RILLCTL_CLIENT_KEY_FILE=" + cliKey}, "whoami"); code != 0 || !strings.Contains(out, "admin@localhost") {
		t.Errorf("rillctl whoami with TLS environment: exit %d: %s", code, out)
	}
	for want, args := range map[string][]string{
		"rill-authd requires a client certificate: --client-cert-file": {"whoami", "--ca-file", ca.File},
		"--ca-file": {"whoami", "--client-cert-file", cliCert, "--client-key-file", cliKey},
		"a client certificate needs both its certificate and its key file": {"whoami", "--ca-file", ca.File, "--client-cert-file", cliCert},
	} {
		if out, code := run(nil, args...); code != 1 || !strings.Contains(out, want) || strings.Count(strings.TrimSpace(out), "\n") > 0 {
			t.Errorf("rillctl %v: exit %d, output %q, want one line with %q", args, code, out, want)
		}
	}

	// Reload on SIGHUP: replace the certificate and key (a rotation), signal, and new
	// handshakes get the new certificate while the held connections keep working.
	_, _, srv2 := ca.issue(t, "server", true)
	if err := d.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if !d.WaitFor(`msg="TLS certificate reloaded" trigger=SIGHUP`, 5*time.Second) {
		t.Fatalf("no reload on SIGHUP:\n%s", d.Stderr())
	}
	for name, addr := range map[string]string{"gRPC": d.GRPCAddr, "HTTP": d.HTTPAddr} {
		if s := serverSerial(t, addr, good); s != srv2.SerialNumber.String() {
			t.Errorf("%s after reload: new handshakes see serial %s, want the new %s", name, s, srv2.SerialNumber)
		}
	}
	if s, err := grpcCheck(held, d.Token); err != nil || s != srv1.SerialNumber.String() {
		t.Errorf("gRPC connection from before the reload: serial %s, %v; want it alive on the old certificate", s, err)
	}
	if code, err := healthz(); code != 200 || heldHTTP.ConnectionState().PeerCertificates[0].SerialNumber.Cmp(srv1.SerialNumber) != 0 {
		t.Errorf("HTTP keep-alive connection from before the reload: %d %v", code, err)
	}
	if s, err := grpcCheck(dialGRPC(t, d.GRPCAddr, good), d.Token); err != nil || s != srv2.SerialNumber.String() {
		t.Errorf("new gRPC connection after the reload: serial %s, %v", s, err)
	}
	d.Stop(t)
}

// TestTLSReloadOnFileChange: with polling, a replaced certificate is served without a signal;
// a half-done rotation (new certificate, old key) is logged once and the old pair stays in
// service. TLS only on HTTP here (no client CA), with both listeners off loopback: the gRPC
// one, plaintext, is warned about; the HTTP one, on TLS, is not.
func TestTLSReloadOnFileChange(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca")
	srvCert, srvKey, srv1 := ca.issue(t, "server", true)
	d := testenv.Start(t, "", "--tls-cert-file", srvCert, "--tls-key-file", srvKey, "--tls-listeners", "http",
		"--tls-reload-interval", "100ms", "--grpc-addr", "0.0.0.0:0", "--http-addr", "0.0.0.0:0")
	out := d.Stderr()
	if !strings.Contains(out, "the gRPC listener on [::]:") || !strings.Contains(out, "is not on loopback and has no TLS") {
		t.Errorf("no warning about the plaintext gRPC listener off loopback:\n%s", out)
	}
	if strings.Contains(out, "the HTTP listener on") {
		t.Errorf("warned about the HTTP listener, which has TLS:\n%s", out)
	}
	cfg := clientTLS(t, ca, "", "")
	if s := serverSerial(t, d.HTTPAddr, cfg); s != srv1.SerialNumber.String() {
		t.Fatalf("serial %s, want %s", s, srv1.SerialNumber)
	}
	// gRPC is plaintext here.
	if _, err := grpcCheck(dialGRPC(t, d.GRPCAddr, nil), d.Token); err != nil {
		t.Fatalf("plaintext gRPC with --tls-listeners http: %v", err)
	}

	// Half a rotation: a new certificate beside the old key (made aside, then moved in).
	cert2, key2, srv2 := ca.issue(t, "server2", true)
	if err := os.Rename(cert2, srvCert); err != nil {
		t.Fatal(err)
	}
	if !d.WaitFor("TLS reload failed; still serving the previous certificate", 3*time.Second) {
		t.Fatalf("a mismatched pair was not reported:\n%s", d.Stderr())
	}
	if s := serverSerial(t, d.HTTPAddr, cfg); s != srv1.SerialNumber.String() {
		t.Fatalf("during a half rotation: serial %s, want the old %s", s, srv1.SerialNumber)
	}
	time.Sleep(300 * time.Millisecond) // a few more polls of the same broken pair
	if n := strings.Count(d.Stderr(), "TLS reload failed"); n != 1 {
		t.Errorf("the same failure logged %d times, want once", n)
	}
	if err := os.Rename(key2, srvKey); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for serverSerial(t, d.HTTPAddr, cfg) != srv2.SerialNumber.String() {
		if time.Now().After(deadline) {
			t.Fatalf("replaced certificate not served within 3s:\n%s", d.Stderr())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !d.WaitFor(`msg="TLS certificate reloaded" trigger="file change"`, 3*time.Second) {
		t.Errorf("reload not logged:\n%s", d.Stderr())
	}
}

// TestDefaultGRPCAddrIsLoopback: a sidecar's Envoy is on loopback.
func TestDefaultGRPCAddrIsLoopback(t *testing.T) {
	out, _ := exec.Command(testenv.Bin(t, "rill-authd"), "serve", "--help").CombinedOutput()
	if !strings.Contains(string(out), `--grpc-addr="127.0.0.1:9191"`) {
		t.Errorf("default --grpc-addr is not 127.0.0.1:9191:\n%s", out)
	}
}

// TestSIGHUPWithoutTLSKeepsServing: SIGHUP is caught even with nothing to reload.
func TestSIGHUPWithoutTLSKeepsServing(t *testing.T) {
	d := testenv.Start(t, "")
	if err := d.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if !d.WaitFor("config reloaded: no setting that applies live changed", 5*time.Second) {
		t.Fatalf("SIGHUP not handled:\n%s", d.Stderr())
	}
	if code, _ := get(t, d.URL()+"/healthz"); code != 200 {
		t.Fatalf("/healthz after SIGHUP: %d", code)
	}
}
