package daemon_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/adminapi/client"
	"github.com/rill-authd/rill-authd/extauthz"
	"github.com/rill-authd/rill-authd/internal/testenv"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/resolver"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/store/badger"
	"github.com/rill-authd/rill-authd/store/postgres"
	"github.com/rill-authd/rill-authd/token"
)

// PostgreSQL against the embedded store, each figure a ratio measured in one run. All skip
// without RILL_AUTHD_TEST_POSTGRES; RILL_BENCH_TOKENS sets the size of the start-up benchmark
// (default 1,000,000).

// benchSnapshot is an org with one service holding n tokens; sample holds the wire form of up
// to 10,000 of them.
func benchSnapshot(b *testing.B, n int) (store.Snapshot, []string) {
	now := time.Now().UTC()
	snap := store.Snapshot{
		Orgs: []store.Org{{Name: "acme", CreatedAt: now}},
		Services: []store.Service{{ID: "s-bench", Org: "acme", Name: "bench", ProjectRoles: map[string]policy.Role{"web": "viewer"},
			CreatedAt: now, UpdatedAt: now}},
	}
	var sample []string
	snap.Tokens = make([]store.Token, 0, n)
	for i := range n {
		tok, err := token.New(token.Service)
		if err != nil {
			b.Fatal(err)
		}
		snap.Tokens = append(snap.Tokens, store.NewToken(tok, "s-bench", "", "bench", now, 0))
		if i%max(1, n/10_000) == 0 {
			sample = append(sample, tok.Encode())
		}
	}
	return snap, sample
}

