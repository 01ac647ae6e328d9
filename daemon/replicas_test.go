package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/adminapi/client"
	"github.com/rill-authd/rill-authd/internal/testenv"
)

// Replicas: real rill-authd processes sharing one PostgreSQL database (a database of each
// test's own on the server .ci/pg.sh starts).

var checkClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}

// checkStatus is the status of an HTTP-mode check of tok on d for acme/web.
func checkStatus(t testing.TB, d *testenv.Daemon, tok string) int {
	t.Helper()
	code, _, err := tryCheck(d, tok)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

func tryCheck(d *testenv.Daemon, tok string) (int, string, error) {
	req, _ := http.NewRequest("GET", d.URL()+"/ext_authz/v1/orgs/acme/projects/web/x", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := checkClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// within polls cond every millisecond for up to d and reports how long it took to hold (or -1).
// revokeLag bounds, in tests, how long another replica takes to deny a revoked token. Under
// half the feed's 1 s poll, it fails a broken NOTIFY path; well above the lag itself (p99 5–6 ms
// quiet, BenchmarkCheckUnderRevocations), it does not fail a loaded CI machine.
const revokeLag = 500 * time.Millisecond

func within(d time.Duration, cond func() bool) time.Duration {
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			return -1
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

// acmeService makes org acme, project web and a service with admin on acme through c, and
// returns the service's token.
func acmeService(t *testing.T, c *client.Client, name string) apiv1.IssuedToken {
	t.Helper()
	ctx := context.Background()
	if _, err := c.CreateOrg(ctx, "acme"); err != nil && !isStatus(err, 409) {
		t.Fatal(err)
	}
	if _, err := c.CreateProject(ctx, "acme", "web"); err != nil && !isStatus(err, 409) {
		t.Fatal(err)
	}
	sc, err := c.CreateService(ctx, "acme", apiv1.ServiceRequest{Name: name, OrgRole: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	return sc.Token
}

func isStatus(err error, status int) bool {
	var e *client.Error
	return errors.As(err, &e) && e.Status == status
}

// query runs one query returning one value on the database at dbURL.
func query[T any](t *testing.T, dbURL, sql string) T {
	t.Helper()
	var v T
	c, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if err := c.QueryRow(context.Background(), sql).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

// TestThreeReplicasOnOneDatabase: three daemons started together on an empty database
// bootstrap one superuser; a service made through A works on B and C; a token revoked through
// A is denied by A on the next check and by B and C within revokeLag; two creates of one service
// name through A and B at once make one service and one 409.
func TestThreeReplicasOnOneDatabase(t *testing.T) {
	db, _ := testenv.PostgresDB(t, "")
	ds := []*testenv.Daemon{testenv.Spawn(t, "", "--store", db), testenv.Spawn(t, "", "--store", db), testenv.Spawn(t, "", "--store", db)}
	for _, d := range ds {
		d.WaitStarted(t)
	}
	var boot string
	n := 0
	for _, d := range ds {
		if d.Token != "" {
			boot, n = d.Token, n+1
		}
	}
	if n != 1 {
		t.Fatalf("%d replicas printed a bootstrap token, want 1:\n%s\n%s\n%s", n, ds[0].Stderr(), ds[1].Stderr(), ds[2].Stderr())
	}
	if su := query[int64](t, db, "SELECT count(*) FROM users WHERE (doc->>'superuser')::bool"); su != 1 {
		t.Fatalf("%d superusers, want 1", su)
	}
	if toks := query[int64](t, db, "SELECT count(*) FROM tokens"); toks != 1 {
		t.Fatalf("%d tokens after bootstrap, want 1", toks)
	}
	a, b, c := ds[0], ds[1], ds[2]
	ctx := context.Background()
	for _, d := range ds {
		if w, err := client.New(d.URL(), boot).Whoami(ctx); err != nil || !w.Superuser {
			t.Fatalf("the bootstrap token on %s: %+v %v", d.URL(), w, err)
		}
	}

	// The other replicas' start-up writes (a signing key) may still be on their way to A: its
	// lag in changes is 0 once it has them.
	var metrics string
	within(2*time.Second, func() bool {
		_, metrics = get(t, a.URL()+"/metrics")
		return strings.Contains(metrics, "rill_authd_store_feed_lag_changes 0\n")
	})
	for _, m := range []string{"rill_authd_store_feed_lag_seconds ", "rill_authd_store_feed_lag_changes 0", "rill_authd_store_stale 0",
		"rill_authd_store_reconnects_total 0", `rill_authd_store_pool_connections{state="idle"}`, `rill_authd_store_pool_connections{state="acquired"}`,
		"rill_authd_store_pool_connections_max "} {
		if !strings.Contains(metrics, m) {
			t.Errorf("metrics of a PostgreSQL replica lack %q", m)
		}
	}
	// The states gauge holds states only: a sum() over it is the pool's size.
	for _, m := range []string{`state="total"`, `state="max"`} {
		if strings.Contains(metrics, m) {
			t.Errorf("rill_authd_store_pool_connections has %s, not a state", m)
		}
	}

	ca := client.New(a.URL(), boot)
	svc := acmeService(t, ca, "ci")
	// A token made on another replica is unknown there until the feed brings it (one NOTIFY).
	for _, d := range []*testenv.Daemon{b, c} {
		if took := within(2*time.Second, func() bool { return checkStatus(t, d, svc.Token) == 200 }); took < 0 {
			t.Fatalf("the service token made through A does not work on %s: %d", d.URL(), checkStatus(t, d, svc.Token))
		} else {
			t.Logf("token made through A usable on %s after %v", d.URL(), took)
		}
	}

	if _, err := ca.RevokeServiceToken(ctx, "acme", "ci", svc.ID); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	if code := checkStatus(t, a, svc.Token); code != 401 {
		t.Fatalf("A after its own revoke: %d, want 401 at once", code)
	}
	var wg sync.WaitGroup
	for _, d := range []*testenv.Daemon{b, c} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			took := within(2*time.Second, func() bool { code, _, err := tryCheck(d, svc.Token); return err == nil && code == 401 })
			switch lag := time.Since(revoked); {
			case took < 0:
				t.Errorf("%s still accepts a token revoked through A 2s ago", d.URL())
			case lag > revokeLag:
				t.Errorf("%s denied a token revoked through A after %v, want within %v", d.URL(), lag, revokeLag)
			default:
				t.Logf("%s denies the revoked token %v after the revoke returned", d.URL(), lag)
			}
		}()
	}
	wg.Wait()

	// Concurrent creates of one name through two replicas: one wins, one is a 409.
	cb := client.New(b.URL(), boot)
	for i := range 5 {
		name := fmt.Sprintf("x%d", i)
		start := make(chan struct{})
		errs := make([]error, 2)
		for j, cl := range []*client.Client{ca, cb} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, errs[j] = cl.CreateService(ctx, "acme", apiv1.ServiceRequest{Name: name, OrgRole: "viewer"})
			}()
		}
		close(start)
		wg.Wait()
		ok, conflicts := 0, 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case isStatus(err, 409):
				conflicts++
			default:
				t.Errorf("create service %s: %v", name, err)
			}
		}
		if ok != 1 || conflicts != 1 {
			t.Errorf("create service %s through A and B at once: %d created, %d conflicts (%v), want 1 and 1", name, ok, conflicts, errs)
		}
	}
	ss, err := client.New(c.URL(), boot).ListServices(ctx, "acme")
	if err != nil || len(ss) != 6 {
		t.Errorf("services seen through C: %d %v, want 6", len(ss), err)
	}
}

// reconnectedRE finds when a replica's feed was current again after a lost connection.
var reconnectedRE = regexp.MustCompile(`time=(\S+) level=INFO msg="change feed reconnected and current" took=(\S+)`)

// terminate cuts every connection to the database whose application_name starts with app ("":
// every one but ours), and says how many it cut.
func terminate(t *testing.T, dbURL, app string) int64 {
	t.Helper()
	return query[int64](t, dbURL, fmt.Sprintf(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name LIKE '%s%%'`, app))
}

// TestKilledConnectionsUnderLoad: B's connections (pool and feed) are cut twice while B answers
// checks and tokens are revoked through A. B reconnects and replays; no token is accepted by B
// once its revoke returned and B had a moment to reconnect (a second, or, on a machine so loaded
// that opening a PostgreSQL connection takes longer, until B's log says it is current again), and
// afterwards every revoked token is denied and every other one allowed.
func TestKilledConnectionsUnderLoad(t *testing.T) {
	db, _ := testenv.PostgresDB(t, "")
	a := testenv.Start(t, "", "--store", testenv.WithParam(db, "application_name", "replica-a"))
	b := testenv.Start(t, "", "--store", testenv.WithParam(db, "application_name", "replica-b"))
	ctx := context.Background()
	ca := client.New(a.URL(), a.Token)
	first := acmeService(t, ca, "ci")
	toks := []apiv1.IssuedToken{first}
	for range 29 {
		tk, err := ca.IssueServiceToken(ctx, "acme", "ci")
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tk)
	}
	last := toks[len(toks)-1].Token
	if within(2*time.Second, func() bool { return checkStatus(t, b, last) == 200 }) < 0 {
		t.Fatal("tokens made through A do not work on B")
	}

	var revokedAt [30]atomic.Int64 // Unix nanoseconds the revoke returned; 0: not revoked
	const grace = time.Second      // reconnect (backoff from 50 ms) and replay
	var checks, accepted, unavailable atomic.Int64
	// Acceptances of a revoked token begun more than grace after its revoke: wrong unless B was
	// still reconnecting then (a loaded machine can take longer than grace to open a PostgreSQL
	// connection; until B is current again it answers from memory, as --max-staleness allows).
	type lateCheck struct {
		tok   int
		began time.Time
	}
	var lateMu sync.Mutex
	var lates []lateCheck
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := rand.IntN(len(toks))
				began := time.Now()
				code, _, err := tryCheck(b, toks[i].Token)
				if err != nil {
					t.Error(err)
					return
				}
				checks.Add(1)
				switch code {
				case 200:
					accepted.Add(1)
					if at := revokedAt[i].Load(); at != 0 && began.Sub(time.Unix(0, at)) > grace {
						lateMu.Lock()
						lates = append(lates, lateCheck{i, began})
						lateMu.Unlock()
					}
				case 503:
					unavailable.Add(1)
				}
			}
		}()
	}
	cut := int64(0)
	for i := range 20 {
		if i == 5 || i == 12 {
			cut += terminate(t, db, "replica-b")
		}
		if _, err := ca.RevokeServiceToken(ctx, "acme", "ci", toks[i].ID); err != nil {
			t.Fatalf("revoke %d: %v", i, err)
		}
		revokedAt[i].Store(time.Now().UnixNano())
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(grace)
	close(stop)
	wg.Wait()
	if cut < 2 {
		t.Fatalf("cut %d of B's connections, want its feed connection at least, twice", cut)
	}
	t.Logf("%d checks on B: %d allowed, %d 503; %d connections of B cut", checks.Load(), accepted.Load(), unavailable.Load(), cut)
	// When B was reconnecting, from its log: each "current again" line at C, whose attempt took
	// T, ends a time when B could not be current, from before C-T (the loss and the backoff) to C.
	type outage struct{ from, to time.Time }
	var outs []outage
	for _, m := range reconnectedRE.FindAllStringSubmatch(b.Stderr(), -1) {
		at, err1 := time.Parse(time.RFC3339Nano, m[1])
		took, err2 := time.ParseDuration(m[2])
		if err1 == nil && err2 == nil {
			outs = append(outs, outage{at.Add(-took - grace), at})
		}
	}
	for _, l := range lates {
		revoked := time.Unix(0, revokedAt[l.tok].Load())
		// A check begun while B was reconnecting, or within 100 ms of its being current again
		// (time to apply), answers from memory; one begun later must see the revoke.
		excused := false
		for _, o := range outs {
			if !l.began.Before(o.from) && !l.began.After(o.to.Add(100*time.Millisecond)) {
				excused = true
			}
		}
		if !excused {
			t.Errorf("B accepted token %d %v after its revoke returned, while its feed was current", l.tok, l.began.Sub(revoked))
		}
	}
	t.Logf("%d acceptances of revoked tokens past %v, each while B was reconnecting", len(lates), grace)
	for i, tk := range toks {
		want := 200
		if i < 20 {
			want = 401
		}
		if code := checkStatus(t, b, tk.Token); code != want {
			t.Errorf("token %d on B after the cuts: %d, want %d", i, code, want)
		}
	}
	if !strings.Contains(b.Stderr(), "change feed connection lost; reconnecting") {
		t.Errorf("B did not log its reconnect:\n%s", b.Stderr())
	}
}

// TestPostgresRestart: PostgreSQL stops and starts again under two replicas. While it is down
// they answer checks from memory (within --max-staleness) and refuse admin writes with a clear
// 503; once it is back they reconnect, lose nothing acknowledged, and a revoke through one is
// denied by the other within revokeLag again. Without a cluster of its own to restart (no
// PostgreSQL binaries, or not root) the test cuts every connection to the database instead,
// and says so.
func TestPostgresRestart(t *testing.T) {
	testenv.PostgresServer(t)
	cl := testenv.PostgresCluster(t)
	server := ""
	if cl == nil {
		t.Log("SIMULATED: no PostgreSQL cluster of the test's own to restart; cutting every connection to the database instead")
	} else {
		server = cl.URL
	}
	db, _ := testenv.PostgresDB(t, server)
	a := testenv.Start(t, "", "--store", db)
	b := testenv.Start(t, "", "--store", db)
	ctx := context.Background()
	ca := client.New(a.URL(), a.Token)
	svc := acmeService(t, ca, "ci")
	before, err := ca.IssueServiceToken(ctx, "acme", "ci")
	if err != nil {
		t.Fatal(err)
	}
	if within(2*time.Second, func() bool { return checkStatus(t, b, before.Token) == 200 }) < 0 {
		t.Fatal("a token made through A does not work on B")
	}

	if cl != nil {
		cl.Stop()
		// A token B has checked before is answered from memory; one whose owner B has not
		// cached needs PostgreSQL (a 503 until it is back).
		if code := checkStatus(t, b, before.Token); code != 200 {
			t.Errorf("B with PostgreSQL down (within --max-staleness): %d, want 200 from memory", code)
		}
		_, err := ca.IssueServiceToken(ctx, "acme", "ci")
		if !isStatus(err, 503) || !strings.Contains(err.Error(), "cannot be reached") {
			t.Errorf("an admin write with PostgreSQL down: %v, want a 503 saying it cannot be reached", err)
		}
		if code, body := get(t, b.URL()+"/readyz"); code != 200 {
			t.Errorf("readyz of B within --max-staleness: %d %s", code, body)
		}
		cl.Start()
	} else {
		terminate(t, db, "")
	}

	// The first write after the restart may meet a connection the restart broke: retry it.
	var revokeErr error
	if within(10*time.Second, func() bool {
		_, revokeErr = ca.RevokeServiceToken(ctx, "acme", "ci", svc.ID)
		return revokeErr == nil || isStatus(revokeErr, 404)
	}) < 0 {
		t.Fatalf("revoke after the restart: %v", revokeErr)
	}
	if code := checkStatus(t, a, svc.Token); code != 401 {
		t.Errorf("A after its revoke: %d", code)
	}
	if took := within(10*time.Second, func() bool { return checkStatus(t, b, svc.Token) == 401 }); took < 0 {
		t.Fatal("B never denied a token revoked after the restart")
	} else {
		t.Logf("B denied the first token revoked after the restart after %v (its reconnect backoff)", took)
	}
	// Caught up: a revoke is denied within revokeLag again.
	if _, err := ca.RevokeServiceToken(ctx, "acme", "ci", before.ID); err != nil {
		t.Fatal(err)
	}
	if took := within(time.Second, func() bool { return checkStatus(t, b, before.Token) == 401 }); took < 0 || took > revokeLag {
		t.Errorf("B denied a revoked token %v after the revoke (-1: not in 1s), want within %v", took, revokeLag)
	}
	if ts, err := client.New(b.URL(), a.Token).ListServiceTokens(ctx, "acme", "ci"); err != nil || len(ts) != 0 {
		t.Errorf("tokens of acme/ci through B: %+v %v, want none", ts, err)
	}
}

// TestMaxStalenessZeroFailsClosed: with --max-staleness 0, a replica whose database goes away
// denies checks with 503 and the reason, /readyz says why it is not ready, and admin writes are
// 503 with the same reason.
func TestMaxStalenessZeroFailsClosed(t *testing.T) {
	server := testenv.PostgresServer(t)
	db, name := testenv.PostgresDB(t, server)
	d := testenv.Start(t, "", "--store", db, "--max-staleness", "0")
	c := client.New(d.URL(), d.Token)
	svc := acmeService(t, c, "ci")
	if code := checkStatus(t, d, svc.Token); code != 200 {
		t.Fatalf("check: %d", code)
	}
	if code, body := get(t, d.URL()+"/readyz"); code != 200 {
		t.Fatalf("readyz: %d %s", code, body)
	}
	testenv.Exec(t, server, "DROP DATABASE "+name+" WITH (FORCE)")
	var body string
	if within(5*time.Second, func() bool {
		code, b, err := tryCheck(d, svc.Token)
		body = b
		return err == nil && code == 503
	}) < 0 {
		t.Fatalf("the replica still answers with its database gone: %s", body)
	}
	if !strings.Contains(body, "cannot confirm") || !strings.Contains(body, "--max-staleness=0s") {
		t.Errorf("503 body: %s", body)
	}
	if code, body := get(t, d.URL()+"/readyz"); code != 503 || !strings.Contains(body, "max-staleness") {
		t.Errorf("readyz: %d %s", code, body)
	}
	if _, metrics := get(t, d.URL()+"/metrics"); !strings.Contains(metrics, "rill_authd_store_stale 1") {
		t.Errorf("metrics of a stale replica: no rill_authd_store_stale 1")
	}
	_, err := c.CreateOrg(context.Background(), "other")
	if !isStatus(err, 503) || !strings.Contains(err.Error(), "cannot confirm") {
		t.Errorf("admin write: %v, want 503 saying the replica cannot confirm it is current", err)
	}
	if !d.WaitFor(`reason="auth store unavailable: this replica cannot confirm`, 5*time.Second) {
		t.Errorf("the stale denial is not logged with its reason:\n%s", d.Stderr())
	}
}

// TestStoreFlagErrors: a --store that is not a PostgreSQL URL is refused, without its password;
// restore refuses a PostgreSQL store.
func TestStoreFlagErrors(t *testing.T) {
	bin := testenv.Bin(t, "rill-authd")
	out, err := exec.Command(bin, "--store", "mysql://root:hunter2@db/auth", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "want a postgres:// or postgresql:// URL") || strings.Contains(string(out), "hunter2") {
		t.Errorf("--store mysql://: %v\n%s", err, out)
	}
	backup := writeFile(t, t.TempDir(), "backup", "x")
	out, err = exec.Command(bin, "restore", "--store", "postgres://u:hunter2@127.0.0.1:1/x", "--from", backup).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "pg_restore") || strings.Contains(string(out), "hunter2") {
		t.Errorf("restore --store postgres://: %v\n%s", err, out)
	}
}
