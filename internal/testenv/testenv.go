// Package testenv builds the project's real binaries and runs the real daemon for tests:
// a temp data dir, listeners on 127.0.0.1 port 0, and the bootstrap token read from its
// stderr.
package testenv

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// Bin returns the path of a binary built from ./cmd/<name> ("plugins/<name>" for an example
// plugin), building all of them once per test process.
func Bin(t testing.TB, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "rill-authd-bin-")
		if buildErr != nil {
			return
		}
		root := ModuleRoot()
		for dst, pkgs := range map[string]string{binDir: "./cmd/...", filepath.Join(binDir, "plugins"): "./plugins/examples/..."} {
			cmd := exec.Command("go", "build", "-o", dst+string(os.PathSeparator), pkgs)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", pkgs, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, name)
}

// ModuleRoot is the repository root.
func ModuleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Daemon is a running rill-authd child process.
type Daemon struct {
	Cmd      *exec.Cmd
	DataDir  string
	GRPCAddr string
	HTTPAddr string
	// Token is the bootstrap superuser token, if this start bootstrapped.
	Token   string
	mu      sync.Mutex
	stderr  bytes.Buffer
	exited  chan struct{}
	started chan struct{}
}

var (
	startedRe = regexp.MustCompile(`rill-authd started.*grpc_addr"?[=:]"?([^\s"]+).*http_addr"?[=:]"?([^\s"]+)`)
	tokenRe   = regexp.MustCompile(`bootstrap token \(shown once, store it now\): (\S+)`)
)

// Start runs the daemon on dataDir (a new temp dir if "") with extra args (--store URL for a
// PostgreSQL store), and waits until it is serving. It is stopped at test cleanup.
func Start(t testing.TB, dataDir string, args ...string) *Daemon {
	t.Helper()
	d := Spawn(t, dataDir, args...)
	d.WaitStarted(t)
	return d
}

// Spawn is Start without the wait, to start several daemons at once; WaitStarted waits.
func Spawn(t testing.TB, dataDir string, args ...string) *Daemon {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	return SpawnArgs(t, dataDir, append([]string{"--data-dir", dataDir, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}, args...)...)
}

// SpawnArgs is Spawn with the whole command line given: nothing added (a test whose --config
// file holds the data dir and the listeners). dataDir is only recorded.
func SpawnArgs(t testing.TB, dataDir string, all ...string) *Daemon {
	t.Helper()
	d := &Daemon{DataDir: dataDir, exited: make(chan struct{}), started: make(chan struct{})}
	d.Cmd = exec.Command(Bin(t, "rill-authd"), all...)
	d.Cmd.Env = os.Environ()
	pr, pw := io.Pipe()
	d.Cmd.Stderr = pw
	if err := d.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.Cmd.Wait(); pw.Close(); close(d.exited) }()
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		once := false
		for sc.Scan() {
			line := sc.Text()
			d.mu.Lock()
			d.stderr.WriteString(line + "\n")
			if m := tokenRe.FindStringSubmatch(line); m != nil {
				d.Token = m[1]
			}
			if m := startedRe.FindStringSubmatch(line); m != nil && !once {
				d.GRPCAddr, d.HTTPAddr, once = m[1], m[2], true
				close(d.started)
			}
			d.mu.Unlock()
		}
	}()
	t.Cleanup(func() { d.Stop(t) })
	return d
}

// WaitStarted waits until the daemon serves, failing t if it exits or takes over 30s.
func (d *Daemon) WaitStarted(t testing.TB) {
	t.Helper()
	select {
	case <-d.started:
	case <-d.exited:
		t.Fatalf("rill-authd exited before serving:\n%s", d.Stderr())
	case <-time.After(30 * time.Second):
		t.Fatalf("rill-authd did not start in 30s:\n%s", d.Stderr())
	}
}

// Stderr is everything the daemon has printed so far.
func (d *Daemon) Stderr() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stderr.String()
}

// URL is the base URL of the HTTP listener.
func (d *Daemon) URL() string { return "http://" + d.HTTPAddr }

// Stop sends SIGTERM and waits for a clean exit; it fails the test on a non-zero exit.
func (d *Daemon) Stop(t testing.TB) {
	t.Helper()
	select {
	case <-d.exited:
		return
	default:
	}
	d.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(20 * time.Second):
		d.Cmd.Process.Kill()
		<-d.exited
		t.Errorf("rill-authd did not stop within 20s of SIGTERM:\n%s", d.Stderr())
		return
	}
	if code := d.Cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("rill-authd exited with %d after SIGTERM:\n%s", code, d.Stderr())
	}
}

// Kill sends SIGKILL and waits for the process to die.
func (d *Daemon) Kill() {
	d.Cmd.Process.Kill()
	<-d.exited
}

// WaitFor polls until stderr contains s or the timeout passes.
func (d *Daemon) WaitFor(s string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(d.Stderr(), s) {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// Exited is closed when the daemon's process has exited.
func (d *Daemon) Exited() <-chan struct{} { return d.exited }