// benchStores loads snap into a new Badger directory and a new PostgreSQL database and returns
// where they are.
func benchStores(b *testing.B, snap store.Snapshot) (dir, dbURL string) {
	dbURL, _ = testenv.PostgresDB(b, "")
	dir = b.TempDir()
	bd, err := badger.Open(badger.Options{Dir: dir, GCInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	pg, err := postgres.Open(context.Background(), postgres.Options{URL: dbURL, MaintainInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	for _, st := range []store.Loader{bd, pg} {
		if err := st.Load(context.Background(), snap, false); err != nil {
			b.Fatal(err)
		}
	}
	if err := bd.Compact(); err != nil {
		b.Fatal(err)
	}
	bd.Close()
	pg.Close()
	return dir, dbURL
}

// BenchmarkCheckPostgresVsBadger answers checks (the decision, in process) from a replica on
// PostgreSQL and one on Badger, alternating equal batches on all cores, and reports the
// PostgreSQL replica's throughput as a ratio of Badger's: with every token in the cache, and
// with one check in ten carrying a never-seen token.
func BenchmarkCheckPostgresVsBadger(b *testing.B) {
	testenv.PostgresServer(b)
	snap, sample := benchSnapshot(b, 10_000)
	dir, dbURL := benchStores(b, snap)
	bd, err := badger.Open(badger.Options{Dir: dir, GCInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer bd.Close()
	pg, err := postgres.Open(context.Background(), postgres.Options{URL: dbURL, MaintainInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer pg.Close()
	servers := map[string]*extauthz.Server{}
	for name, st := range map[string]store.Store{"badger": bd, "postgres": pg} {
		servers[name] = extauthz.New(resolver.New(st, resolver.Options{TouchInterval: -1, CacheSize: 100_000}), extauthz.Config{})
	}
	req := func(tok string) *authv3.CheckRequest {
		return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
			Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/v1/orgs/acme/projects/web/runtime/query",
				Headers: map[string]string{"authorization": "Bearer " + tok}}}}}
	}
	known := make([]*authv3.CheckRequest, len(sample))
	for i, tok := range sample {
		known[i] = req(tok)
	}
	for _, srv := range servers { // warm the caches
		for _, r := range known {
			if c := srv.Check(context.Background(), r).GetStatus().GetCode(); c != 0 {
				b.Fatalf("check of a stored token: code %d", c)
			}
		}
	}
	for _, tc := range []struct {
		name    string
		unknown int // in ten
	}{{"hit", 0}, {"unknown=10%", 1}} {
		b.Run(tc.name, func(b *testing.B) {
			reqs := make([]*authv3.CheckRequest, 0, 20_000)
			for i := range cap(reqs) {
				if i%10 < tc.unknown {
					raw, _ := token.New(token.Service)
					reqs = append(reqs, req(raw.Encode()))
				} else {
					reqs = append(reqs, known[i%len(known)])
				}
			}
			took := map[string]time.Duration{}
			workers := max(2, runtime.GOMAXPROCS(0))
			batch := func(srv *extauthz.Server) time.Duration {
				var wg sync.WaitGroup
				start := time.Now()
				for w := range workers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := w; i < len(reqs); i += workers {
							srv.Check(context.Background(), reqs[i])
						}
					}()
				}
				wg.Wait()
				return time.Since(start)
			}
			n := 0
			order := []string{"badger", "postgres"}
			for b.Loop() {
				for _, name := range order {
					took[name] += batch(servers[name])
				}
				slices.Reverse(order) // neither always runs first, on a machine the other warmed
				n += 2 * len(reqs)
			}
			b.ReportMetric(float64(took["badger"])/float64(took["postgres"]), "pg/badger")
			b.ReportMetric(float64(took["postgres"].Nanoseconds())/float64(n/2), "pg-ns/check")
			b.ReportMetric(float64(took["badger"].Nanoseconds())/float64(n/2), "badger-ns/check")
		})
	}
}

// BenchmarkRevocationLagAcrossReplicas revokes tokens through replica A's admin API and times
// until replica B (real daemons on one database) denies each, from the moment the revoke
// returned: p50 and p99 over the loop (run it with -benchtime 1000x for 1,000 revocations).
// It is bounded by the NOTIFY reaching B, B's one read of the feed, and the check that sees it.
func BenchmarkRevocationLagAcrossReplicas(b *testing.B) {
	db, _ := testenv.PostgresDB(b, "")
	a := testenv.Start(b, "", "--store", db)
	r := testenv.Start(b, "", "--store", db)
	ctx := context.Background()
	ca := client.New(a.URL(), a.Token)
	if _, err := ca.CreateOrg(ctx, "acme"); err != nil {
		b.Fatal(err)
	}
	if _, err := ca.CreateService(ctx, "acme", apiv1.ServiceRequest{Name: "ci", OrgRole: "admin"}); err != nil {
		b.Fatal(err)
	}
	var lags []time.Duration
	for b.Loop() {
		b.StopTimer()
		tk, err := ca.IssueServiceToken(ctx, "acme", "ci")
		if err != nil {
			b.Fatal(err)
		}
		for code, _, _ := tryCheck(r, tk.Token); code != 200; code, _, _ = tryCheck(r, tk.Token) {
			time.Sleep(time.Millisecond) // until B knows it (and has it cached)
		}
		b.StartTimer()
		if _, err := ca.RevokeServiceToken(ctx, "acme", "ci", tk.ID); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for code, _, _ := tryCheck(r, tk.Token); code != 401; code, _, _ = tryCheck(r, tk.Token) {
			if time.Since(start) > 10*time.Second {
				b.Fatal("B never denied a revoked token")
			}
		}
		lags = append(lags, time.Since(start))
	}
	slices.Sort(lags)
	b.ReportMetric(float64(lags[len(lags)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lags[min(len(lags)-1, len(lags)*99/100)].Microseconds()), "p99-µs")
	b.ReportMetric(float64(lags[len(lags)-1].Microseconds()), "max-µs")
}

// BenchmarkStartupPostgresVsBadger opens a replica on RILL_BENCH_TOKENS tokens (default
// 1,000,000) in PostgreSQL and the embedded store on as many, index load included, and reports
// the PostgreSQL open time as a ratio of Badger's.
func BenchmarkStartupPostgresVsBadger(b *testing.B) {
	testenv.PostgresServer(b)
	n := testenv.BenchTokens()
	snap, sample := benchSnapshot(b, n)
	dir, dbURL := benchStores(b, snap)
	probe, err := token.Parse(sample[len(sample)-1])
	if err != nil {
		b.Fatal(err)
	}
	var pgTook, bdTook time.Duration
	for b.Loop() {
		start := time.Now()
		bd, err := badger.Open(badger.Options{Dir: dir, GCInterval: -1})
		if err != nil {
			b.Fatal(err)
		}
		bdTook += time.Since(start)
		if _, err := bd.TokenAuth(context.Background(), probe.ID); err != nil {
			b.Fatal(err)
		}
		bd.Close()
		start = time.Now()
		pg, err := postgres.Open(context.Background(), postgres.Options{URL: dbURL, MaintainInterval: -1})
		if err != nil {
			b.Fatal(err)
		}
		pgTook += time.Since(start)
		if _, err := pg.TokenAuth(context.Background(), probe.ID); err != nil {
			b.Fatal(err)
		}
		pg.Close()
	}
	b.ReportMetric(float64(pgTook)/float64(bdTook), "pg/badger")
	b.ReportMetric(float64(pgTook.Milliseconds())/float64(b.N), "pg-ms")
	b.ReportMetric(float64(bdTook.Milliseconds())/float64(b.N), "badger-ms")
	b.ReportMetric(float64(n), "tokens")
}

// BenchmarkAdminWrites creates services one after another through a daemon's admin API, on
// each engine, and reports writes per second.
func BenchmarkAdminWrites(b *testing.B) {
	db, _ := testenv.PostgresDB(b, "")
	for _, engine := range []struct{ name, arg, val string }{{"badger", "--log-level", "info"}, {"postgres", "--store", db}} {
		b.Run(engine.name, func(b *testing.B) {
			d := testenv.Start(b, "", engine.arg, engine.val)
			c := client.New(d.URL(), d.Token)
			ctx := context.Background()
			if _, err := c.CreateOrg(ctx, "acme"); err != nil {
				b.Fatal(err)
			}
			i := 0
			start := time.Now()
			for b.Loop() {
				i++
				if _, err := c.CreateService(ctx, "acme", apiv1.ServiceRequest{Name: fmt.Sprint("svc-", i), OrgRole: "viewer"}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(i)/time.Since(start).Seconds(), "writes/s")
		})
	}
}
