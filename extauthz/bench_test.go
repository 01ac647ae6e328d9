package extauthz_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/rill-authd/rill-authd/extauthz"
	"github.com/rill-authd/rill-authd/internal/testenv"
	"github.com/rill-authd/rill-authd/plugins"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/resolver"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/store/badger"
	"github.com/rill-authd/rill-authd/token"
)

// benchStore is an on-disk store holding n service tokens, built once per process per size
// (benchmarks run their function several times). sample holds the wire form of some of them.
type benchStore struct {
	st     *badger.DB
	dir    string
	sample []string
}

var (
	benchStoresMu sync.Mutex
	benchStores   = map[int]*benchStore{}
)

// bigStoreSize is the large store of the scaling benchmark; RILL_BENCH_TOKENS overrides it.
func bigStoreSize() int { return testenv.BenchTokens() }

func storeWithTokens(b *testing.B, n int) *benchStore {
	benchStoresMu.Lock()
	defer benchStoresMu.Unlock()
	if bs := benchStores[n]; bs != nil {
		return bs
	}
	dir, err := os.MkdirTemp("", "rill-authd-bench-")
	if err != nil {
		b.Fatal(err)
	}
	st, err := badger.Open(badger.Options{Dir: dir, GCInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now().UTC()
	if err := st.CreateOrg(ctx, store.Org{Name: "acme", CreatedAt: now}); err != nil {
		b.Fatal(err)
	}
	if err := st.CreateService(ctx, store.Service{ID: "s-bench", Org: "acme", Name: "bench", ProjectRoles: map[string]policy.Role{"web": "viewer"},
		Attributes: map[string]any{"tier": "gold"}, CreatedAt: now, UpdatedAt: now}); err != nil {
		b.Fatal(err)
	}
	bs := &benchStore{st: st, dir: dir}
	const chunk = 50_000
	for done := 0; done < n; done += chunk {
		recs := make([]store.Token, 0, min(chunk, n-done))
		for i := done; i < min(done+chunk, n); i++ {
			tok, err := token.New(token.Service)
			if err != nil {
				b.Fatal(err)
			}
			recs = append(recs, store.NewToken(tok, "s-bench", "", "bench", now, 0))
			if i%max(1, n/10_000) == 0 {
				bs.sample = append(bs.sample, tok.Encode())
			}
		}
		if err := st.ImportTokens(ctx, recs); err != nil {
			b.Fatal(err)
		}
	}
	if err := st.Compact(); err != nil {
		b.Fatal(err)
	}
	benchStores[n] = bs
	return bs
}

// TestMain removes the benchmark stores.
func TestMain(m *testing.M) {
	code := m.Run()
	for _, bs := range benchStores {
		bs.st.Close()
		os.RemoveAll(bs.dir)
	}
	os.Exit(code)
}

// BenchmarkResolve measures the resolver alone: a cache hit, a miss (Badger reads of the token
// and its owner) in a store of 1,000 and of 1,000,000 tokens, and a bad token.
func BenchmarkResolve(b *testing.B) {
	ctx := context.Background()
	small := storeWithTokens(b, 1000)

	b.Run("hit", func(b *testing.B) {
		res := resolver.New(small.st, resolver.Options{TouchInterval: -1})
		defer res.Close()
		tok := small.sample[0]
		if _, err := res.Resolve(ctx, tok); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if _, err := res.Resolve(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("bad-checksum", func(b *testing.B) {
		res := resolver.New(small.st, resolver.Options{TouchInterval: -1})
		defer res.Close()
		good := small.sample[0]
		bad := good[:token.Len-1] + "A"
		if good[token.Len-1] == 'A' {
			bad = good[:token.Len-1] + "B"
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := res.Resolve(ctx, bad); err == nil {
				b.Fatal("bad token accepted")
			}
		}
	})
	miss := func(bs *benchStore) func(b *testing.B) {
		return func(b *testing.B) {
			res := resolver.New(bs.st, resolver.Options{CacheSize: -1, TouchInterval: -1})
			defer res.Close()
			r := rand.New(rand.NewPCG(1, 2))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := res.Resolve(ctx, bs.sample[r.IntN(len(bs.sample))]); err != nil {
					b.Fatal(err)
				}
			}
			if res.Stats().Hits != 0 {
				b.Fatal("the miss benchmark hit the cache")
			}
		}
	}
	var perOp [2]float64
	b.Run("miss/tokens=1000", func(b *testing.B) {
		miss(small)(b)
		perOp[0] = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("miss/tokens="+strconv.Itoa(bigStoreSize()), func(b *testing.B) {
		miss(storeWithTokens(b, bigStoreSize()))(b)
		perOp[1] = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	if perOp[0] > 0 && perOp[1] > 0 {
		fmt.Printf("miss latency: %.0f ns with 1,000 tokens, %.0f ns with %d: ratio %.2fx (target <= 1.5x)\n",
			perOp[0], perOp[1], bigStoreSize(), perOp[1]/perOp[0])
	}
}

// BenchmarkResolveJWT measures an ephemeral JWT: a hit in the verified cache (one SHA-256), and
// a cold check (RS256 verification and the issuer's liveness read).
func BenchmarkResolveJWT(b *testing.B) {
	ctx := context.Background()
	for _, bc := range []struct {
		name  string
		cache int
	}{{"verified-cache-hit", 0}, {"cold-rs256", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			f := newFixture(b, resolver.Options{CacheSize: bc.cache, Issuer: "rill-authd", Audience: "rill"})
			if _, err := f.res.Keys().Ensure(ctx); err != nil {
				b.Fatal(err)
			}
			ks, err := f.res.Keys().Keyset(ctx)
			if err != nil {
				b.Fatal(err)
			}
			now := time.Now()
			raw, err := ks.Sign(&token.Claims{RegisteredClaims: jwt.RegisteredClaims{Issuer: "rill-authd", Audience: jwt.ClaimStrings{"rill"},
				Subject: "u@x.io", IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)), ID: "5b3f0c1e-7a4d-4f2b-9c1a-2e6d8f0a1b2c"},
				Org: "acme", Project: "web", Attr: map[string]any{"email": "u@x.io"}, Permissions: []string{"read_prod"}, IssuedBy: "user:u-bob"})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := f.res.Resolve(ctx, raw); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.res.Resolve(ctx, raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCheckInProcess is the whole decision on a warm cache without the network: what our
// code costs per request, without plugins and with the example jsonfile plugin (its result
// cached), so the difference is what a cached plugin result adds.
func BenchmarkCheckInProcess(b *testing.B) {
	dir := b.TempDir()
	attrs := dir + "/attrs.json"
	if err := os.WriteFile(attrs, []byte(`{"alice@example.com": {"department": "sales"}}`), 0o600); err != nil {
		b.Fatal(err)
	}
	var perOp [2]float64
	for i, withPlugin := range []bool{false, true} {
		name := map[bool]string{false: "no-plugins", true: "cached-plugin"}[withPlugin]
		b.Run(name, func(b *testing.B) {
			f := newFixture(b, resolver.Options{})
			srv := f.srv
			if withPlugin {
				host, err := plugins.Start([]plugins.Config{{Name: "hr", Command: testenv.Bin(b, "plugins/jsonfile"),
					Args: []string{"--file", attrs}, CacheTTL: time.Hour}}, nil, nil)
				if err != nil {
					b.Fatal(err)
				}
				defer host.Close()
				srv = extauthz.New(f.res, extauthz.Config{Plugins: host})
			}
			ctx := context.Background()
			req := envoyRequest("GET", "/v1/orgs/acme/projects/web/runtime/query", map[string]string{"authorization": "Bearer " + f.tokens["alice"]}, nil)
			if r := srv.Check(ctx, req); r.GetStatus().GetCode() != 0 {
				b.Fatalf("not allowed: %v", r.GetStatus())
			}
			b.ReportAllocs()
			for b.Loop() {
				srv.Check(ctx, req)
			}
			perOp[i] = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		})
	}
	if perOp[0] > 0 && perOp[1] > 0 {
		fmt.Printf("a cached plugin result adds %.0f ns to a check (%.0f vs %.0f ns; target < 1000 ns)\n", perOp[1]-perOp[0], perOp[1], perOp[0])
	}
}

// whereRequest is an allowed check's request with where it came from (Envoy's source socket
// address and a user-agent) or, without, neither.
func whereRequest(tok string, with bool) *authv3.CheckRequest {
	req := envoyRequest("GET", "/v1/orgs/acme/projects/web/runtime/query", map[string]string{"authorization": "Bearer " + tok}, nil)
	if with {
		req.Attributes.Source.Address = &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: "203.0.113.7", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 51234}}}}
	} else {
		delete(req.Attributes.Request.Http.Headers, "user-agent")
	}
	return req
}

// BenchmarkCheckLastUseWhere is the allowed check in process with and without a source address
// and user agent, in the same run: what recording where a token was last used costs the check
// (the ratio is printed; the where rides the use already queued for the last-used time).
func BenchmarkCheckLastUseWhere(b *testing.B) {
	var perOp [2]float64
	for i, with := range []bool{false, true} {
		b.Run(map[bool]string{false: "without", true: "with-where"}[with], func(b *testing.B) {
			f := newFixture(b, resolver.Options{})
			ctx := context.Background()
			req := whereRequest(f.tokens["alice"], with)
			if r := f.srv.Check(ctx, req); r.GetStatus().GetCode() != 0 {
				b.Fatalf("not allowed: %v", r.GetStatus())
			}
			b.ReportAllocs()
			for b.Loop() {
				f.srv.Check(ctx, req)
			}
			perOp[i] = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		})
	}
	if perOp[0] > 0 && perOp[1] > 0 {
		fmt.Printf("a check with a where takes %.3f× the time of one without (%.0f vs %.0f ns)\n", perOp[1]/perOp[0], perOp[1], perOp[0])
	}
}

// TestAllowedCheckDoesNotAllocate guards what BenchmarkCheckInProcess measures: a repeated
// allowed check, in process, allocates nothing in our code (the memo is typed, so its key is
// not boxed; the response is rendered once per decision).
func TestAllowedCheckDoesNotAllocate(t *testing.T) {
	f := newFixture(t, resolver.Options{})
	ctx := context.Background()
	req := envoyRequest("GET", "/v1/orgs/acme/projects/web/runtime/query", map[string]string{"authorization": "Bearer " + f.tokens["alice"]}, nil)
	if r := f.srv.Check(ctx, req); r.GetStatus().GetCode() != 0 {
		t.Fatalf("not allowed: %v", r.GetStatus())
	}
	if n := testing.AllocsPerRun(1000, func() { f.srv.Check(ctx, req) }); n != 0 {
		t.Fatalf("an allowed check allocates %v times", n)
	}
	// Nor with where it came from, which is queued with the use for the token's last use.
	req = whereRequest(f.tokens["alice"], true)
	f.srv.Check(ctx, req)
	if n := testing.AllocsPerRun(1000, func() { f.srv.Check(ctx, req) }); n != 0 {
		t.Fatalf("an allowed check with a source address and user agent allocates %v times", n)
	}
}

// noopServer answers every check with a bare OK: the floor of gRPC over loopback.
type noopServer struct {
	authv3.UnimplementedAuthorizationServer
}

var noopOK = &authv3.CheckResponse{Status: &status.Status{}}

func (noopServer) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return noopOK, nil
}

// loadCodec is the load generator's codec: it sends a request encoded once and does not decode
// replies (it only checks one arrived), so the client spends the same small effort on both
// servers and the two cores of CI go to the servers being compared. Envoy decodes replies on
// its own threads, not ours.
type loadCodec struct{}

type preEncoded []byte
type reply struct{ n int }

func (loadCodec) Name() string { return "proto" }
func (loadCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.(preEncoded))}, nil
}
func (loadCodec) Unmarshal(data mem.BufferSlice, v any) error {
	v.(*reply).n = data.Len()
	return nil
}

// BenchmarkCheckGRPC sends b.N full CheckRequests over loopback gRPC to our server and b.N to a
// no-op server in the same run, from the same number of concurrent clients, and reports both
// throughputs, their ratio, and both p50/p99 latencies.
func BenchmarkCheckGRPC(b *testing.B) {
	f := newFixture(b, resolver.Options{})
	ours := grpcConn(b, f.srv.Register, extauthz.GRPCServerOptions()...)
	noop := grpcConn(b, func(g *grpc.Server) { authv3.RegisterAuthorizationServer(g, noopServer{}) })
	req := envoyRequest("GET", "/v1/orgs/acme/projects/web/runtime/query", map[string]string{"authorization": "Bearer " + f.tokens["alice"]}, nil)
	if r, err := authv3.NewAuthorizationClient(ours).Check(context.Background(), req); err != nil || r.GetStatus().GetCode() != 0 {
		b.Fatalf("warm-up: %v %v", r.GetStatus(), err)
	}
	wire, err := proto.Marshal(req)
	if err != nil {
		b.Fatal(err)
	}
	workers := 4 * runtime.GOMAXPROCS(0)
	// Each server gets b.N requests in four alternating rounds, so drift in the machine (other
	// load, frequency, GC) falls on both alike.
	type tally struct {
		lat     []time.Duration
		elapsed time.Duration
	}
	round := func(c *grpc.ClientConn, n int, t *tally) {
		lat := make([]time.Duration, n)
		var next atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range workers {
			wg.Go(func() {
				var r reply
				for {
					n := int(next.Add(1) - 1)
					if n >= len(lat) {
						return
					}
					t0 := time.Now()
					if err := c.Invoke(context.Background(), authv3.Authorization_Check_FullMethodName, preEncoded(wire), &r, grpc.ForceCodecV2(loadCodec{})); err != nil || r.n == 0 {
						panic(fmt.Sprintf("check: %v (reply %d bytes)", err, r.n))
					}
					lat[n] = time.Since(t0)
				}
			})
		}
		wg.Wait()
		t.elapsed += time.Since(start)
		t.lat = append(t.lat, lat...)
	}
	var noopT, oursT tally
	b.ResetTimer()
	for i := range 4 {
		n := b.N / 4
		if i == 3 {
			n = b.N - 3*(b.N/4)
		}
		if n == 0 {
			continue
		}
		round(noop, n, &noopT)
		round(ours, n, &oursT)
	}
	b.StopTimer()
	stats := func(t tally) (float64, time.Duration, time.Duration) {
		slices.Sort(t.lat)
		return float64(len(t.lat)) / t.elapsed.Seconds(), t.lat[len(t.lat)/2], t.lat[len(t.lat)*99/100]
	}
	nrps, np50, np99 := stats(noopT)
	orps, op50, op99 := stats(oursT)
	b.ReportMetric(orps, "rps")
	b.ReportMetric(nrps, "noop-rps")
	b.ReportMetric(orps/nrps, "ratio")
	b.ReportMetric(float64(op50.Microseconds()), "p50-µs")
	b.ReportMetric(float64(op99.Microseconds()), "p99-µs")
	b.ReportMetric(float64(np50.Microseconds()), "noop-p50-µs")
	b.ReportMetric(float64(np99.Microseconds()), "noop-p99-µs")
	if b.N >= 10_000 {
		fmt.Printf("%d concurrent clients: ours %.0f req/s (p50 %v, p99 %v), no-op %.0f req/s (p50 %v, p99 %v): ratio %.2f (target >= 0.8)\n",
			workers, orps, op50, op99, nrps, np50, np99, orps/nrps)
	}
}
