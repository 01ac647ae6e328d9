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

// Cluster is a PostgreSQL cluster of one test's own, so the test can stop and start it (the
// shared server of RILL_AUTHD_TEST_POSTGRES must stay up for everyone else). It runs Debian's
// binaries as the postgres user on a free loopback port, its socket in a temp dir, and is
// stopped (immediate) at cleanup.
type Cluster struct {
	URL      string // the server's postgres database: give it to PostgresDB for a database
	bin, dir string
	port     int
	t        testing.TB
}

// PostgresCluster starts a cluster of the test's own. Without PostgreSQL's binaries or root
// (to run them as postgres) it returns nil and says why, or, under CI=true, fails the test.
func PostgresCluster(t testing.TB) *Cluster {
	t.Helper()
	unavailable := func(why string) *Cluster {
		msg := "no PostgreSQL cluster of the test's own: " + why
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Log(msg)
		return nil
	}
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		return unavailable("no /usr/lib/postgresql/*/bin/initdb (apt-get install postgresql)")
	}
	if os.Geteuid() != 0 {
		return unavailable("not root, so cannot run initdb and pg_ctl as the postgres user")
	}
	c := &Cluster{bin: filepath.Dir(bins[len(bins)-1]), t: t}
	dir, err := os.MkdirTemp("", "rill-authd-pg-own-")
	if err != nil {
		t.Fatal(err)
	}
	c.dir = dir
	t.Cleanup(func() { os.RemoveAll(dir) })
	if out, err := exec.Command("chown", "postgres", dir).CombinedOutput(); err != nil {
		return unavailable(fmt.Sprintf("cannot give a directory to the postgres user (%v %s)", err, out))
	}
	if out, err := c.as(fmt.Sprintf("'%s/initdb' -D '%s/data' -A trust -U postgres -N", c.bin, dir)); err != nil {
		return unavailable(fmt.Sprintf("initdb failed: %v\n%s", err, out))
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	c.Ctl("start")
	t.Cleanup(func() { c.as(fmt.Sprintf("'%s/pg_ctl' -D '%s/data' -m immediate stop", c.bin, dir)) })
	c.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
	return c
}

func (c *Cluster) as(cmd string) ([]byte, error) {
	return exec.Command("su", "postgres", "-s", "/bin/sh", "-c", cmd).CombinedOutput()
}

// Ctl runs pg_ctl with args (start; -m fast stop; ...) on the cluster, failing the test on an
// error with the server's log.
func (c *Cluster) Ctl(args ...string) {
	c.t.Helper()
	cmd := fmt.Sprintf("'%s/pg_ctl' -D '%s/data' -w -t 60 -l '%s/server.log' -o \"-p %d -k '%s' -c listen_addresses=127.0.0.1 -c fsync=off\" %s",
		c.bin, c.dir, c.dir, c.port, c.dir, strings.Join(args, " "))
	if out, err := c.as(cmd); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
		c.t.Fatalf("pg_ctl %v: %v\n%s\n%s", args, err, out, log)
	}
}

// Stop stops the cluster (fast: connections are cut, as in a restart).
func (c *Cluster) Stop() { c.t.Helper(); c.Ctl("-m", "fast", "stop") }

// Start starts the stopped cluster again on the same port.
func (c *Cluster) Start() { c.t.Helper(); c.Ctl("start") }
