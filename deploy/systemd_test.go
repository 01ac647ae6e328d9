package deploy_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/internal/testenv"
)

// unit reads a systemd unit file into section -> key -> values (repeated keys in order).
func unit(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := map[string]map[string][]string{}
	sec := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			sec = strings.Trim(line, "[]")
			u[sec] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: not key=value: %q", path, line)
			}
			u[sec][k] = append(u[sec][k], v)
		}
	}
	return u
}

// TestSystemdUnit checks deploy/systemd/rill-authd.service: systemd-analyze verify finds nothing
// to say about it, it has the hardening the README promises, and its ExecStart, with the
// example environment file, starts the real daemon, which bootstraps into the state directory,
// answers, and survives ExecReload's SIGHUP.
func TestSystemdUnit(t *testing.T) {
	const unitPath, envPath = "systemd/rill-authd.service", "systemd/rill-authd.env"
	u := unit(t, unitPath)
	svc := u["Service"]
	for k, want := range map[string]string{
		"DynamicUser": "yes", "StateDirectory": "rill-authd", "ProtectSystem": "strict", "NoNewPrivileges": "yes",
		"PrivateTmp": "yes", "ProtectHome": "yes", "CapabilityBoundingSet": "", "AmbientCapabilities": "",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "ExecReload": "/bin/kill -HUP $MAINPID",
		"EnvironmentFile": "-/etc/rill-authd/rill-authd.env",
	} {
		if got := svc[k]; len(got) != 1 || got[0] != want {
			t.Errorf("[Service] %s = %q, want %q", k, got, want)
		}
	}
	if !slices.Contains(svc["SystemCallFilter"], "@system-service") {
		t.Errorf("SystemCallFilter %q lacks @system-service", svc["SystemCallFilter"])
	}
	if len(svc["ExecStart"]) != 1 {
		t.Fatalf("ExecStart %q: want one", svc["ExecStart"])
	}
	args := strings.Fields(svc["ExecStart"][0])
	if args[0] != "/usr/local/bin/rill-authd" || strings.ContainsAny(svc["ExecStart"][0], `"'%$\`) {
		t.Fatalf("ExecStart %q: want /usr/local/bin/rill-authd and plain words (this test splits it on spaces)", args)
	}
	stateDir := "/var/lib/" + svc["StateDirectory"][0]
	if i := slices.Index(args, "--data-dir"); i < 0 || args[i+1] != stateDir {
		t.Errorf("ExecStart %q: want --data-dir %s, the StateDirectory", args, stateDir)
	}

	bin := testenv.Bin(t, "rill-authd")
	t.Run("verify", func(t *testing.T) {
		sa, err := exec.LookPath("systemd-analyze")
		if err != nil {
			testenv.Unavailable(t, "systemd", "systemd-analyze is missing (apt-get install systemd; .ci/run installs it)")
		}
		raw, err := os.ReadFile(unitPath)
		if err != nil {
			t.Fatal(err)
		}
		// verify needs ExecStart's binary to exist: point it at the one just built, nothing else changed.
		verify := func(text string) string {
			dir := t.TempDir()
			p := filepath.Join(dir, "rill-authd.service")
			if err := os.WriteFile(p, []byte(strings.Replace(text, "/usr/local/bin/rill-authd serve", bin+" serve", 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(sa, "verify", "--man=no", p).CombinedOutput()
			if err != nil {
				return string(out) + err.Error()
			}
			return string(out)
		}
		if out := verify(string(raw)); out != "" {
			t.Errorf("systemd-analyze verify:\n%s", out)
		}
		// It does complain: a misspelt key and a bad value are reported (it still exits 0).
		if out := verify(strings.Replace(string(raw), "ProtectHome=yes", "ProtectHome=maybe\nProtectHomes=yes", 1)); !strings.Contains(out, "ProtectHomes") || !strings.Contains(out, "maybe") {
			t.Errorf("systemd-analyze verify let a misspelt key through: %q", out)
		}
	})

	// Every variable the environment file names, set or commented out, is one the daemon reads.
	envRaw, err := os.ReadFile(envPath)
	if err != nil {
		t.Fatal(err)
	}
	help, _ := exec.Command(bin, "--help").CombinedOutput()
	env := []string{}
	for _, line := range strings.Split(string(envRaw), "\n") {
		m := regexp.MustCompile(`^#?(RILL_AUTHD_[A-Z_]+)=(.*)$`).FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if !strings.Contains(string(help), "$"+m[1]) {
			t.Errorf("%s names %s, which rill-authd does not read", envPath, m[1])
		}
		if !strings.HasPrefix(line, "#") {
			env = append(env, m[1]+"="+m[2])
		}
	}
	if len(env) == 0 {
		t.Fatalf("%s sets nothing", envPath)
	}

	// ExecStart as systemd runs it, with the example environment: the state directory is a temp
	// dir, the listeners port 0 on loopback (as the file's, on other ports).
	state := filepath.Join(t.TempDir(), "rill-authd")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	for i, a := range args {
		args[i] = strings.ReplaceAll(a, stateDir, state)
	}
	for i, e := range env {
		if strings.HasPrefix(e, "RILL_AUTHD_GRPC_ADDR=127.0.0.1:") || strings.HasPrefix(e, "RILL_AUTHD_HTTP_ADDR=127.0.0.1:") {
			env[i] = e[:strings.LastIndex(e, ":")] + ":0"
		}
	}
	cmd := exec.Command(bin, args[1:]...)
	cmd.Env = env
	p := start(t, cmd)
	tok, err := os.ReadFile(filepath.Join(state, "bootstrap-token"))
	if err != nil {
		t.Fatalf("bootstrap token file: %v\n%s", err, p.Stderr())
	}
	if strings.Contains(p.Stderr(), strings.TrimSpace(string(tok))) {
		t.Error("the bootstrap token is in the journal")
	}
	if !strings.Contains(p.Stderr(), `"level":"INFO"`) {
		t.Errorf("RILL_AUTHD_LOG_FORMAT=json from the environment file was not applied:\n%s", p.Stderr())
	}
	exercise(t, p.grpcAddr, p.httpAddr, strings.TrimSpace(string(tok)))

	// ExecReload: SIGHUP does not stop the daemon.
	p.signal(t, syscall.SIGHUP)
	time.Sleep(300 * time.Millisecond)
	select {
	case <-p.exited:
		t.Fatalf("SIGHUP stopped the daemon:\n%s", p.Stderr())
	default:
	}
	if code := get(t, "http://"+p.httpAddr+"/healthz"); code != 200 {
		t.Errorf("/healthz after SIGHUP: %d", code)
	}
}
