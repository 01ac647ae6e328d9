package extauthz_test

import (
	"context"
	"fmt"
	"runtime"
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
// and to one with tracing on at a 1% sampler, in alternating rounds of one run, and reports
// the throughput ratio on/off (target >= 0.95). Two shapes of "on": Envoy sampling 1% itself
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
	var tOff, tOnEnvoy, tOnRoot, cOff, cOnEnvoy, cOnRoot time.Duration
	add := func(t, c *time.Duration) func(time.Duration, time.Duration) {
		return func(dt, dc time.Duration) { *t += dt; *c += dc }
	}
	runs := []func(n int){
		func(n int) { add(&tOff, &cOff)(round(off, withParent, n)) },
		func(n int) { add(&tOnEnvoy, &cOnEnvoy)(round(on, withParent, n)) },
		func(n int) { add(&tOnRoot, &cOnRoot)(round(on, [][]byte{bare}, n)) },
	}
	// Six rounds each, the order rotated every round, so drift in a shared machine (other load,
	// frequency, GC) falls on all three alike.
	b.ResetTimer()
	for i := range 6 {
		n := b.N / 6
		if i == 5 {
			n = b.N - 5*(b.N/6)
		}
		if n == 0 {
			continue
		}
		for j := range runs {
			runs[(i+j)%len(runs)](n)
		}
	}
	b.StopTimer()
	if err := p.ForceFlush(context.Background()); err != nil {
		b.Fatal(err)
	}
	rps := func(d time.Duration) float64 { return float64(b.N) / d.Seconds() }
	b.ReportMetric(rps(tOff), "off-rps")
	b.ReportMetric(rps(tOnEnvoy)/rps(tOff), "on-envoy1%/off")
	b.ReportMetric(rps(tOnRoot)/rps(tOff), "on-root1%/off")
	// CPU per check, of the whole process (servers, clients, exporter and receiver): on a
	// shared machine, where wall time also counts other processes' turns.
	b.ReportMetric(cOff.Seconds()/cOnEnvoy.Seconds(), "cpu-off/on-envoy1%")
	b.ReportMetric(cOff.Seconds()/cOnRoot.Seconds(), "cpu-off/on-root1%")
	spans := len(rcv.Spans())
	b.ReportMetric(float64(spans), "spans")
	if b.N >= 10_000 {
		fmt.Printf("tracing at 1%%, %d clients: off %.0f req/s; on, Envoy sampling 1%%: %.0f req/s (ratio %.3f, CPU ratio %.3f); on, no traceparent: %.0f req/s (ratio %.3f, CPU ratio %.3f); %d spans exported of %d traced checks (target ratio >= 0.95)\n",
			workers, rps(tOff), rps(tOnEnvoy), rps(tOnEnvoy)/rps(tOff), cOff.Seconds()/cOnEnvoy.Seconds(),
			rps(tOnRoot), rps(tOnRoot)/rps(tOff), cOff.Seconds()/cOnRoot.Seconds(), spans, 2*b.N)
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
