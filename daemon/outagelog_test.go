package daemon_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/adminapi/client"
	"github.com/rill-authd/rill-authd/internal/testenv"
)

// outageLines sorts a daemon's JSON log lines since offset into the two outage lines and their
// summaries: how many of each line were logged, and the sum of the summaries' counts.
type outageLines struct {
	admin, adminSummaries, adminSuppressed int
	feed, feedSummaries, feedSuppressed    int
}

func countOutageLines(t *testing.T, stderr string) outageLines {
	t.Helper()
	var o outageLines
	for _, l := range strings.Split(stderr, "\n") {
		if !strings.HasPrefix(l, "{") {
			continue
		}
		var m struct {
			Msg        string
			Suppressed int
		}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		switch m.Msg {
		case "admin request failed: the store is unavailable":
			o.admin++
		case "admin requests failed, not logged: the store is unavailable":
			o.adminSummaries++
			o.adminSuppressed += m.Suppressed
		case "change feed connection lost; reconnecting":
			o.feed++
		case "change feed reconnects not logged":
			o.feedSummaries++
			o.feedSuppressed += m.Suppressed
		}
	}
	return o
}

// TestOutageLogIsSampled stops PostgreSQL (a cluster of the test's own) under a daemon and
// sends it admin requests as fast as it answers them for 4 s: every one fails with 503, and the
// log holds a few lines of them, bounded by the 10 s windows, not by the requests (once 650
// lines in 36 s), with one summary per window counting the rest. The change feed's "connection
// lost" line, once three a second, is sampled the same way. Every failure and every reconnect is
// accounted for: logged, or counted in a summary (the reconnects against the daemon's metric).
func TestOutageLogIsSampled(t *testing.T) {
	testenv.PostgresServer(t)
	cl := testenv.PostgresCluster(t)
	if cl == nil {
		testenv.Unavailable(t, "PostgreSQL binaries", "this test stops PostgreSQL and needs a cluster of its own: run as root with Debian's postgresql installed (.ci/pg.sh does)")
	}
	db, _ := testenv.PostgresDB(t, cl.URL)
	d := testenv.Start(t, "", "--store", db, "--log-format", "json", "--max-staleness", "5m")
	ctx := context.Background()
	c := client.New(d.URL(), d.Token)
	if _, err := c.SigningKeys(ctx); err != nil { // the caller is known, and cached, before the outage
		t.Fatal(err)
	}
	reconnects := metricValue(t, d, "rill_authd_store_reconnects_total")
	before := len(d.Stderr())

	cl.Stop()
	stopped := time.Now()
	failed := 0
	for time.Since(stopped) < 4*time.Second {
		req, _ := http.NewRequest("GET", d.URL()+"/v1/admin/signing-keys", nil) // read afresh from the store
		req.Header.Set("Authorization", "Bearer "+d.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("an admin request with PostgreSQL stopped: %d, want 503", resp.StatusCode)
		}
		failed++
	}
	flood := time.Since(stopped)
	cl.Start()
	if !poll(30*time.Second, func() bool { return strings.Contains(d.Stderr()[before:], "change feed reconnected and current") }) {
		t.Fatalf("the feed did not come back:\n%s", d.Stderr()[before:])
	}
	reconnects = metricValue(t, d, "rill_authd_store_reconnects_total") - reconnects
	// The last windows are reported by their timers, within 10 s and a little.
	var o outageLines
	if !poll(15*time.Second, func() bool {
		o = countOutageLines(t, d.Stderr()[before:])
		return o.admin+o.adminSuppressed == failed && float64(o.feed+o.feedSuppressed) == reconnects
	}) {
		t.Fatalf("%d admin requests failed, %v feed reconnects; the log accounts for %+v:\n%s", failed, reconnects, o, d.Stderr()[before:])
	}
	// The outage spans at most 3 of the 10 s windows: one line each, and one summary each.
	windows := int((time.Since(stopped))/(10*time.Second)) + 2
	if o.admin > windows || o.adminSummaries > windows || o.feed > windows || o.feedSummaries > windows {
		t.Errorf("%d admin requests failed and the feed reconnected %v times in %v; lines logged: %+v, want at most %d of each",
			failed, reconnects, flood.Round(time.Millisecond), o, windows)
	}
	if failed < 50 || reconnects < 5 {
		t.Errorf("only %d failed requests and %v reconnects: no flood to sample", failed, reconnects)
	}
	t.Logf("%d admin requests failed and the feed reconnected %v times in %v: %+v", failed, reconnects, flood.Round(time.Millisecond), o)
}

// poll tries cond every 100 ms until it holds (true) or d has passed (false).
func poll(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}
