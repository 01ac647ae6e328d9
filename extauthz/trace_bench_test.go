package extauthz_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/rill-authd/rill-authd/extauthz"
	"github.com/rill-authd/rill-authd/internal/testenv"
	"github.com/rill-authd/rill-authd/resolver"
	"github.com/rill-authd/rill-authd/tracing"
)

// tracedProvider is tracing on at a 1% sampler (parentbased_traceidratio 0.01), exporting in
// batches to a real OTLP receiver in the test.
func tracedProvider(b *testing.B) (*tracing.Provider, *testenv.OTLPReceiver) {
	rcv := testenv.StartOTLPReceiver(b)
	rcv.Env(b)
	b.Setenv("OTEL_BSP_SCHEDULE_DELAY", "1000")
	b.Setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
	b.Setenv("OTEL_TRACES_SAMPLER_ARG", "0.01")
	p, err := tracing.FromEnv(context.Background(), "bench", nil)
	if err != nil || p == nil {
		b.Fatalf("tracing.FromEnv: %v", err)
	}
	b.Cleanup(func() { p.Shutdown(context.Background()) })
	return p, rcv
}

// envoyTraceparents are the requests of an Envoy that samples 1% of requests itself
// (random_sampling: 1): each carries a traceparent of its own trace, one in a hundred with the
// sampled flag. With the parent-based sampler that flag, not our ratio, decides.
func envoyTraceparents(f *fixture, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		flags := "00"
		if i%100 == 0 {
			flags = "01"
		}
		tp := fmt.Sprintf("00-%032x-%016x-%s", uint64(i)+1<<40, uint64(i)+1, flags)
		req := envoyRequest("GET", "/v1/orgs/acme/projects/web/runtime/query", map[string]string{"authorization": "Bearer " + f.tokens["alice"], "traceparent": tp}, nil)
		out[i], _ = proto.Marshal(req)
	}
	return out
}

