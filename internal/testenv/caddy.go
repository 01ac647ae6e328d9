package testenv

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// CaddyBinary finds Debian's caddy. Locally a missing caddy skips the test loudly; under
// CI=true it fails it (.ci/run installs caddy).
func CaddyBinary(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"caddy", "/usr/bin/caddy"} {
		if bin, err := exec.LookPath(p); err == nil {
			return bin
		}
	}
	Unavailable(t, "caddy", "caddy is not installed, so the Caddy forward_auth gateway test did not run; apt-get install caddy (.ci/run does)")
	return ""
}

// StartCaddy validates the Caddyfile at config with env added to the environment (its {$VAR}
// placeholders), runs caddy on it until the test ends, with its data and config under dir, and
// waits until addr accepts connections.
func StartCaddy(t testing.TB, bin, dir, config, addr string, env ...string) {
	t.Helper()
	env = append(append(os.Environ(), "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "HOME="+dir), env...)
	validate := exec.Command(bin, "validate", "--config", config, "--adapter", "caddyfile")
	validate.Env = env
	if out, err := validate.CombinedOutput(); err != nil {
		t.Fatalf("caddy validate %s: %v\n%s", config, err, out)
	}
	logPath := filepath.Join(dir, "caddy.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", config, "--adapter", "caddyfile")
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logf.Close() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	for deadline := time.Now().Add(15 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(logPath)
			t.Fatalf("caddy exited: %v\n%s", err, log)
		default:
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("caddy did not start listening on %s within 15s\n%s", addr, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
