package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rill-authd/rill-authd/internal/testenv"
)

func runBin(t *testing.T, name string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(testenv.Bin(t, name), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// TestTopLevelHelpShowsServe: serve is the default command, so `rill-authd --help` shows its
// flags, and every other command on one line.
func TestTopLevelHelpShowsServe(t *testing.T) {
	out, stderr, code := runBin(t, "rill-authd", "--help")
	if code != 0 || stderr != "" {
		t.Fatalf("rill-authd --help: exit %d, stderr %q", code, stderr)
	}
	for _, flag := range []string{"--data-dir", "--store", "--grpc-addr", "--http-addr", "--public-url", "--max-staleness",
		"--tls-cert-file", "--http-max-conns", "--log-format", "--config", "--version"} {
		if !strings.Contains(out, flag) {
			t.Errorf("rill-authd --help lacks serve's %s", flag)
		}
	}
	for _, cmd := range []string{"serve", "restore", "copy-store", "import-rill"} {
		n := 0
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "  "+cmd+" ") {
				n++
			}
		}
		if n != 1 {
			t.Errorf("rill-authd --help lists %s on %d lines, want 1:\n%s", cmd, n, out)
		}
	}
	// A command's own help is kong's, unchanged.
	out, _, code = runBin(t, "rill-authd", "restore", "--help")
	if code != 0 || !strings.Contains(out, "--from=FILE") || strings.Contains(out, "--grpc-addr") {
		t.Errorf("rill-authd restore --help: exit %d\n%s", code, out)
	}
}

// TestUsageMistakesOneStyle: both binaries answer a mistake on the command line with one line
// on stderr that names it and hints at the fix, no usage, and exit 2; both have --version.
func TestUsageMistakesOneStyle(t *testing.T) {
	// A misspelt key in the config file is a usage mistake too, not a silent default.
	typo, unknown := filepath.Join(t.TempDir(), "typo.yaml"), filepath.Join(t.TempDir(), "unknown.yaml")
	os.WriteFile(typo, []byte("datadir: /tmp/x\nlog-format: json\nplugins: []\n"), 0o600)
	os.WriteFile(unknown, []byte("colour: blue\n"), 0o600)
	// A value the command line refuses is refused in the file too (it was 30ns).
	unitless := filepath.Join(t.TempDir(), "unitless.yaml")
	os.WriteFile(unitless, []byte("shutdown_timeout: 30\n"), 0o600)
	for _, c := range []struct {
		bin  string
		args []string
		want []string
	}{
		{"rill-authd", []string{"--datadir", "x"}, []string{"--datadir", `did you mean "--data-dir"?`, "rill-authd --help"}},
		{"rill-authd", []string{"copy-store", "--from", "x"}, []string{"--to", "(see rill-authd copy-store --help)"}},
		{"rill-authd", []string{"--log-level", "loud"}, []string{"--log-level", "loud"}},
		{"rill-authd", []string{"--config", typo}, []string{`unknown key "datadir", did you mean "data_dir"?`}},
		{"rill-authd", []string{"--config", unknown}, []string{`unknown key "colour"`, "keys are the flag names"}},
		{"rill-authd", []string{"--config", unitless}, []string{"config file: shutdown_timeout: 30 is refused, as --shutdown-timeout=30 is", "needs a unit", "30s"}},
		{"rill-authd", []string{"restor"}, []string{`restor, did you mean "restore"?`, "(see rill-authd --help)"}},
		{"rill-authd", []string{"--data-dir", "x", "copystore"}, []string{`did you mean "copy-store"?`}},
		{"rillctl", []string{"--api-urll", "x", "whoami"}, []string{"--api-urll", `did you mean "--api-url"?`, "rillctl --help"}},
		{"rillctl", []string{"servce", "list"}, []string{"servce"}},
	} {
		out, stderr, code := runBin(t, c.bin, c.args...)
		name := c.bin + " " + strings.Join(c.args, " ")
		if code != 2 {
			t.Errorf("%s: exit %d, want 2", name, code)
		}
		if out != "" || strings.Contains(stderr, "Usage") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%s: want one line on stderr and no usage; stdout %q, stderr %q", name, out, stderr)
		}
		if !strings.HasPrefix(stderr, c.bin+": ") {
			t.Errorf("%s: stderr %q does not start with %q", name, stderr, c.bin+": ")
		}
		for _, w := range c.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%s: stderr %q lacks %q", name, stderr, w)
			}
		}
	}
	for _, bin := range []string{"rill-authd", "rillctl"} {
		if out, stderr, code := runBin(t, bin, "--version"); code != 0 || strings.TrimSpace(out) == "" || stderr != "" {
			t.Errorf("%s --version: exit %d, stdout %q, stderr %q", bin, code, out, stderr)
		}
	}
}

// TestBadPluginsWriteNothing: a mistake in the config file's plugins section stops the daemon
// before it creates a store, a superuser or a bootstrap token: on an empty data directory a
// typo (comand:) is one line and exit 2, a plugin that cannot start one line and exit 1, and
// either way the directory is not created and no token is printed.
func TestBadPluginsWriteNothing(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name, yaml string
		code       int
		want       string
	}{
		{"typo", "plugins:\n  - name: hr\n    comand: /bin/true\n", 2, `unknown key "comand", did you mean "command"?`},
		{"no such command", "plugins:\n  - name: hr\n    command: " + filepath.Join(dir, "no-such-plugin") + "\n", 1, "no-such-plugin"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, data := filepath.Join(dir, c.name+".yaml"), filepath.Join(dir, c.name+"-data")
			os.WriteFile(cfg, []byte(c.yaml), 0o600)
			out, stderr, code := runBin(t, "rill-authd", "--config", cfg, "--data-dir", data, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0")
			if code != c.code || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, c.code, c.want)
			}
			if strings.Contains(out+stderr, "rill_usr_") || strings.Contains(stderr, "superuser") {
				t.Errorf("a superuser or token was made before the config was refused:\n%s%s", out, stderr)
			}
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				t.Errorf("the data dir exists after the config was refused (%v)", err)
			}
			if c.code == 2 && strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Errorf("want one line, got %q", stderr)
			}
		})
	}
}

// TestMakeRunTakesArgs: `make run ARGS="…"` hands the flags to the daemon (the README says so;
// the target took none).
func TestMakeRunTakesArgs(t *testing.T) {
	mk, err := exec.LookPath("make")
	if err != nil {
		testenv.Unavailable(t, "make", "make run is tried with make -n: apt-get install make")
		return
	}
	cmd := exec.Command(mk, "-n", "run", `ARGS=--http-addr 127.0.0.1:9090 --grpc-addr 127.0.0.1:9292 --data-dir ./data2`)
	cmd.Dir = testenv.ModuleRoot()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make -n run: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "./bin/rill-authd --http-addr 127.0.0.1:9090 --grpc-addr 127.0.0.1:9292 --data-dir ./data2\n") {
		t.Errorf("make run ARGS=… does not pass them to the daemon:\n%s", out)
	}
}
