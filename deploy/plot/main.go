// Command plot drives a short real load against a running rill-authd, scrapes its /metrics once
// a second, and draws the dashboard's main panels into a PNG (for the README, where Grafana is not
// at hand). Usage:
//
//	go run ./deploy/plot --api-url http://127.0.0.1:8080 --grpc-addr 127.0.0.1:9191 --token rill_usr_… --out docs/dashboard.png
package main

import (
	"context"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"log"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
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
	flag.Parse()
	if err := run(*apiURL, *grpcAddr, *tok, *seconds, *out); err != nil {
		log.Fatal(err)
	}
}

type sample struct {
	allowed, denied, errored float64 // checks/s
	p50, p99                 float64 // µs
	hitRatio                 float64
	usr, svc                 float64
}

func run(apiURL, grpcAddr, tok string, seconds int, out string) error {
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
	for i := range 16 {
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
		workers.Store(int64(1 + 15*math.Sin(math.Pi*phase)))
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

// --- drawing

type series struct {
	name   string
	color  color.RGBA
	values []float64
}

var (
	blue   = color.RGBA{31, 119, 180, 255}
	orange = color.RGBA{255, 127, 14, 255}
	red    = color.RGBA{214, 39, 40, 255}
	green  = color.RGBA{44, 160, 44, 255}
	grey   = color.RGBA{200, 200, 200, 255}
	black  = color.RGBA{30, 30, 30, 255}
)

func render(samples []sample, out string) error {
	const w, h = 1200, 760
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	pick := func(f func(sample) float64) []float64 {
		v := make([]float64, len(samples))
		for i, s := range samples {
			v[i] = f(s)
		}
		return v
	}
	text(img, 20, 24, black, fmt.Sprintf("rill-authd under a %d s load (scraped from /metrics once a second)", len(samples)))
	panel(img, image.Rect(20, 40, 590, 390), "Checks per second by result", []series{
		{"allowed", green, pick(func(s sample) float64 { return s.allowed })},
		{"denied", orange, pick(func(s sample) float64 { return s.denied })},
		{"error", red, pick(func(s sample) float64 { return s.errored })}})
	panel(img, image.Rect(610, 40, 1180, 390), "Check latency inside rill-authd (us)", []series{
		{"p50", blue, pick(func(s sample) float64 { return s.p50 })},
		{"p99", red, pick(func(s sample) float64 { return s.p99 })}})
	panel(img, image.Rect(20, 400, 590, 750), "Cache hit ratio", []series{
		{"hits / (hits + misses)", blue, pick(func(s sample) float64 { return s.hitRatio })}})
	panel(img, image.Rect(610, 400, 1180, 750), "Active tokens by kind", []series{
		{"user", blue, pick(func(s sample) float64 { return s.usr })},
		{"service", orange, pick(func(s sample) float64 { return s.svc })}})
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	return png.Encode(f, img)
}

func panel(img *image.RGBA, r image.Rectangle, title string, ss []series) {
	text(img, r.Min.X+4, r.Min.Y+14, black, title)
	plot := image.Rect(r.Min.X+60, r.Min.Y+24, r.Max.X-10, r.Max.Y-40)
	maxV := 0.0
	for _, s := range ss {
		for _, v := range s.values {
			maxV = math.Max(maxV, v)
		}
	}
	if maxV == 0 {
		maxV = 1
	}
	maxV *= 1.1
	for i := 0; i <= 4; i++ {
		y := plot.Max.Y - i*plot.Dy()/4
		line(img, plot.Min.X, y, plot.Max.X, y, grey)
		text(img, r.Min.X+2, y+4, black, trim(maxV*float64(i)/4))
	}
	line(img, plot.Min.X, plot.Min.Y, plot.Min.X, plot.Max.Y, black)
	for _, s := range ss {
		n := len(s.values)
		for i := 1; i < n; i++ {
			x0 := plot.Min.X + (i-1)*plot.Dx()/max(n-1, 1)
			x1 := plot.Min.X + i*plot.Dx()/max(n-1, 1)
			y0 := plot.Max.Y - int(s.values[i-1]/maxV*float64(plot.Dy()))
			y1 := plot.Max.Y - int(s.values[i]/maxV*float64(plot.Dy()))
			thick(img, x0, y0, x1, y1, s.color)
		}
	}
	x := plot.Min.X
	for _, s := range ss {
		draw.Draw(img, image.Rect(x, r.Max.Y-22, x+14, r.Max.Y-12), &image.Uniform{s.color}, image.Point{}, draw.Src)
		text(img, x+18, r.Max.Y-12, black, s.name)
		x += 30 + 7*len(s.name)
	}
	text(img, plot.Max.X-80, plot.Max.Y+16, black, "time (s) ->")
}

func trim(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 1:
		return fmt.Sprintf("%.1f", v)
	}
	return strings.TrimRight(fmt.Sprintf("%.2f", v), "0")
}

func text(img *image.RGBA, x, y int, c color.Color, s string) {
	d := font.Drawer{Dst: img, Src: &image.Uniform{c}, Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		img.SetRGBA(x0, y0, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func thick(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	for d := -1; d <= 1; d++ {
		line(img, x0, y0+d, x1, y1+d, c)
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v < 0:
		return -1
	case v > 0:
		return 1
	}
	return 0
}
