package daemon_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/adminapi/client"
	"github.com/rill-authd/rill-authd/internal/testenv"
)

// One fate for many replicas (issue 19 item 1): a write drops only what it names, so an outage
// of PostgreSQL right after writes is not an outage of checks.

// threeReplicas starts three daemons on dbURL and returns them with the bootstrap token.
func threeReplicas(t *testing.T, dbURL string, args ...string) ([]*testenv.Daemon, string) {
	t.Helper()
	var ds []*testenv.Daemon
	for range 3 {
		ds = append(ds, testenv.Spawn(t, "", append([]string{"--store", dbURL}, args...)...))
	}
	boot := ""
	for _, d := range ds {
		d.WaitStarted(t)
		if d.Token != "" {
			boot = d.Token
		}
	}
	if boot == "" {
		t.Fatal("no replica printed a bootstrap token")
	}
	return ds, boot
}

// expectEverywhere polls until every daemon answers every token as want says, or fails t.
func expectEverywhere(t *testing.T, ds []*testenv.Daemon, want map[string]int, toks map[string]string) {
	t.Helper()
	for _, d := range ds {
		for name, code := range want {
			got := 0
			if within(5*time.Second, func() bool {
				c, _, err := tryCheck(d, toks[name])
				got = c
				return err == nil && c == code
			}) < 0 {
				t.Fatalf("%s on %s: %d, want %d", name, d.URL(), got, code)
			}
		}
	}
}

// settle checks toks on d until a whole round of them is answered from d's cache (a load that
// raced a write is not kept, and misses again), and returns d's cache misses then.
func settle(t *testing.T, d *testenv.Daemon, toks ...string) float64 {
	t.Helper()
	var misses float64
	if within(10*time.Second, func() bool {
		misses = metricValue(t, d, "rill_authd_cache_misses_total")
		for _, tok := range toks {
			checkStatus(t, d, tok)
		}
		return metricValue(t, d, "rill_authd_cache_misses_total") == misses
	}) < 0 {
		t.Fatalf("checks on %s never settled into cache hits", d.URL())
	}
	return misses
}

