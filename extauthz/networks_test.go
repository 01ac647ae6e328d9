package extauthz_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/rill-authd/rill-authd/extauthz"
	"github.com/rill-authd/rill-authd/metrics"
	"github.com/rill-authd/rill-authd/resolver"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// addBound adds a token of alice's bound to networks and origins.
func (f *fixture) addBound(tb testing.TB, name string, networks, origins []string) {
	tb.Helper()
	tok, err := token.New(token.User)
	if err != nil {
		tb.Fatal(err)
	}
	rec := store.Token{ID: tok.ID, Kind: token.User, OwnerID: "u-alice", DisplayName: name, Prefix: tok.Display(),
		Hash: tok.Hash(), CreatedAt: time.Now().UTC(), AllowedNetworks: networks, AllowedOrigins: origins}
	if err := f.st.CreateToken(context.Background(), rec); err != nil {
		tb.Fatal(err)
	}
	f.tokens[name], f.ids[name] = tok.Encode(), tok.ID
}

// grpcFrom is an Envoy check request of alice's project from source address addr ("" none),
// with extra headers.
func grpcFrom(bearer, addr string, headers map[string]string) *authv3.CheckRequest {
	h := map[string]string{"authorization": "Bearer " + bearer}
	for k, v := range headers {
		h[k] = v
	}
	req := envoyRequest("GET", "/v1/orgs/acme/projects/web/runtime/query", h, nil)
	if addr != "" {
		req.Attributes.Source.Address = &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: addr, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 51234}}}}
	}
	return req
}

