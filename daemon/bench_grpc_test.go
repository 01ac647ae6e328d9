package daemon_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/adminapi/client"
	"github.com/rill-authd/rill-authd/internal/testenv"
)

// Checks over real gRPC against real daemon processes, as Envoy sends them: the figures an
// operator sees from outside. All skip without RILL_AUTHD_TEST_POSTGRES.

// grpcChecker is an ext_authz client of one daemon with the requests of some tokens.
type grpcChecker struct {
	c    authv3.AuthorizationClient
	reqs []*authv3.CheckRequest
}

func newChecker(b *testing.B, d *testenv.Daemon, toks []string) *grpcChecker {
	conn, err := grpc.NewClient(d.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	g := &grpcChecker{c: authv3.NewAuthorizationClient(conn)}
	for _, tok := range toks {
		g.reqs = append(g.reqs, checkRequest(tok))
	}
	return g
}

// code is the gRPC status code of one check (0: allowed; 16: unauthenticated).
func (g *grpcChecker) code(req *authv3.CheckRequest) (int32, error) {
	r, err := g.c.Check(context.Background(), req)
	if err != nil {
		return -1, err
	}
	return r.GetStatus().GetCode(), nil
}

// run sends checks from workers concurrent clients until stop closes (or n checks, n > 0), and
// returns how many it sent, how long it took, and every latency.
func (g *grpcChecker) run(b *testing.B, workers, n int, stop <-chan struct{}) (int, time.Duration, []time.Duration) {
	return g.runAt(b, workers, n, 0, stop)
}

// runAt is run at a fixed total rate (checks per second; 0: as fast as answered).
func (g *grpcChecker) runAt(b *testing.B, workers, n, rate int, stop <-chan struct{}) (int, time.Duration, []time.Duration) {
	var sent atomic.Int64
	lats := make([][]time.Duration, workers)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			for i := w; ; i += workers {
				if rate > 0 {
					// Worker w's k-th check is due at start + (k*workers + w)/rate.
					due := start.Add(time.Duration(float64(i) / float64(rate) * float64(time.Second)))
					time.Sleep(time.Until(due))
				}
				if n > 0 && int(sent.Add(1)) > n {
					return
				}
				if stop != nil {
					select {
					case <-stop:
						return
					default:
					}
				}
				t0 := time.Now()
				if c, err := g.code(g.reqs[i%len(g.reqs)]); err != nil || c != 0 {
					b.Errorf("check: code %d %v", c, err)
					return
				}
				lats[w] = append(lats[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	all := slices.Concat(lats...)
	return len(all), time.Since(start), all
}

func pct(lat []time.Duration, p int) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	return lat[min(len(lat)-1, len(lat)*p/100)]
}

// serviceTokens makes org acme, project web and an admin service name with n tokens through c.
func serviceTokens(b *testing.B, c *client.Client, name string, n int) []string {
	ctx := context.Background()
	if _, err := c.CreateOrg(ctx, "acme"); err != nil && !isStatus(err, 409) {
		b.Fatal(err)
	}
	if _, err := c.CreateProject(ctx, "acme", "web"); err != nil && !isStatus(err, 409) {
		b.Fatal(err)
	}
	sc, err := c.CreateService(ctx, "acme", serviceRequest(name))
	if err != nil {
		b.Fatal(err)
	}
	toks := []string{sc.Token.Token}
	for len(toks) < n {
		tk, err := c.IssueServiceToken(ctx, "acme", name)
		if err != nil {
			b.Fatal(err)
		}
		toks = append(toks, tk.Token)
	}
	return toks
}

// BenchmarkCheckGRPCPostgresVsBadger: a daemon on PostgreSQL and one on Badger (real processes,
// 100 cached service tokens each) answer the same checks over real gRPC from 4 clients per core,
// in alternating equal rounds; it reports the PostgreSQL daemon's throughput as a ratio of
// Badger's, both p99 latencies, and the p99s with a second of checks at a fixed 5,000/s.
func BenchmarkCheckGRPCPostgresVsBadger(b *testing.B) {
	db, _ := testenv.PostgresDB(b, "")
	ds := map[string]*testenv.Daemon{"badger": testenv.Start(b, ""), "postgres": testenv.Start(b, "", "--store", db)}
	cs := map[string]*grpcChecker{}
	for name, d := range ds {
		cs[name] = newChecker(b, d, serviceTokens(b, client.New(d.URL(), d.Token), "ci", 100))
		cs[name].run(b, 4, 2*len(cs[name].reqs), nil) // warm the cache and the connection
	}
	workers := 4 * runtime.GOMAXPROCS(0)
	took := map[string]time.Duration{}
	count := map[string]int{}
	lats := map[string][]time.Duration{}
	order := []string{"badger", "postgres"}
	fixed := map[string][]time.Duration{} // latencies at a fixed 5,000 checks/s
	for b.Loop() {
		for _, name := range order {
			n, d, l := cs[name].run(b, workers, 20_000, nil)
			took[name] += d
			count[name] += n
			lats[name] = append(lats[name], l...)
			_, _, l = cs[name].runAt(b, workers, 5_000, 5_000, nil)
			fixed[name] = append(fixed[name], l...)
		}
		slices.Reverse(order)
	}
	b.ReportMetric(float64(pct(fixed["postgres"], 99))/float64(pct(fixed["badger"], 99)), "p99@5k-pg/badger")
	b.ReportMetric(float64(pct(fixed["postgres"], 99).Microseconds()), "pg-p99@5k-µs")
	b.ReportMetric(float64(pct(fixed["badger"], 99).Microseconds()), "badger-p99@5k-µs")
	rps := func(name string) float64 { return float64(count[name]) / took[name].Seconds() }
	b.ReportMetric(rps("postgres")/rps("badger"), "pg/badger")
	b.ReportMetric(rps("postgres"), "pg-rps")
	b.ReportMetric(rps("badger"), "badger-rps")
	b.ReportMetric(float64(pct(lats["postgres"], 99).Microseconds()), "pg-p99-µs")
	b.ReportMetric(float64(pct(lats["badger"], 99).Microseconds()), "badger-p99-µs")
}

// revoker revokes through one daemon, at 50 a second, tokens of service "churn" that it issued
// (and, when cached is set, that replica B has checked once, so B has them to drop).
type revoker struct {
	c       *client.Client
	victims []victim
}

type victim struct {
	id  string
	req *authv3.CheckRequest
}

// issue makes n tokens to revoke; when on is set, each is checked on it until allowed.
func (rv *revoker) issue(b *testing.B, n int, on *grpcChecker) {
	ctx := context.Background()
	rv.victims = rv.victims[:0]
	for range n {
		tk, err := rv.c.IssueServiceToken(ctx, "acme", "churn")
		if err != nil {
			b.Fatal(err)
		}
		v := victim{tk.ID, checkRequest(tk.Token)}
		if on != nil {
			for c, _ := on.code(v.req); c != 0; c, _ = on.code(v.req) {
				time.Sleep(time.Millisecond)
			}
		}
		rv.victims = append(rv.victims, v)
	}
}

// revoke revokes every victim, perSec a second; with on set, it times how long after each
// revoke returned on starts refusing it (polling every 200µs), and counts those checks.
func (rv *revoker) revoke(b *testing.B, perSec int, on *grpcChecker, lags *[]time.Duration, polls *atomic.Int64) {
	ctx := context.Background()
	tick := time.NewTicker(time.Second / time.Duration(perSec))
	defer tick.Stop()
	var mu sync.Mutex
	var pollers sync.WaitGroup
	defer pollers.Wait()
	for _, v := range rv.victims {
		<-tick.C
		if _, err := rv.c.RevokeServiceToken(ctx, "acme", "churn", v.id); err != nil {
			b.Error(err)
			return
		}
		if on == nil {
			continue
		}
		at := time.Now()
		pollers.Go(func() {
			for {
				c, err := on.code(v.req)
				polls.Add(1)
				if err == nil && c != 0 {
					break
				}
				if time.Since(at) > 10*time.Second {
					b.Error("B never refused a revoked token")
					return
				}
				time.Sleep(200 * time.Microsecond)
			}
			mu.Lock()
			*lags = append(*lags, time.Since(at))
			mu.Unlock()
		})
	}
}

// BenchmarkCheckUnderRevocations: replica B (a real daemon on PostgreSQL) answers checks of 100
// cached tokens over real gRPC from 4 clients per core, for a second while replica A revokes 50
// tokens/s of another service (each cached on B before), and for a second while a daemon on
// another database does the same (the same load on this shared machine, none of it B's to
// hear): alternating. It reports B's throughput with the revocations as a ratio of without, and
// the revocation lag (from A's revoke returning to B's first refusal; p50/p99/max), both with
// the checks as fast as B answers (saturated) and at a fixed 5,000 checks/s.
func BenchmarkCheckUnderRevocations(b *testing.B) {
	db, _ := testenv.PostgresDB(b, "")
	other, _ := testenv.PostgresDB(b, "")
	a := testenv.Start(b, "", "--store", db)
	r := testenv.Start(b, "", "--store", db)
	elsewhere := testenv.Start(b, "", "--store", other)
	ca, ce := client.New(a.URL(), a.Token), client.New(elsewhere.URL(), elsewhere.Token)
	ctx := context.Background()
	checker := newChecker(b, r, serviceTokens(b, ca, "ci", 100))
	for _, req := range checker.reqs {
		for c, _ := checker.code(req); c != 0; c, _ = checker.code(req) {
			time.Sleep(time.Millisecond) // until B knows it
		}
	}
	serviceTokens(b, ce, "x", 1)
	for _, c := range []*client.Client{ca, ce} {
		if _, err := c.CreateService(ctx, "acme", serviceRequest("churn")); err != nil {
			b.Fatal(err)
		}
	}
	workers := 4 * runtime.GOMAXPROCS(0)
	const perSec, phase, fixedRate = 50, time.Second, 5000
	var quiet, busy, cpuQuiet, cpuBusy time.Duration
	var nQuiet, nBusy int
	pid := r.Cmd.Process.Pid
	var lags, fixedLags, fixedLat []time.Duration
	var polls atomic.Int64
	rvB, rvE := &revoker{c: ca}, &revoker{c: ce}
	busyFirst := true
	for b.Loop() {
		b.StopTimer()
		rvB.issue(b, perSec*int(phase/time.Second), checker)
		rvE.issue(b, perSec*int(phase/time.Second), nil)
		b.StartTimer()
		for _, hears := range []bool{busyFirst, !busyFirst} {
			stop := make(chan struct{})
			var wg sync.WaitGroup
			polls.Store(0)
			if hears {
				wg.Go(func() { rvB.revoke(b, perSec, checker, &lags, &polls) })
			} else {
				wg.Go(func() { rvE.revoke(b, perSec, nil, nil, nil) })
			}
			go func() { time.Sleep(phase); close(stop) }()
			cpu0 := cpuTime(b, pid)
			n, d, _ := checker.run(b, workers, 0, stop)
			wg.Wait()
			cpu := cpuTime(b, pid) - cpu0
			if hears {
				busy, nBusy, cpuBusy = busy+d, nBusy+n+int(polls.Load()), cpuBusy+cpu
			} else {
				quiet, nQuiet, cpuQuiet = quiet+d, nQuiet+n, cpuQuiet+cpu
			}
		}
		busyFirst = !busyFirst
		// The lag again with checks at a fixed rate below saturation.
		b.StopTimer()
		rvB.issue(b, perSec/2, checker)
		b.StartTimer()
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() { rvB.revoke(b, perSec, checker, &fixedLags, &polls); close(stop) })
		_, _, lat := checker.runAt(b, workers, 0, fixedRate, stop)
		wg.Wait()
		fixedLat = append(fixedLat, lat...)
	}
	b.ReportMetric((float64(nBusy)/busy.Seconds())/(float64(nQuiet)/quiet.Seconds()), "busy/quiet")
	// B's own CPU per check (user + system): what hearing the revocations costs B, less
	// sensitive than throughput to what else runs on the machine.
	b.ReportMetric((cpuBusy.Seconds()/float64(nBusy))/(cpuQuiet.Seconds()/float64(nQuiet)), "cpu/check-busy/quiet")
	b.ReportMetric(float64(nQuiet)/quiet.Seconds(), "quiet-rps")
	b.ReportMetric(float64(pct(lags, 50).Microseconds())/1000, "lag-p50-ms")
	b.ReportMetric(float64(pct(lags, 99).Microseconds())/1000, "lag-p99-ms")
	b.ReportMetric(float64(pct(lags, 100).Microseconds())/1000, "lag-max-ms")
	b.ReportMetric(float64(pct(fixedLags, 50).Microseconds())/1000, "lag@5k-p50-ms")
	b.ReportMetric(float64(pct(fixedLags, 99).Microseconds())/1000, "lag@5k-p99-ms")
	b.ReportMetric(float64(pct(fixedLat, 99).Microseconds())/1000, "check@5k-p99-ms")
	b.ReportMetric(float64(len(lags)+len(fixedLags)), "revokes")
}

// cpuTime is the user and system CPU time process pid has used (Linux; 0 elsewhere).
func cpuTime(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command (which may hold spaces), from the closing parenthesis: state is
	// the 1st, utime the 12th, stime the 13th; in clock ticks (USER_HZ, 100 on Linux).
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("/proc/%d/stat: %q", pid, raw)
	}
	return time.Duration(ut+st) * 10 * time.Millisecond
}

func serviceRequest(name string) apiv1.ServiceRequest {
	return apiv1.ServiceRequest{Name: name, OrgRole: "admin"}
}
