package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Cluster is a PostgreSQL cluster of a test's own (Debian's binaries, run as the postgres
// user on a free loopback port), which the test may stop and start; it is stopped and removed
// when the test ends.
type Cluster struct {
	// URL is the server's URL (database postgres, user postgres, no password).
	URL string
	bin string
	dir string
	tb  testing.TB
	opt string
}

// TryPostgresCluster starts a cluster of the test's own, or returns nil (having logged why)
// when the machine cannot: no PostgreSQL binaries, or not root (the cluster runs as the
// postgres user). extra are more server settings ("-c name=value").
func TryPostgresCluster(tb testing.TB, extra ...string) *Cluster {
	tb.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 || os.Geteuid() != 0 {
		tb.Logf("no PostgreSQL cluster of the test's own: initdb found %d times, uid %d (want root)", len(bins), os.Geteuid())
		return nil
	}
	bin := filepath.Dir(bins[len(bins)-1])
	dir, err := os.MkdirTemp("", "rill-authd-pg-own-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	if out, err := exec.Command("chown", "postgres", dir).CombinedOutput(); err != nil {
		tb.Logf("cannot give a directory to the postgres user (%v %s)", err, out)
		return nil
	}
	c := &Cluster{bin: bin, dir: dir, tb: tb}
	if out, err := c.as(fmt.Sprintf("'%s/initdb' -D '%s/data' -A trust -U postgres -N", bin, dir)); err != nil {
		tb.Logf("initdb failed: %v\n%s", err, out)
		return nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	c.opt = fmt.Sprintf("-p %d -k '%s' -c listen_addresses=127.0.0.1 -c fsync=off %s", port, dir, strings.Join(extra, " "))
	c.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	c.Ctl("start")
	tb.Cleanup(func() { c.as(fmt.Sprintf("'%s/pg_ctl' -D '%s/data' -m immediate stop", bin, dir)) })
	return c
}

// PostgresCluster is TryPostgresCluster that skips the test loudly when it cannot start one,
// and fails it under CI=true.
func PostgresCluster(tb testing.TB, extra ...string) *Cluster {
	tb.Helper()
	c := TryPostgresCluster(tb, extra...)
	if c == nil {
		msg := "this test needs a PostgreSQL cluster of its own (Debian's postgresql package, run as root): NOT RUN"
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg)
		}
		tb.Skip("SKIPPED: " + msg)
	}
	return c
}

func (c *Cluster) as(cmd string) ([]byte, error) {
	return exec.Command("su", "postgres", "-s", "/bin/sh", "-c", cmd).CombinedOutput()
}

// Ctl runs pg_ctl on the cluster with args ("start", "-m", "fast", "stop", ...), waiting for
// it to finish (-w), and fails the test if it fails.
func (c *Cluster) Ctl(args ...string) {
	c.tb.Helper()
	cmd := fmt.Sprintf("'%s/pg_ctl' -D '%s/data' -w -t 60 -l '%s/server.log' -o \"%s\" %s", c.bin, c.dir, c.dir, c.opt, strings.Join(args, " "))
	if out, err := c.as(cmd); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
		c.tb.Fatalf("pg_ctl %v: %v\n%s\n%s", args, err, out, log)
	}
}