// TestNetworkBoundGRPC: over real gRPC, a token bound to networks works from an address in
// them (IPv4, IPv6, IPv4-mapped IPv6) and is refused 403 network_not_allowed (PERMISSION_DENIED,
// never 401) from any other and when Envoy gives no source address; a token without
// constraints is not affected; the refusals are counted, logged and audited.
func TestNetworkBoundGRPC(t *testing.T) {
	f := newFixture(t, resolver.Options{})
	m := metrics.New()
	srv := extauthz.New(f.res, extauthz.Config{Metrics: m})
	f.addBound(t, "bound", []string{"10.0.0.0/8", "2001:db8::/32"}, nil)
	c := grpcClient(t, srv.Register)
	for _, tc := range []struct {
		name, tok, addr string
		want            int // HTTP status; 200 allowed
	}{
		{"IPv4 inside", "bound", "10.20.30.40", 200},
		{"IPv4-mapped IPv6 inside", "bound", "::ffff:10.20.30.40", 200},
		{"IPv6 inside", "bound", "2001:db8:1::5", 200},
		{"IPv4 outside", "bound", "192.0.2.1", 403},
		{"IPv4-mapped IPv6 outside", "bound", "::ffff:192.0.2.1", 403},
		{"IPv6 outside", "bound", "2001:db9::5", 403},
		{"IPv6 with the IPv4 network's bits", "bound", "::a14:1e28", 403},
		{"loopback", "bound", "127.0.0.1", 403},
		{"no source address", "bound", "", 403},
		{"not an IP (a pipe)", "bound", "/run/envoy.sock", 403},
		{"unbound, no source", "alice", "", 200},
		{"unbound, anywhere", "alice", "192.0.2.1", 200},
	} {
		resp, err := c.Check(t.Context(), grpcFrom(f.tokens[tc.tok], tc.addr, nil))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		code := resp.GetStatus().GetCode()
		if tc.want == 200 {
			if code != 0 {
				t.Errorf("%s: code %d %s, want allowed", tc.name, code, resp.GetDeniedResponse().GetBody())
			}
			continue
		}
		d := resp.GetDeniedResponse()
		if code != 7 || d.GetStatus().GetCode() != 403 || !strings.Contains(d.GetBody(), "network_not_allowed") {
			t.Errorf("%s: code %d, HTTP %d %s; want PERMISSION_DENIED, 403 network_not_allowed", tc.name, code, d.GetStatus().GetCode(), d.GetBody())
		}
		if strings.Contains(d.GetBody(), "10.0.0.0") || strings.Contains(d.GetBody(), f.tokens[tc.tok]) {
			t.Errorf("%s: the refusal tells the allowed networks or the token: %s", tc.name, d.GetBody())
		}
	}
	if n := m.CheckTotals().Reasons["network_not_allowed"]; n != 7 {
		t.Errorf("network_not_allowed counted %v times, want 7", n)
	}
	f.res.Close() // flushes the audit summary
	events, err := f.st.ListAudit(context.Background(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range events {
		if e.Action == "token.use_refused" {
			found = true
			if !strings.Contains(e.Detail, f.ids["bound"].String()+"×7") || e.Outcome != "denied" {
				t.Errorf("audit summary of refusals: %+v, want the token ×7", e)
			}
		}
	}
	if !found {
		t.Errorf("no token.use_refused audit event in %+v", events)
	}
}

// TestNetworkBoundHTTP: the forward-auth mode takes the client from X-Forwarded-For behind
// --trusted-proxy-hops: with 0 the header is ignored (a client that sends its own cannot pose
// as an allowed network) and the peer is the client; with 1 the last entry (the one the trusted
// proxy appended) is, so an entry the client put before it changes nothing; a list shorter than
// the hops is an unknown client, refused.
func TestNetworkBoundHTTP(t *testing.T) {
	f := newFixture(t, resolver.Options{})
	f.addBound(t, "office", []string{"10.0.0.0/8", "2001:db8::/32"}, nil)
	f.addBound(t, "local", []string{"127.0.0.0/8"}, nil)
	serve := func(hops int) string {
		srv := extauthz.New(f.res, extauthz.Config{TrustedProxyHops: hops})
		s := httptest.NewServer(srv.Handler(http.NotFoundHandler()))
		t.Cleanup(s.Close)
		return s.URL
	}
	urls := map[int]string{0: serve(0), 1: serve(1), 2: serve(2)}
	for _, tc := range []struct {
		name string
		hops int
		tok  string
		xff  []string // header lines
		want int
	}{
		{"hops 0: the peer (loopback) is the client", 0, "local", nil, 200},
		{"hops 0: a spoofed header is ignored", 0, "office", []string{"10.1.1.1"}, 403},
		{"hops 0: a spoofed header does not hide the peer", 0, "local", []string{"192.0.2.1"}, 200},
		{"hops 1: the proxy's entry inside", 1, "office", []string{"10.1.1.1"}, 200},
		{"hops 1: IPv6", 1, "office", []string{"2001:db8::9"}, 200},
		{"hops 1: IPv4-mapped IPv6", 1, "office", []string{"::ffff:10.1.1.1"}, 200},
		{"hops 1: with a port", 1, "office", []string{"[2001:db8::9]:443"}, 200},
		{"hops 1: spoofed entry before the proxy's", 1, "office", []string{"10.1.1.1, 203.0.113.9"}, 403},
		{"hops 1: spoofed line before the proxy's", 1, "office", []string{"10.1.1.1", "203.0.113.9"}, 403},
		{"hops 1: the peer is not the client", 1, "local", []string{"203.0.113.9"}, 403},
		{"hops 1: no header", 1, "office", nil, 403},
		{"hops 1: garbage", 1, "office", []string{"10.1.1.1, not-an-ip"}, 403},
		{"hops 1: empty entry", 1, "office", []string{"10.1.1.1,"}, 403},
		{"hops 2: two proxies", 2, "office", []string{"198.51.100.1, 10.1.1.1, 172.16.0.1"}, 200},
		{"hops 2: across lines", 2, "office", []string{"198.51.100.1, 10.1.1.1", "172.16.0.1"}, 200},
		{"hops 2: too short", 2, "office", []string{"10.1.1.1"}, 403},
		{"unbound token, any header", 1, "alice", []string{"garbage"}, 200},
	} {
		req, _ := http.NewRequest("GET", urls[tc.hops]+extauthz.HTTPPrefix+"/v1/orgs/acme/projects/web/runtime/query", nil)
		req.Header.Set("Authorization", "Bearer "+f.tokens[tc.tok])
		for _, l := range tc.xff {
			req.Header.Add("X-Forwarded-For", l)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, resp.StatusCode, body, tc.want)
		}
		if tc.want == 403 && (!strings.Contains(string(body), "network_not_allowed") || resp.Header.Get("X-Rill-Subject") != "") {
			t.Errorf("%s: refusal %s with headers %v", tc.name, body, resp.Header)
		}
	}
}

// TestOriginBound: a token bound to origins works only for a request whose Origin (else whose
// Referer's origin) is one of them, on both transports; neither header: refused.
func TestOriginBound(t *testing.T) {
	f := newFixture(t, resolver.Options{})
	f.addBound(t, "embed", nil, []string{"https://shop.example.com"})
	c := grpcClient(t, f.srv.Register)
	s := httptest.NewServer(f.srv.Handler(http.NotFoundHandler()))
	t.Cleanup(s.Close)
	for _, tc := range []struct {
		name            string
		origin, referer string
		want            int
	}{
		{"Origin matches", "https://shop.example.com", "", 200},
		{"Origin differs", "https://evil.example.com", "", 403},
		{"Origin differs, Referer matches", "https://evil.example.com", "https://shop.example.com/p", 403},
		{"Referer fallback", "", "https://shop.example.com/dash?x=1", 200},
		{"Referer of a look-alike host", "", "https://shop.example.com.evil.net/", 403},
		{"Referer on another port", "", "https://shop.example.com:8443/", 403},
		{"http, not https", "http://shop.example.com", "", 403},
		{"neither", "", "", 403},
	} {
		h := map[string]string{}
		if tc.origin != "" {
			h["origin"] = tc.origin
		}
		if tc.referer != "" {
			h["referer"] = tc.referer
		}
		resp, err := c.Check(t.Context(), grpcFrom(f.tokens["embed"], "", h))
		if err != nil {
			t.Fatal(err)
		}
		got := 200
		if resp.GetStatus().GetCode() != 0 {
			got = int(resp.GetDeniedResponse().GetStatus().GetCode())
			if !strings.Contains(resp.GetDeniedResponse().GetBody(), "origin_not_allowed") {
				t.Errorf("gRPC %s: body %s", tc.name, resp.GetDeniedResponse().GetBody())
			}
		}
		if got != tc.want {
			t.Errorf("gRPC %s: %d, want %d", tc.name, got, tc.want)
		}
		req, _ := http.NewRequest("GET", s.URL+extauthz.HTTPPrefix+"/v1/orgs/acme/projects/web/x", nil)
		req.Header.Set("Authorization", "Bearer "+f.tokens["embed"])
		for k, v := range h {
			req.Header.Set(k, v)
		}
		hr, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		hr.Body.Close()
		if hr.StatusCode != tc.want {
			t.Errorf("HTTP %s: %d, want %d", tc.name, hr.StatusCode, tc.want)
		}
	}
}

// TestLimitsChangeDropsCache: a cached, allowed token is refused on its next check once its
// networks no longer include the client, and allowed again once they are cleared: the change
// drops the token's cache entry and memoized decisions.
func TestLimitsChangeDropsCache(t *testing.T) {
	f := newFixture(t, resolver.Options{})
	c := grpcClient(t, f.srv.Register)
	check := func() int32 {
		resp, err := c.Check(t.Context(), grpcFrom(f.tokens["alice"], "192.0.2.7", nil))
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetStatus().GetCode()
	}
	if got := check(); got != 0 {
		t.Fatalf("before: code %d", got)
	}
	ctx := context.Background()
	if _, err := f.st.SetTokenLimits(ctx, f.ids["alice"], []string{"10.0.0.0/8"}, nil); err != nil {
		t.Fatal(err)
	}
	if got := check(); got != 7 {
		t.Errorf("after binding it elsewhere: code %d, want 7 (the cached allow was kept)", got)
	}
	if _, err := f.st.SetTokenLimits(ctx, f.ids["alice"], []string{"192.0.2.0/24"}, nil); err != nil {
		t.Fatal(err)
	}
	if got := check(); got != 0 {
		t.Errorf("after binding it here: code %d, want 0", got)
	}
	if _, err := f.st.SetTokenLimits(ctx, f.ids["alice"], nil, nil); err != nil {
		t.Fatal(err)
	}
	if got := check(); got != 0 {
		t.Errorf("after clearing: code %d, want 0", got)
	}
}

// TestNetworkBoundAllocs: a check of a token bound to networks and origins, allowed or refused,
// in either transport's reading of the client, allocates nothing.
func TestNetworkBoundAllocs(t *testing.T) {
	f := newFixture(t, resolver.Options{})
	f.addBound(t, "bound", []string{"192.0.2.0/24", "198.51.100.0/24", "2001:db8::/32", "10.0.0.0/8"}, []string{"https://shop.example.com"})
	ctx := context.Background()
	for _, tc := range []struct {
		name, addr string
		want       int32
	}{{"allowed", "::ffff:10.1.2.3", 0}, {"refused", "203.0.113.1", 7}} {
		req := grpcFrom(f.tokens["bound"], tc.addr, map[string]string{"referer": "https://shop.example.com/dash"})
		if got := f.srv.Check(ctx, req).GetStatus().GetCode(); got != tc.want {
			t.Fatalf("%s: code %d, want %d", tc.name, got, tc.want)
		}
		if n := testing.AllocsPerRun(1000, func() { f.srv.Check(ctx, req) }); n != 0 {
			t.Errorf("%s check of a bound token: %v allocations, want 0", tc.name, n)
		}
	}
	// The HTTP mode's reading of the client: X-Forwarded-For behind trusted hops.
	r := httptest.NewRequest("GET", "/", nil)
	r.Header["X-Forwarded-For"] = []string{"198.51.100.1, 10.1.1.1", "172.16.0.1"}
	if a := resolver.ClientAddr(r, 2); a.String() != "10.1.1.1" {
		t.Fatalf("ClientAddr = %v", a)
	}
	if n := testing.AllocsPerRun(1000, func() { resolver.ClientAddr(r, 2) }); n != 0 {
		t.Errorf("reading X-Forwarded-For: %v allocations, want 0", n)
	}
}

// BenchmarkCheckNetworkBound measures a cached check of the same principal without
// constraints ("unbound") and with four networks and an origin ("bound", the address matching
// the last network, an IPv4-mapped IPv6 one, the origin from the Referer). Its "ratio" part
// times the two in alternating rounds of 20,000 checks and reports the best round of each, and
// their ratio as bound/unbound: on a shared machine the best round is the one least disturbed.
func BenchmarkCheckNetworkBound(b *testing.B) {
	f := newFixture(b, resolver.Options{})
	f.addBound(b, "bound", []string{"192.0.2.0/24", "198.51.100.0/24", "2001:db8::/32", "10.0.0.0/8"}, []string{"https://shop.example.com"})
	ctx := context.Background()
	reqs := map[string]*authv3.CheckRequest{}
	for _, c := range []struct{ name, who string }{{"unbound", "alice"}, {"bound", "bound"}} {
		req := grpcFrom(f.tokens[c.who], "::ffff:10.1.2.3", map[string]string{"referer": "https://shop.example.com/dash"})
		if r := f.srv.Check(ctx, req); r.GetStatus().GetCode() != 0 {
			b.Fatalf("%s: not allowed: %v", c.name, r.GetStatus())
		}
		reqs[c.name] = req
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				f.srv.Check(ctx, req)
			}
		})
	}
	b.Run("ratio", func(b *testing.B) {
		const rounds, per = 10, 20_000
		best := map[string]time.Duration{}
		for b.Loop() {
			for range rounds {
				for _, name := range []string{"unbound", "bound"} {
					req := reqs[name]
					start := time.Now()
					for range per {
						f.srv.Check(ctx, req)
					}
					if d := time.Since(start); best[name] == 0 || d < best[name] {
						best[name] = d
					}
				}
			}
		}
		b.ReportMetric(float64(best["unbound"].Nanoseconds())/per, "unbound-ns/check")
		b.ReportMetric(float64(best["bound"].Nanoseconds())/per, "bound-ns/check")
		b.ReportMetric(float64(best["bound"])/float64(best["unbound"]), "bound/unbound")
	})
}