// BenchmarkCheckTracing sends the same checks over loopback gRPC to a server with tracing off
// and to one with tracing on at a 1% sampler, in rotated rounds of one run, and reports the
// ratio on/off of throughput and of CPU per check (target >= 0.95). Two shapes of "on": Envoy sampling 1% itself
// (a traceparent on every request, 1% flagged sampled) and requests with no traceparent (our
// ratio decides, 1% of root spans).
func BenchmarkCheckTracing(b *testing.B) {
	f := newFixture(b, resolver.Options{})
	p, rcv := tracedProvider(b)
	off := grpcConn(b, f.srv.Register, extauthz.GRPCServerOptions()...)
	on := grpcConn(b, extauthz.New(f.res, extauthz.Config{Tracer: p.ServerTracer()}).Register, extauthz.GRPCServerOptions()...)
	withParent := envoyTraceparents(f, 1000)
	bare, _ := proto.Marshal(envoyRequest("GET", "/v1/orgs/acme/projects/web/runtime/query", map[string]string{"authorization": "Bearer " + f.tokens["alice"]}, nil))
	workers := 4 * runtime.GOMAXPROCS(0)
	round := func(c *grpc.ClientConn, wires [][]byte, n int) (wall, cpu time.Duration) {
		cpu0 := processCPU()
		var next atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range workers {
			wg.Go(func() {
				var r reply
				for {
					i := int(next.Add(1) - 1)
					if i >= n {
						return
					}
					if err := c.Invoke(context.Background(), authv3.Authorization_Check_FullMethodName, preEncoded(wires[i%len(wires)]), &r, grpc.ForceCodecV2(loadCodec{})); err != nil || r.n == 0 {
						panic(fmt.Sprintf("check: %v (reply %d bytes)", err, r.n))
					}
				}
			})
		}
		wg.Wait()
		return time.Since(start), processCPU() - cpu0
	}
	for _, c := range []*grpc.ClientConn{off, on} { // warm the cache and the connections
		round(c, withParent, 200)
	}
	// Many short rounds, the order rotated every round, each giving a ratio of neighbours in
	// time; the median of those ratios is what is reported: on a shared machine the load of
	// other processes moves from second to second, and totals would carry it into the ratio.
	const rounds = 24
	type sample struct{ wall, cpu [3]time.Duration }
	var samples []sample
	wires := [3][][]byte{withParent, withParent, {bare}}
	conns := [3]*grpc.ClientConn{off, on, on}
	b.ResetTimer()
	for i := range rounds {
		n := b.N / rounds
		if i == rounds-1 {
			n = b.N - (rounds-1)*(b.N/rounds)
		}
		if n == 0 {
			continue
		}
		var sm sample
		for j := range 3 {
			k := (i + j) % 3
			sm.wall[k], sm.cpu[k] = round(conns[k], wires[k], n)
		}
		samples = append(samples, sm)
	}
	b.StopTimer()
	if err := p.ForceFlush(context.Background()); err != nil {
		b.Fatal(err)
	}
	if len(samples) == 0 { // b.N below the number of rounds: the first, calibrating run
		return
	}
	median := func(f func(sample) float64) float64 {
		var xs []float64
		for _, sm := range samples {
			xs = append(xs, f(sm))
		}
		slices.Sort(xs)
		return xs[len(xs)/2]
	}
	var total [3]time.Duration
	for _, sm := range samples {
		for k := range 3 {
			total[k] += sm.wall[k]
		}
	}
	offRPS := float64(b.N) / total[0].Seconds()
	envoy := median(func(sm sample) float64 { return sm.wall[0].Seconds() / sm.wall[1].Seconds() })
	root := median(func(sm sample) float64 { return sm.wall[0].Seconds() / sm.wall[2].Seconds() })
	cpuEnvoy := median(func(sm sample) float64 { return sm.cpu[0].Seconds() / sm.cpu[1].Seconds() })
	cpuRoot := median(func(sm sample) float64 { return sm.cpu[0].Seconds() / sm.cpu[2].Seconds() })
	b.ReportMetric(offRPS, "off-rps")
	b.ReportMetric(envoy, "on-envoy1%/off")
	b.ReportMetric(root, "on-root1%/off")
	// CPU per check, of the whole process (servers, clients, exporter and receiver): on a
	// shared machine, where wall time also counts other processes' turns.
	b.ReportMetric(cpuEnvoy, "cpu-off/on-envoy1%")
	b.ReportMetric(cpuRoot, "cpu-off/on-root1%")
	spans := len(rcv.Spans())
	b.ReportMetric(float64(spans), "spans")
	if b.N >= 10_000 {
		fmt.Printf("tracing at 1%%, %d clients, median of %d rounds: off %.0f req/s; on/off with Envoy sampling 1%%: %.3f (CPU %.3f); with no traceparent: %.3f (CPU %.3f); %d spans exported of %d traced checks (target >= 0.95)\n",
			workers, len(samples), offRPS, envoy, cpuEnvoy, root, cpuRoot, spans, 2*b.N)
	}
}

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCheckTracingInProcess is the decision alone, tracing off (0 allocations) and on at
// 1%, with Envoy's traceparents (1% sampled) and without any (our ratio decides).
func BenchmarkCheckTracingInProcess(b *testing.B) {
	f := newFixture(b, resolver.Options{})
	p, _ := tracedProvider(b)
	var reqs []*authv3.CheckRequest
	for _, w := range envoyTraceparents(f, 1000) {
		r := new(authv3.CheckRequest)
		if err := proto.Unmarshal(w, r); err != nil {
			b.Fatal(err)
		}
		reqs = append(reqs, r)
	}
	bare := []*authv3.CheckRequest{envoyRequest("GET", "/v1/orgs/acme/projects/web/runtime/query", map[string]string{"authorization": "Bearer " + f.tokens["alice"]}, nil)}
	on := extauthz.New(f.res, extauthz.Config{Tracer: p.ServerTracer()})
	for _, c := range []struct {
		name string
		srv  *extauthz.Server
		reqs []*authv3.CheckRequest
	}{{"off", f.srv, reqs}, {"on-envoy1%", on, reqs}, {"on-root1%", on, bare}} {
		b.Run(c.name, func(b *testing.B) {
			reqs := c.reqs
			ctx := context.Background()
			c.srv.Check(ctx, reqs[0])
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				c.srv.Check(ctx, reqs[i%len(reqs)])
				i++
			}
		})
	}
}
