package deploy_test

import (
	"archive/tar"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/rill-authd/rill-authd/internal/testenv"
)

// podman returns podman's path, or stops t where it is missing or cannot build (not root).
func podman(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("podman")
	if err != nil {
		testenv.Unavailable(t, "podman", "podman and buildah are not installed (apt-get install podman buildah; .ci/run installs them)")
	}
	if os.Geteuid() != 0 {
		testenv.Unavailable(t, "podman", "the image test runs the image's filesystem under chroot, which needs root")
	}
	return bin
}

// TestImage builds the image with `make image`, exports its filesystem (podman create + podman
// export) and runs the daemon from that filesystem alone, chrooted into it as the image's user:
// it bootstraps into the image's data directory and answers an admin call and real checks.
// (`podman run` cannot run here: crun's setrlimit fails in this unprivileged sandbox.)
func TestImage(t *testing.T) {
	pm := podman(t)
	root := testenv.ModuleRoot()
	const repo, version = "localhost/rill-authd-test", "test-build"
	ctxDir := t.TempDir()
	mk := exec.Command("make", "--no-print-directory", "image", "IMAGE="+repo, "VERSION="+version, "IMAGE_CTX="+ctxDir)
	mk.Dir = root
	out, err := mk.CombinedOutput()
	if err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command(pm, "rmi", "-f", repo+":"+version, repo+":latest").Run() })

	// make image prints the size, and it is small.
	m := regexp.MustCompile(`image ` + regexp.QuoteMeta(repo+":"+version) + ` \(and :latest\): [0-9.]+ MB \(([0-9]+) bytes\)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("make image printed no size line:\n%s", out)
	}
	size, _ := strconv.Atoi(string(m[1]))
	t.Logf("image size: %d bytes", size)
	if size <= 0 || size > 60<<20 {
		t.Errorf("image is %d bytes, want a few tens of MB at most", size)
	}

	// Labels, user, entrypoint, volume.
	raw, err := exec.Command(pm, "image", "inspect", repo+":latest").Output()
	if err != nil {
		t.Fatalf("podman image inspect: %v", err)
	}
	var insp []struct {
		Config struct {
			User       string
			Entrypoint []string
			Cmd        []string
			Volumes    map[string]struct{}
			Labels     map[string]string
		}
	}
	if err := json.Unmarshal(raw, &insp); err != nil || len(insp) != 1 {
		t.Fatalf("podman image inspect: %v\n%s", err, raw)
	}
	cfg := insp[0].Config
	rev, _ := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output()
	for k, want := range map[string]string{
		"org.opencontainers.image.version":  version,
		"org.opencontainers.image.revision": strings.TrimSpace(string(rev)),
		"org.opencontainers.image.source":   "https://github.com/rill-authd/rill-authd",
		"org.opencontainers.image.licenses": "NOASSERTION",
	} {
		if got := cfg.Labels[k]; got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}
	if cfg.User != "65532:65532" || strings.Join(cfg.Entrypoint, " ") != "/rill-authd" {
		t.Errorf("user %q entrypoint %q: want 65532:65532 and /rill-authd", cfg.User, cfg.Entrypoint)
	}
	if _, ok := cfg.Volumes["/var/lib/rill-authd"]; !ok {
		t.Errorf("volumes %v: want /var/lib/rill-authd", cfg.Volumes)
	}

	// The filesystem: exactly the binary, the CA bundle, passwd/group and the data dir.
	fs := exportImage(t, pm, repo+":latest")
	var files []string
	filepath.Walk(fs, func(p string, fi os.FileInfo, err error) error {
		if err == nil && p != fs {
			files = append(files, strings.TrimPrefix(p, fs))
		}
		return nil
	})
	want := "/etc /etc/group /etc/passwd /etc/ssl /etc/ssl/certs /etc/ssl/certs/ca-certificates.crt /rill-authd /var /var/lib /var/lib/rill-authd"
	if got := strings.Join(files, " "); got != want {
		t.Errorf("image files:\n got %s\nwant %s", got, want)
	}
	owner := func(p string) uint32 {
		st, err := os.Stat(filepath.Join(fs, p))
		if err != nil {
			t.Fatal(err)
		}
		return st.Sys().(*syscall.Stat_t).Uid
	}
	if owner("/var/lib/rill-authd") != 65532 || owner("/var/lib") != 0 || owner("/rill-authd") != 0 || owner("/etc/passwd") != 0 {
		t.Errorf("owners: data dir %d (want 65532), /var/lib %d, /rill-authd %d, /etc/passwd %d (want 0)",
			owner("/var/lib/rill-authd"), owner("/var/lib"), owner("/rill-authd"), owner("/etc/passwd"))
	}
	if pw, _ := os.ReadFile(filepath.Join(fs, "etc/passwd")); !strings.Contains(string(pw), ":65532:65532:") {
		t.Errorf("/etc/passwd names no user 65532:\n%s", pw)
	}
	if ca, _ := os.ReadFile(filepath.Join(fs, "etc/ssl/certs/ca-certificates.crt")); !strings.Contains(string(ca), "BEGIN CERTIFICATE") {
		t.Error("the CA bundle holds no certificate")
	} else if b, _ := pem.Decode(ca); b == nil {
		t.Error("the CA bundle is not PEM")
	}

	// The version is stamped into the binary.
	if v, err := exec.Command(filepath.Join(fs, "rill-authd"), "--version").CombinedOutput(); err != nil || !strings.Contains(string(v), version) {
		t.Errorf("rill-authd --version: %q %v, want %s", v, err, version)
	}

	// Run it from that filesystem only: chrooted, as 65532, with an empty environment, on the
	// image's data dir; the bootstrap token goes to a file there.
	cmd := exec.Command("/rill-authd", "--data-dir", "/var/lib/rill-authd", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
		"--bootstrap-token-file", "/var/lib/rill-authd/bootstrap-token")
	cmd.Env = []string{}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: fs, Credential: &syscall.Credential{Uid: 65532, Gid: 65532}}
	p := start(t, cmd)
	tokFile := filepath.Join(fs, "var/lib/rill-authd/bootstrap-token")
	tok, err := os.ReadFile(tokFile)
	if err != nil {
		t.Fatalf("bootstrap token file: %v\n%s", err, p.Stderr())
	}
	if st, _ := os.Stat(tokFile); st.Mode().Perm() != 0o600 || st.Sys().(*syscall.Stat_t).Uid != 65532 {
		t.Errorf("bootstrap token file mode %v uid %d, want 0600 and 65532", st.Mode().Perm(), st.Sys().(*syscall.Stat_t).Uid)
	}
	if strings.Contains(p.Stderr(), strings.TrimSpace(string(tok))) {
		t.Error("the bootstrap token is in the log")
	}
	exercise(t, p.grpcAddr, p.httpAddr, strings.TrimSpace(string(tok)))
	if code := get(t, "http://"+p.httpAddr+"/readyz"); code != 200 {
		t.Errorf("/readyz: %d", code)
	}
}

// exportImage creates a container of image (not started) and unpacks its filesystem into a
// temp dir, owners and modes kept.
func exportImage(t *testing.T, pm, image string) string {
	t.Helper()
	id, err := exec.Command(pm, "create", image).Output()
	if err != nil {
		t.Fatalf("podman create: %v", err)
	}
	ctr := strings.TrimSpace(string(id))
	defer exec.Command(pm, "rm", "-f", ctr).Run()
	exp := exec.Command(pm, "export", ctr)
	r, err := exp.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Start(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := untar(r, dir); err != nil {
		t.Fatalf("podman export: %v", err)
	}
	if err := exp.Wait(); err != nil {
		t.Fatalf("podman export: %v", err)
	}
	return dir
}

func untar(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean("/" + h.Name)
		p := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, tr); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: unexpected entry type %c in a scratch image", h.Name, h.Typeflag)
		}
		if err := os.Chmod(p, os.FileMode(h.Mode).Perm()); err != nil {
			return err
		}
		if err := os.Lchown(p, h.Uid, h.Gid); err != nil {
			return err
		}
	}
}
