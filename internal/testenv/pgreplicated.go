package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PGServer is a PostgreSQL server of the test's own (initdb'd in a temp dir, on a free loopback
// port, run as the postgres user with Debian's binaries, as .ci/pg.sh runs the shared one), so a
// test may stop, kill or promote it. It is stopped (immediately) when the test ends.
type PGServer struct {
	Name string // for messages: "primary", "standby"
	Port int
	Dir  string // holds data/, the socket and server.log
	bin  string
	opts string // the server's options (pg_ctl -o)
	cred *syscall.Credential
}

// PostgresBinDir is the bin directory of Debian's PostgreSQL (the newest installed). Tests that
// run clusters of their own need it and root (to run them as the postgres user): locally they
// skip loudly without either; under CI=true they fail (.ci/pg.sh installs PostgreSQL).
func PostgresBinDir(t testing.TB) string {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	msg := ""
	switch {
	case len(bins) == 0:
		msg = "Debian's PostgreSQL binaries (/usr/lib/postgresql/*/bin) are not installed: apt-get install postgresql (.ci/pg.sh does)"
	case os.Geteuid() != 0:
		msg = "not root: the PostgreSQL clusters of this test run as the postgres user"
	default:
		if _, err := user.Lookup("postgres"); err != nil {
			msg = "no postgres user: apt-get install postgresql"
		}
	}
	if msg != "" {
		Unavailable(t, "PostgreSQL binaries", msg)
	}
	return filepath.Dir(bins[len(bins)-1])
}

func postgresCredential(t testing.TB) *syscall.Credential {
	t.Helper()
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// newPGDir is a temp dir the postgres user owns, removed when the test ends.
func newPGDir(t testing.TB, name string, cred *syscall.Credential) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "rill-authd-pg-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
		t.Fatal(err)
	}
	return dir
}

// run runs one of the PostgreSQL programs as the postgres user, in dir.
func (s *PGServer) run(ctx context.Context, prog string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, prog), args...)
	cmd.Dir = s.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	cmd.Env = append(os.Environ(), "HOME="+s.Dir, "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v\n%s", prog, strings.Join(args, " "), err, out)
	}
	return nil
}

// Ctl runs pg_ctl on the server's data directory with args (start, stop -m immediate,
// promote, ...), waiting for it to finish (-w, at most 60 s).
func (s *PGServer) Ctl(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	all := append([]string{"-D", filepath.Join(s.Dir, "data"), "-w", "-t", "60", "-l", filepath.Join(s.Dir, "server.log"), "-o", s.opts}, args...)
	if err := s.run(ctx, "pg_ctl", all...); err != nil {
		return fmt.Errorf("%s: %w\n%s", s.Name, err, s.Log())
	}
	return nil
}

// Log is the tail of the server's log, for failure messages.
func (s *PGServer) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "server.log"))
	if len(b) > 8<<10 {
		b = b[len(b)-8<<10:]
	}
	return string(b)
}

// URL is a URL of database db ("postgres" if "") on this server alone.
func (s *PGServer) URL(db string) string {
	if db == "" {
		db = "postgres"
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, db)
}

// MultiHostURL is a URL of database db that lists every server, in order, as pgx and libpq read
// one (postgres://h1:p1,h2:p2/db), with params (such as target_session_attrs=read-write)
// appended.
func MultiHostURL(db, params string, servers ...*PGServer) string {
	hosts := make([]string, len(servers))
	for i, s := range servers {
		hosts[i] = fmt.Sprintf("127.0.0.1:%d", s.Port)
	}
	u := fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", strings.Join(hosts, ","), db)
	if params != "" {
		u += "&" + params
	}
	return u
}

// start starts the server on a free port, trying another if the one picked was taken in the
// meantime, and stops it (immediately) when the test ends.
func (s *PGServer) start(t testing.TB, extra string) {
	t.Helper()
	var err error
	for range 5 {
		s.Port = FreePort(t)
		// Durability across a crash of the machine is not under test: fsync off.
		s.opts = fmt.Sprintf("-p %d -k '%s' -c listen_addresses=127.0.0.1 -c max_connections=100 -c fsync=off -c full_page_writes=off %s",
			s.Port, s.Dir, extra)
		if err = s.Ctl("start"); err == nil {
			t.Cleanup(func() { s.Ctl("-m", "immediate", "stop") })
			return
		}
		os.Remove(filepath.Join(s.Dir, "server.log"))
	}
	t.Fatalf("start PostgreSQL %s: %v", s.Name, err)
}

// StartPrimaryStandby starts a primary and a streaming standby of it (pg_basebackup -R), and
// makes the standby synchronous (synchronous_standby_names on the primary only, so that once
// the standby is promoted its own commits wait for no one): a commit acknowledged by the
// primary is on the standby, so promoting the standby after the primary dies loses no
// acknowledged write. It returns once the standby streams synchronously.
func StartPrimaryStandby(t testing.TB) (primary, standby *PGServer) {
	t.Helper()
	bin := PostgresBinDir(t)
	cred := postgresCredential(t)
	primary = &PGServer{Name: "primary", bin: bin, cred: cred, Dir: newPGDir(t, "primary", cred)}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := primary.run(ctx, "initdb", "-D", filepath.Join(primary.Dir, "data"), "-A", "trust", "-U", "postgres", "-N"); err != nil {
		t.Fatal(err)
	}
	primary.start(t, "-c synchronous_commit=on -c synchronous_standby_names='*'")

	standby = &PGServer{Name: "standby", bin: bin, cred: cred, Dir: newPGDir(t, "standby", cred)}
	if err := standby.run(ctx, "pg_basebackup", "-D", filepath.Join(standby.Dir, "data"), "-h", "127.0.0.1", "-p", strconv.Itoa(primary.Port),
		"-U", "postgres", "-R", "-X", "stream", "-c", "fast", "--no-sync"); err != nil {
		t.Fatal(err)
	}
	standby.start(t, "")

	// Until the standby streams, a commit on the primary waits for it.
	var state string
	deadline := time.Now().Add(60 * time.Second)
	for {
		state = ""
		if c, err := pgx.Connect(ctx, primary.URL("")); err == nil {
			_ = c.QueryRow(ctx, "SELECT coalesce(max(sync_state), '') FROM pg_stat_replication WHERE state = 'streaming'").Scan(&state)
			c.Close(ctx)
		}
		if state == "sync" {
			return primary, standby
		}
		if time.Now().After(deadline) {
			t.Fatalf("the standby does not stream synchronously after 60s (sync_state %q)\nprimary:\n%s\nstandby:\n%s", state, primary.Log(), standby.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