// TestRevokeThenPostgresStop: three replicas have checked a superuser's, two admin services',
// a viewer service's and a victim's tokens; then, through different replicas, a service is
// edited, a project created, a token issued (each checked once after), and last the victim's
// token revoked. PostgreSQL then stops (a cluster of the test's own). Every replica keeps
// answering every principal it had cached as before (200, 403) and the revoked token 401, for
// as long as the test asks (within --max-staleness); once PostgreSQL is back, writes work again.
// Before, the revoke emptied every cache and every check of every token was a 503.
func TestRevokeThenPostgresStop(t *testing.T) {
	testenv.PostgresServer(t)
	cl := testenv.PostgresCluster(t)
	if cl == nil {
		testenv.Unavailable(t, "PostgreSQL binaries", "this test stops PostgreSQL and needs a cluster of its own: run as root with Debian's postgresql installed (.ci/pg.sh does)")
	}
	db, _ := testenv.PostgresDB(t, cl.URL)
	ds, boot := threeReplicas(t, db)
	a, b, c := ds[0], ds[1], ds[2]
	ctx := context.Background()
	ca, cb, cc := client.New(a.URL(), boot), client.New(b.URL(), boot), client.New(c.URL(), boot)
	toks := map[string]string{"superuser": boot, "admin1": acmeService(t, ca, "admin1").Token, "edited": acmeService(t, ca, "edited").Token,
		"victim": acmeService(t, ca, "victim").Token}
	viewer, err := ca.CreateService(ctx, "acme", apiv1.ServiceRequest{Name: "viewer", OrgRole: "viewer"})
	if err != nil {
		t.Fatal(err)
	}
	toks["viewer"] = viewer.Token.Token
	victimID := ""
	if ts, err := ca.ListServiceTokens(ctx, "acme", "victim"); err != nil || len(ts) != 1 {
		t.Fatalf("victim's tokens: %v %v", ts, err)
	} else {
		victimID = ts[0].ID
	}
	want := map[string]int{"superuser": 200, "admin1": 200, "edited": 200, "victim": 200, "viewer": 403}
	expectEverywhere(t, ds, want, toks)
	for _, d := range ds {
		settle(t, d, toks["superuser"], toks["admin1"], toks["edited"], toks["victim"], toks["viewer"])
	}

	// Writes of every sort through every replica, each checked after it (so it is cached as it
	// now is); the revoke last, and nothing else checked after it.
	attrs := map[string]any{"team": "data"}
	if _, err := cb.EditService(ctx, "acme", "edited", apiv1.ServiceEdit{Attributes: &attrs}); err != nil {
		t.Fatal(err)
	}
	if _, err := cc.CreateProject(ctx, "acme", "other"); err != nil {
		t.Fatal(err)
	}
	fresh, err := cc.IssueServiceToken(ctx, "acme", "admin1")
	if err != nil {
		t.Fatal(err)
	}
	toks["fresh"] = fresh.Token
	expectEverywhere(t, ds, map[string]int{"edited": 200, "fresh": 200}, toks)
	for _, d := range ds {
		settle(t, d, toks["edited"], toks["fresh"])
	}
	want["fresh"] = 200
	if _, err := cb.RevokeServiceToken(ctx, "acme", "victim", victimID); err != nil {
		t.Fatal(err)
	}
	expectEverywhere(t, ds, map[string]int{"victim": 401}, toks)
	want["victim"] = 401

	cl.Stop()
	stopped := time.Now()
	// Every replica, every principal, several rounds: all answered from memory, as before.
	rounds := 0
	for time.Since(stopped) < 3*time.Second || rounds < 3 {
		rounds++
		var wg sync.WaitGroup
		for _, d := range ds {
			wg.Go(func() {
				for name, code := range want {
					got, body, err := tryCheck(d, toks[name])
					if err != nil || got != code {
						t.Errorf("round %d, %v after PostgreSQL stopped: %s on %s: %d %v %s, want %d", rounds, time.Since(stopped).Round(time.Millisecond),
							name, d.URL(), got, err, strings.TrimSpace(body), code)
					}
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%d rounds of checks on three replicas in the %v after PostgreSQL stopped: all answered as before", rounds, time.Since(stopped).Round(time.Millisecond))

	cl.Start()
	var werr error
	if within(15*time.Second, func() bool { _, werr = ca.IssueServiceToken(ctx, "acme", "admin1"); return werr == nil }) < 0 {
		t.Fatalf("a write after PostgreSQL came back: %v", werr)
	}
	expectEverywhere(t, ds, want, toks)
}

// metricValue reads one unlabelled metric from d's /metrics.
func metricValue(t *testing.T, d *testenv.Daemon, name string) float64 {
	t.Helper()
	_, body := get(t, d.URL()+"/metrics")
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("%s: %q", name, line)
			}
			return f
		}
	}
	t.Fatalf("%s: not in /metrics", name)
	return 0
}

// TestRevokeChurnLeavesOthersCached: a guest issues and revokes their own tokens through
// replica A, one after another, while replica B answers checks of three other principals. B's
// cache misses do not grow (before, every revoke emptied B's cache and each was a miss again),
// and B refuses every token the guest revoked.
func TestRevokeChurnLeavesOthersCached(t *testing.T) {
	db, _ := testenv.PostgresDB(t, "")
	// No issue rate limit: the churn is the point here (TestTokenLimits tests the limit).
	a := testenv.Start(t, "", "--store", db, "--token-issue-rate", "0")
	b := testenv.Start(t, "", "--store", db, "--token-issue-rate", "0")
	ctx := context.Background()
	ca := client.New(a.URL(), a.Token)
	others := []string{a.Token, acmeService(t, ca, "ci").Token}
	viewer, err := ca.CreateService(ctx, "acme", apiv1.ServiceRequest{Name: "viewer", OrgRole: "viewer"})
	if err != nil {
		t.Fatal(err)
	}
	others = append(others, viewer.Token.Token)
	if _, err := ca.CreateUser(ctx, apiv1.UserRequest{Email: "guest@acme.test", Org: "acme", OrgRole: "guest"}); err != nil {
		t.Fatal(err)
	}
	g, err := ca.IssueToken(ctx, apiv1.TokenRequest{DisplayName: "mine", UserEmail: "guest@acme.test"})
	if err != nil {
		t.Fatal(err)
	}
	guest := client.New(a.URL(), g.Token)
	wantOf := map[string]int{}
	for i, tok := range others {
		code := 0
		if within(5*time.Second, func() bool { code = checkStatus(t, b, tok); return code == 200 || code == 403 }) < 0 {
			t.Fatalf("principal %d on B: %d", i, code)
		}
		wantOf[tok] = code
	}
	missesBefore := settle(t, b, others...)

	stop := make(chan struct{})
	var checks int
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, tok := range others {
				if code, _, err := tryCheck(b, tok); err != nil || code != wantOf[tok] {
					t.Errorf("a principal the guest never touched: %d %v on B, want %d", code, err, wantOf[tok])
					return
				}
				checks++
			}
		}
	})
	var revoked []string
	for i := range 100 {
		tk, err := guest.IssueToken(ctx, apiv1.TokenRequest{DisplayName: fmt.Sprint("churn-", i)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := guest.RevokeToken(ctx, "", tk.ID); err != nil {
			t.Fatal(err)
		}
		revoked = append(revoked, tk.Token)
	}
	close(stop)
	wg.Wait()
	misses := metricValue(t, b, "rill_authd_cache_misses_total") - missesBefore
	t.Logf("%d checks of other principals on B during 100 issue+revoke pairs on A: %v cache misses", checks, misses)
	if misses != 0 {
		t.Errorf("B's cache misses grew by %v while a guest churned tokens on A, want 0: untouched principals stay cached", misses)
	}
	if checks == 0 {
		t.Error("no check ran during the churn")
	}
	for i, tok := range revoked {
		if within(2*time.Second, func() bool { return checkStatus(t, b, tok) == 401 }) < 0 {
			t.Errorf("revoked guest token %d is not refused on B", i)
		}
	}
}
