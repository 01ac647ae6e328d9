package postgres

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/internal/testenv"
	"github.com/rill-authd/rill-authd/store"
)

// TestFeedReconnectsWhenThePoolDoes: while a replica's feed waits to reconnect, a connection
// its pool makes (PostgreSQL answers again) ends the wait at once. The feed's own backoff is
// made an hour here, so only that can reconnect it within the test.
func TestFeedReconnectsWhenThePoolDoes(t *testing.T) {
	server := testenv.PostgresServer(t)
	u, name := testenv.PostgresDB(t, server)
	a := openDB(t, u)
	b := openDB(t, u, func(o *Options) { o.reconnectMax = time.Hour })
	testenv.Exec(t, server, "ALTER DATABASE "+name+" ALLOW_CONNECTIONS false")
	t.Cleanup(func() { testenv.Exec(t, server, "ALTER DATABASE "+name+" ALLOW_CONNECTIONS true") })
	testenv.Exec(t, server, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
	// Failing attempts after waits of 50 ms, 100 ms, ... doubling (each between half of it and
	// all of it): after 7 the next waits 3.2 s or more.
	eventually(t, 20*time.Second, "B's feed fails to reconnect 7 times", func() bool { return b.Reconnects() >= 7 })
	if b.Connected() {
		t.Fatal("B's feed is connected to a database that refuses connections")
	}
	testenv.Exec(t, server, "ALTER DATABASE "+name+" ALLOW_CONNECTIONS true")
	must(t, b.pool.Ping(ctx)) // a request through B: its pool connects
	took := eventually(t, 3*time.Second, "B's feed reconnects after its pool did", b.Connected)
	t.Logf("B's feed reconnected %v after its pool connected (its own wait was at least 3.2s)", took)
	// And it is current: a write through A reaches B.
	must(t, a.CreateOrg(ctx, store.Org{Name: "after"}))
	last, err := a.LastSeq(ctx)
	must(t, err)
	eventually(t, 5*time.Second, "B applies A's write", func() bool { applied, _ := b.Current(); return applied == last })
}

// BenchmarkTimeToCurrentAfterRestart restarts a PostgreSQL cluster of its own 10 times
// (RILL_BENCH_RESTARTS) under three replicas with the feed's reconnect cap (500 ms) and, as the
// baseline in the same run, three with the cap of before (5 s), and reports how long after
// pg_ctl start returned each replica's feed was connected again and had applied a write made
// through a seventh replica as soon as PostgreSQL took it: p50, p99 and max of each, and their
// ratio. Nothing else touches the measured replicas meanwhile (no request makes a pool
// connection that would wake their feed early).
func BenchmarkTimeToCurrentAfterRestart(b *testing.B) {
	testenv.PostgresServer(b)
	cl := testenv.PostgresCluster(b)
	if cl == nil {
		b.Skip("SKIPPED: no PostgreSQL cluster of the benchmark's own to restart")
	}
	restarts := 10
	if n, err := strconv.Atoi(os.Getenv("RILL_BENCH_RESTARTS")); err == nil && n > 0 {
		restarts = n
	}
	u, _ := testenv.PostgresDB(b, cl.URL)
	withApp := func(app string) string {
		p, _ := url.Parse(u)
		q := p.Query()
		q.Set("application_name", app)
		p.RawQuery = q.Encode()
		return p.String()
	}
	type group struct {
		name  string
		reps  []*DB
		times []time.Duration
	}
	groups := []*group{{name: "cap 500ms"}, {name: "cap 5s (before)"}}
	for i, g := range groups {
		for j := range 3 {
			g.reps = append(g.reps, openDB(b, withApp(fmt.Sprint("bench-", i, "-", j)), func(o *Options) {
				if i == 1 {
					o.reconnectMax = 5 * time.Second
				}
				if os.Getenv("RILL_BENCH_DEBUG") != "" && i == 0 {
					o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil)).With("replica", j)
				}

			}))
		}
	}
	writer := openDB(b, withApp("bench-writer"))
	must(b, writer.CreateOrg(ctx, store.Org{Name: "acme"}))
	b.ResetTimer()
	for range b.N {
		for k := range restarts {
			cl.Ctl("-m", "fast", "stop")
			for _, g := range groups {
				for _, r := range g.reps {
					eventually(b, 10*time.Second, "a replica notices PostgreSQL is gone", func() bool { return !r.Connected() })
				}
			}
			// Down long enough for the backoff to reach its cap, for a random while, so the
			// restart falls anywhere in a replica's wait.
			time.Sleep(3*time.Second + rand.N(2*time.Second))
			cl.Ctl("start")
			back := time.Now()
			if os.Getenv("RILL_BENCH_DEBUG") != "" {
				fmt.Fprintln(os.Stderr, "BACK", back.Format("15:04:05.000"))
			}

			// A write right after the restart (an org made through another replica): a replica
			// is current once it is connected and has applied it.
			var wrote atomic.Uint64
			go func() {
				for time.Since(back) < 30*time.Second {
					if err := writer.CreateOrg(ctx, store.Org{Name: fmt.Sprint("after-", k)}); err == nil {
						applied, _ := writer.Current()
						wrote.Store(applied)
						return
					}
					time.Sleep(5 * time.Millisecond)
				}
			}()
			var pending []func() bool
			for _, g := range groups {
				for _, r := range g.reps {
					pending = append(pending, func() bool {
						applied, _ := r.Current()
						if w := wrote.Load(); !r.Connected() || w == 0 || applied < w {
							return false
						}
						g.times = append(g.times, time.Since(back))
						return true
					})
				}
			}
			for len(pending) > 0 {
				if time.Since(back) > 30*time.Second {
					b.Fatal("replicas not current 30s after PostgreSQL returned")
				}
				left := pending[:0]
				for _, p := range pending {
					if !p() {
						left = append(left, p)
					}
				}
				pending = left
				time.Sleep(time.Millisecond)
			}
		}
	}
	b.StopTimer()
	var lines []string
	p99 := map[string]time.Duration{}
	for _, g := range groups {
		p99[g.name] = pct(g.times, .99)
		lines = append(lines, fmt.Sprintf("%s: p50 %v p99 %v max %v over %d replica restarts", g.name,
			pct(g.times, .5).Round(time.Millisecond), p99[g.name].Round(time.Millisecond), pct(g.times, 1).Round(time.Millisecond), len(g.times)))
	}
	b.Logf("time for a replica to be current after PostgreSQL returns:\n%s\nratio of p99: %.2fx",
		strings.Join(lines, "\n"), float64(p99["cap 500ms"])/float64(p99["cap 5s (before)"]))
	b.ReportMetric(float64(p99["cap 500ms"].Milliseconds()), "p99-ms")
	b.ReportMetric(float64(p99["cap 5s (before)"].Milliseconds()), "p99-before-ms")
}
