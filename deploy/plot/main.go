// Command plot drives a short real load against a running rill-authd, scrapes its /metrics once
// a second, and draws the dashboard's main panels into a PNG with gonum's plot (for the README,
// where Grafana is not at hand). Usage:
//
//	go run ./deploy/plot --api-url http://127.0.0.1:8080 --grpc-addr 127.0.0.1:9191 --token rill_usr_… --out docs/dashboard.png
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	adminclient "github.com/rill-authd/rill-authd/adminapi/client"
)

func main() {
	apiURL := flag.String("api-url", "http://127.0.0.1:8080", "rill-authd admin API")
	grpcAddr := flag.String("grpc-addr", "127.0.0.1:9191", "rill-authd ext_authz gRPC address")
	tok := flag.String("token", os.Getenv("RILLCTL_TOKEN"), "superuser token")
	seconds := flag.Int("seconds", 30, "length of the load")
	out := flag.String("out", "dashboard.png", "PNG to write")
	maxWorkers := flag.Int("workers", 16, "most concurrent check clients, at the load's peak")
	flag.Parse()
	if err := run(*apiURL, *grpcAddr, *tok, *seconds, *maxWorkers, *out); err != nil {
		log.Fatal(err)
	}
}

type sample struct {
	allowed, denied, errored float64 // checks/s
	p50, p99                 float64 // µs
	hitRatio                 float64
	usr, svc                 float64
}

func run(apiURL, grpcAddr, tok string, seconds, maxWorkers int, out string) error {
	ctx := context.Background()
	su := adminclient.New(apiURL, tok)
	su.CreateOrg(ctx, "demo")
	su.CreateProject(ctx, "demo", "web")
	svc, err := su.CreateService(ctx, "demo", apiv1.ServiceRequest{Name: fmt.Sprintf("load-%d", time.Now().Unix()), OrgRole: "admin"})
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	client := authv3.NewAuthorizationClient(conn)
	bad := svc.Token.Token[:len(svc.Token.Token)-1] + "!"

	var workers atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	for i := range maxWorkers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), 7))
			for !stop.Load() {
				if int64(i) >= workers.Load() {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				auth := "Bearer " + tok
				switch x := r.IntN(100); {
				case x < 20:
					auth = "Bearer " + svc.Token.Token
				case x < 23:
					auth = "Bearer " + bad
				case x < 24:
					auth = ""
				}
				client.Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
					Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/v1/orgs/demo/projects/web/runtime/q", Headers: map[string]string{"authorization": auth}}}}})
			}
		})
	}
	var samples []sample
	prev, err := scrape(apiURL)
	if err != nil {
		return err
	}
	var issued []apiv1.IssuedToken
	for s := range seconds {
		// Load rises, peaks, falls; tokens are issued early and revoked late; the cache is
		// cleared by those writes, which shows as misses.
		phase := float64(s) / float64(seconds)
		workers.Store(int64(1 + float64(maxWorkers-1)*math.Sin(math.Pi*phase)))
		if s%3 == 0 && s < seconds/2 {
			if t, err := su.IssueToken(ctx, apiv1.TokenRequest{DisplayName: fmt.Sprint("load ", s)}); err == nil {
				issued = append(issued, t)
			}
		}
		if s > seconds/2 && len(issued) > 0 && s%2 == 0 {
			su.RevokeToken(ctx, "", issued[0].ID)
			issued = issued[1:]
		}
		time.Sleep(time.Second)
		cur, err := scrape(apiURL)
		if err != nil {
			return err
		}
		samples = append(samples, diff(prev, cur))
		prev = cur
	}
	stop.Store(true)
	wg.Wait()
	return render(samples, out)
}

type scrapeResult struct {
	checks  map[string]float64 // by result
	buckets map[float64]float64
	hits    float64
	misses  float64
	active  map[string]float64
	at      time.Time
}

func scrape(url string) (*scrapeResult, error) {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, err
	}
	r := &scrapeResult{checks: map[string]float64{}, buckets: map[float64]float64{}, active: map[string]float64{}, at: time.Now()}
	label := func(m *dto.Metric, name string) string {
		for _, l := range m.GetLabel() {
			if l.GetName() == name {
				return l.GetValue()
			}
		}
		return ""
	}
	for _, m := range fams["rill_authd_checks_total"].GetMetric() {
		r.checks[label(m, "result")] += m.GetCounter().GetValue()
	}
	for _, m := range fams["rill_authd_check_duration_seconds"].GetMetric() {
		for _, b := range m.GetHistogram().GetBucket() {
			r.buckets[b.GetUpperBound()] += float64(b.GetCumulativeCount())
		}
	}
	for _, m := range fams["rill_authd_cache_hits_total"].GetMetric() {
		r.hits = m.GetCounter().GetValue()
	}
	for _, m := range fams["rill_authd_cache_misses_total"].GetMetric() {
		r.misses = m.GetCounter().GetValue()
	}
	for _, m := range fams["rill_authd_active_tokens"].GetMetric() {
		r.active[label(m, "kind")] = m.GetGauge().GetValue()
	}
	return r, nil
}

func diff(a, b *scrapeResult) sample {
	dt := b.at.Sub(a.at).Seconds()
	s := sample{allowed: (b.checks["allowed"] - a.checks["allowed"]) / dt, denied: (b.checks["denied"] - a.checks["denied"]) / dt,
		errored: (b.checks["error"] - a.checks["error"]) / dt, usr: b.active["user"], svc: b.active["service"]}
	if h := (b.hits - a.hits) + (b.misses - a.misses); h > 0 {
		s.hitRatio = (b.hits - a.hits) / h
	}
	var bounds []float64
	for le := range b.buckets {
		bounds = append(bounds, le)
	}
	sort.Float64s(bounds)
	q := func(p float64) float64 {
		total := b.buckets[math.Inf(1)] - a.buckets[math.Inf(1)]
		if total <= 0 {
			return 0
		}
		prevLE, prevN := 0.0, 0.0
		for _, le := range bounds {
			n := b.buckets[le] - a.buckets[le]
			if n >= p*total {
				if math.IsInf(le, 1) {
					return prevLE * 1e6
				}
				frac := (p*total - prevN) / math.Max(n-prevN, 1)
				return (prevLE + frac*(le-prevLE)) * 1e6
			}
			prevLE, prevN = le, n
		}
		return prevLE * 1e6
	}
	s.p50, s.p99 = q(0.5), q(0.99)
	return s
}
