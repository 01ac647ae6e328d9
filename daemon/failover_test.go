package daemon_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rill-authd/rill-authd/adminapi/client"
	"github.com/rill-authd/rill-authd/internal/testenv"
)

// appliedSeq is the change sequence replica d has applied, from its metrics.
func appliedSeq(t *testing.T, d *testenv.Daemon) int64 {
	t.Helper()
	_, m := get(t, d.URL()+"/metrics")
	for _, line := range strings.Split(m, "\n") {
		if v, ok := strings.CutPrefix(line, "rill_authd_store_feed_applied_sequence "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %q: %v", line, err)
			}
			return int64(f)
		}
	}
	t.Fatalf("no rill_authd_store_feed_applied_sequence in the metrics of %s", d.URL())
	return 0
}

// TestFailoverToPromotedStandby: three replicas on a multi-host URL
// (postgres://primary,standby/db?target_session_attrs=read-write) of a real primary and a real
// streaming standby that it replicates to synchronously. Under writes through every replica and
// checks on every replica, the primary is stopped hard (pg_ctl stop -m immediate) and the
// standby promoted. Checks of cached principals are answered from memory throughout (no 503);
// writes resume through every replica on the promoted standby; no acknowledged write is lost;
// the change sequence goes on with no gap, every replica applies it to the end, and a token
// issued or revoked after the failover is seen by all three.
func TestFailoverToPromotedStandby(t *testing.T) {
	began := time.Now()
	primary, standby := testenv.StartPrimaryStandby(t)
	t.Logf("primary and synchronous standby up in %v", time.Since(began).Round(time.Millisecond))
	// Replicas 0 and 1 name the primary first and ask for a read-write server; replica 2 names
	// the standby first and leaves target_session_attrs to the engine's default (read-write):
	// it must skip the standby too.
	urls := []string{
		testenv.MultiHostURL("postgres", "target_session_attrs=read-write&connect_timeout=2", primary, standby),
		testenv.MultiHostURL("postgres", "target_session_attrs=read-write&connect_timeout=2", primary, standby),
		testenv.MultiHostURL("postgres", "connect_timeout=2", standby, primary),
	}
	var ds []*testenv.Daemon
	for i, url := range urls {
		ds = append(ds, testenv.Spawn(t, "", "--store", testenv.WithParam(url, "application_name", fmt.Sprintf("replica-%d", i)),
			"--public-url", "http://authd.test"))
	}
	boot := ""
	for _, d := range ds {
		d.WaitStarted(t)
		if d.Token != "" {
			boot = d.Token
		}
	}
	if boot == "" {
		t.Fatal("no replica printed the bootstrap token")
	}
	t.Logf("three replicas up %v after the start", time.Since(began).Round(time.Millisecond))
	ctx := context.Background()
	httpc := &http.Client{Timeout: 15 * time.Second}
	clients := make([]*client.Client, len(ds))
	for i, d := range ds {
		clients[i] = client.New(d.URL(), boot, client.WithHTTPClient(httpc))
	}
	svc := acmeService(t, clients[0], "ci")
	cached := []string{svc.Token}
	for range 2 {
		tk, err := clients[0].IssueServiceToken(ctx, "acme", "ci")
		if err != nil {
			t.Fatal(err)
		}
		cached = append(cached, tk.Token)
	}
	for _, d := range ds {
		for _, tok := range cached {
			if within(5*time.Second, func() bool { return checkStatus(t, d, tok) == 200 }) < 0 {
				t.Fatalf("a token made through replica 0 is not allowed on %s", d.URL())
			}
		}
	}

	// Load: checks of the cached principals and org creates, through every replica.
	var (
		stop                     = make(chan struct{})
		wg                       sync.WaitGroup
		checks, allowed          atomic.Int64
		writesFailed             atomic.Int64
		promoted                 atomic.Int64 // Unix nanoseconds when the promotion finished; 0 before
		mu                       sync.Mutex
		acked                    []string // orgs whose create was acknowledged
		resumed                  = make([]time.Time, len(ds))
		badChecks                []string
		firstFailure, lastFailed atomic.Int64
	)
	for i, d := range ds {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				code, body, err := tryCheck(d, cached[n%len(cached)])
				checks.Add(1)
				if err == nil && code == 200 {
					allowed.Add(1)
				} else {
					mu.Lock()
					badChecks = append(badChecks, fmt.Sprintf("replica %d at %s: %d %s %v", i, time.Now().Format("15:04:05.000"), code, body, err))
					mu.Unlock()
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("w%d-%d", i, n)
				began := time.Now()
				if _, err := clients[i].CreateOrg(ctx, name); err != nil {
					writesFailed.Add(1)
					firstFailure.CompareAndSwap(0, began.UnixNano())
					lastFailed.Store(time.Now().UnixNano())
					if !isStatus(err, 503) {
						t.Errorf("create org %s through replica %d: %v, want success or 503", name, i, err)
					}
					time.Sleep(50 * time.Millisecond)
					continue
				}
				mu.Lock()
				acked = append(acked, name)
				if p := promoted.Load(); p != 0 && began.UnixNano() > p && resumed[i].IsZero() {
					resumed[i] = time.Now()
				}
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopLoad()

	time.Sleep(500 * time.Millisecond) // writes and checks on the primary
	seqBefore := appliedSeq(t, ds[0])
	failedAt := time.Now()
	if err := primary.Ctl("-m", "immediate", "stop"); err != nil {
		t.Fatal(err)
	}
	if err := standby.Ctl("promote"); err != nil {
		t.Fatal(err)
	}
	promoted.Store(time.Now().UnixNano())
	t.Logf("primary stopped and standby promoted in %v", time.Since(failedAt).Round(time.Millisecond))

	// Writes resume through every replica.
	if within(30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range resumed {
			if r.IsZero() {
				return false
			}
		}
		return true
	}) < 0 {
		mu.Lock()
		t.Fatalf("writes did not resume through every replica within 30s of the promotion (resumed at %v)\n%s\n%s\n%s", resumed,
			ds[0].Stderr(), ds[1].Stderr(), ds[2].Stderr())
	}
	time.Sleep(300 * time.Millisecond)
	stopLoad()
	for i, r := range resumed {
		t.Logf("replica %d: writes resumed %v after the primary was stopped", i, r.Sub(failedAt).Round(time.Millisecond))
	}
	if f := firstFailure.Load(); f != 0 {
		t.Logf("%d writes failed with 503, from %v to %v after the stop", writesFailed.Load(),
			time.Unix(0, f).Sub(failedAt).Round(time.Millisecond), time.Unix(0, lastFailed.Load()).Sub(failedAt).Round(time.Millisecond))
	}
	t.Logf("%d checks, %d allowed; %d org creates acknowledged", checks.Load(), allowed.Load(), len(acked))

	// Checks of cached principals were answered from memory throughout.
	if len(badChecks) > 0 {
		t.Errorf("%d checks of cached principals were not 200 during the failover, first: %s", len(badChecks), badChecks[0])
	}

	// No acknowledged write is lost, and the sequence has no gap.
	db := standby.URL("")
	c, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var found int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM orgs WHERE name = ANY($1)", acked).Scan(&found); err != nil {
		t.Fatal(err)
	}
	if found != len(acked) {
		t.Errorf("%d of %d acknowledged org creates are on the promoted standby", found, len(acked))
	}
	var n, lo, hi, last int64
	if err := c.QueryRow(ctx, "SELECT count(*), coalesce(min(seq), 0), coalesce(max(seq), 0), (SELECT last_seq FROM feed_state) FROM changes").Scan(&n, &lo, &hi, &last); err != nil {
		t.Fatal(err)
	}
	if lo != 1 || hi != last || n != hi-lo+1 || last <= seqBefore {
		t.Errorf("changes on the promoted standby: %d rows, seq %d..%d, last_seq %d (before the stop: %d), want 1..last_seq with no gap, past %d",
			n, lo, hi, last, seqBefore, seqBefore)
	}
	for i, d := range ds {
		if within(10*time.Second, func() bool { return appliedSeq(t, d) == last }) < 0 {
			t.Errorf("replica %d applied the feed up to %d, want %d", i, appliedSeq(t, d), last)
		}
	}

	// The feed works on the new primary: a token issued through one replica is allowed by all,
	// and revoked through another it is denied by all.
	tk, err := clients[1].IssueServiceToken(ctx, "acme", "ci")
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range ds {
		if within(5*time.Second, func() bool { return checkStatus(t, d, tk.Token) == 200 }) < 0 {
			t.Errorf("replica %d does not allow a token issued after the failover", i)
		}
	}
	if _, err := clients[2].RevokeServiceToken(ctx, "acme", "ci", tk.ID); err != nil {
		t.Fatal(err)
	}
	for i, d := range ds {
		if within(5*time.Second, func() bool { return checkStatus(t, d, tk.Token) == 401 }) < 0 {
			t.Errorf("replica %d allows a token revoked after the failover", i)
		}
	}
	for i, d := range ds {
		if code, body := get(t, d.URL()+"/readyz"); code != 200 {
			t.Errorf("readyz of replica %d after the failover: %d %s", i, code, body)
		}
	}
}
