package daemon_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rill-authd/rill-authd/adminapi/client"
	"github.com/rill-authd/rill-authd/internal/testenv"
)

// startFails runs the daemon expecting it to refuse to start, and returns what it printed.
func startFails(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(testenv.Bin(t, "rill-authd"), append([]string{"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}, args...)...).CombinedOutput()
	if err == nil {
		t.Fatalf("started with %v, want a refusal:\n%s", args, out)
	}
	return string(out)
}

var issuerRe = regexp.MustCompile(`rill-authd started.* issuer=(\S+)`)

// issuerOf is the issuer a started daemon says it mints with.
func issuerOf(t *testing.T, d *testenv.Daemon) string {
	t.Helper()
	m := issuerRe.FindStringSubmatch(d.Stderr())
	if m == nil {
		t.Fatalf("no issuer in the start line:\n%s", d.Stderr())
	}
	return m[1]
}

// TestIssuerRecordedInTheStore, on both engines: the first daemon records its issuer; one
// started without --public-url/--issuer uses it; one started with another refuses to start,
// saying both and how to fix it, unless --replace-issuer; a recorded default gives way to the
// first URL given.
func TestIssuerRecordedInTheStore(t *testing.T) {
	for _, engine := range []string{"Badger", "PostgreSQL"} {
		t.Run(engine, func(t *testing.T) {
			var storeArgs []string
			if engine == "PostgreSQL" {
				db, _ := testenv.PostgresDB(t, "")
				storeArgs = []string{"--store", db}
			}
			dir := t.TempDir()
			args := func(more ...string) []string {
				return append(append([]string{"--data-dir", dir}, storeArgs...), more...)
			}

			// A first daemon without a URL records its default, which the first URL replaces.
			d := testenv.Start(t, dir, append(storeArgs, "--public-url", "")...)
			def := issuerOf(t, d)
			if def != d.URL() || !strings.Contains(d.Stderr(), "recorded the issuer in the store") {
				t.Fatalf("first start: issuer %s, want its listener %s, recorded:\n%s", def, d.URL(), d.Stderr())
			}
			d.Stop(t)
			d = testenv.Start(t, dir, append(storeArgs, "--public-url", "https://authd.example.com")...)
			if got := issuerOf(t, d); got != "https://authd.example.com" || !strings.Contains(d.Stderr(), "replaced the store's issuer") {
				t.Fatalf("a URL over a recorded default: issuer %s:\n%s", got, d.Stderr())
			}
			// A replica without flags takes it (PostgreSQL: while the first runs).
			if engine == "Badger" {
				d.Stop(t)
			}
			r := testenv.Start(t, dir, storeArgs...)
			if got := issuerOf(t, r); got != "https://authd.example.com" {
				t.Errorf("a replica without --public-url mints with %s, want the recorded https://authd.example.com", got)
			}
			r.Stop(t)
			d.Stop(t)

			// Another URL refuses to start, naming both and the fixes; so does another --issuer.
			for _, flag := range []string{"--public-url", "--issuer"} {
				out := startFails(t, args(flag, "https://other.example.com")...)
				for _, want := range []string{flag + " https://other.example.com", "store's issuer is https://authd.example.com",
					"without --issuer and --public-url", "--replace-issuer", "RILL_RUNTIME_AUTH_ISSUER_URL"} {
					if !strings.Contains(out, want) {
						t.Errorf("%s of another URL: the refusal does not say %q:\n%s", flag, want, out)
					}
				}
			}
			// The same URL by either flag starts.
			s := testenv.Start(t, dir, append(storeArgs, "--issuer", "https://authd.example.com")...)
			s.Stop(t)
			// --replace-issuer moves it.
			m := testenv.Start(t, dir, append(storeArgs, "--public-url", "https://new.example.com", "--replace-issuer")...)
			if got := issuerOf(t, m); got != "https://new.example.com" || !strings.Contains(m.Stderr(), "replaced the store's issuer") {
				t.Errorf("--replace-issuer: %s\n%s", got, m.Stderr())
			}
			m.Stop(t)
			n := testenv.Start(t, dir, storeArgs...)
			if got := issuerOf(t, n); got != "https://new.example.com" {
				t.Errorf("after --replace-issuer, a daemon without flags mints with %s", got)
			}
		})
	}
}

// TestIssuerOfAnExistingStore: a store from before issuers were recorded gets the first one a
// daemon starts with, and the log says so.
func TestIssuerOfAnExistingStore(t *testing.T) {
	db, _ := testenv.PostgresDB(t, "")
	d := testenv.Start(t, "", "--store", db, "--public-url", "https://authd.example.com")
	d.Stop(t)
	testenv.Exec(t, db, "DELETE FROM meta WHERE key = 'issuer'")
	d = testenv.Start(t, "", "--store", db, "--public-url", "https://later.example.com")
	if got := issuerOf(t, d); got != "https://later.example.com" || !strings.Contains(d.Stderr(), "recorded the issuer in the store (it had none)") {
		t.Fatalf("an existing store without an issuer: %s\n%s", got, d.Stderr())
	}
}

// TestDefaultIssuerWithTLS: with TLS on the HTTP listener the default issuer is https://, so
// its JWKS URL answers.
func TestDefaultIssuerWithTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca")
	cert, key, _ := ca.issue(t, "server", true)
	d := testenv.Start(t, filepath.Join(dir, "data"), "--tls-cert-file", cert, "--tls-key-file", key, "--tls-listeners", "http")
	if got := issuerOf(t, d); got != "https://"+d.HTTPAddr {
		t.Errorf("default issuer with TLS on the HTTP listener: %s, want https://%s", got, d.HTTPAddr)
	}
	d.Stop(t)
	p := testenv.Start(t, filepath.Join(dir, "plain"), "--tls-cert-file", cert, "--tls-key-file", key, "--tls-listeners", "grpc")
	if got := issuerOf(t, p); got != "http://"+p.HTTPAddr {
		t.Errorf("default issuer with TLS on gRPC only: %s, want http://%s", got, p.HTTPAddr)
	}
}

// TestIssuerMovesWithTheStore: a restored backup and a copy-store keep the recorded issuer, so
// the daemon on the new store mints what the runtime expects without being told again.
func TestIssuerMovesWithTheStore(t *testing.T) {
	db, _ := testenv.PostgresDB(t, "")
	dir := t.TempDir()
	d := testenv.Start(t, filepath.Join(dir, "src"), "--public-url", "https://authd.example.com")
	f, err := os.OpenFile(filepath.Join(dir, "backup"), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.New(d.URL(), d.Token).Backup(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	d.Stop(t)
	if out, err := exec.Command(testenv.Bin(t, "rill-authd"), "restore", "--data-dir", filepath.Join(dir, "restored"),
		"--from", filepath.Join(dir, "backup")).CombinedOutput(); err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	if out, err := copyStore(t, "--from", filepath.Join(dir, "src"), "--to", db); err != nil {
		t.Fatalf("copy-store: %v\n%s", err, out)
	}
	for name, args := range map[string][]string{"restored": nil, "copied to PostgreSQL": {"--store", db}} {
		r := testenv.Start(t, filepath.Join(dir, "restored"), args...)
		if got := issuerOf(t, r); got != "https://authd.example.com" {
			t.Errorf("%s: mints with %s, want the recorded https://authd.example.com", name, got)
		}
		r.Stop(t)
	}
}
