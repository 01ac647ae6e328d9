package extauthz_test

import (
	"context"
	"net/http"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/rill-authd/rill-authd/resolver"
)

// TestLastUseWhere: an allowed check records where it came from with the token's last use: over
// gRPC Envoy's source socket address and the user-agent header (also from a raw header map), in
// HTTP mode the connection's address; a hostile user agent is cleaned, not refused.
func TestLastUseWhere(t *testing.T) {
	for _, tc := range []struct {
		name   string
		check  func(t *testing.T, f *fixture)
		ip, ua string
	}{
		{"grpc", func(t *testing.T, f *fixture) {
			req := whereRequest(f.tokens["alice"], true)
			req.Attributes.Request.Http.Headers["user-agent"] = "app/1.0 \x1b]0;pwned\x07"
			if r := f.srv.Check(context.Background(), req); r.GetStatus().GetCode() != 0 {
				t.Fatalf("not allowed: %v", r.GetStatus())
			}
		}, "203.0.113.7", "app/1.0 \uFFFD]0;pwned\uFFFD"},
		{"grpc raw headers, IPv6 source", func(t *testing.T, f *fixture) {
			req := whereRequest(f.tokens["alice"], true)
			req.Attributes.Source.Address.GetSocketAddress().Address = "2001:db8::42"
			hm := &corev3.HeaderMap{}
			for k, v := range req.Attributes.Request.Http.Headers {
				hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: k, RawValue: []byte(v)})
			}
			req.Attributes.Request.Http.Headers, req.Attributes.Request.Http.HeaderMap = nil, hm
			if r := f.srv.Check(context.Background(), req); r.GetStatus().GetCode() != 0 {
				t.Fatalf("not allowed: %v", r.GetStatus())
			}
		}, "2001:db8::42", "curl/8.0"},
		{"grpc without a source", func(t *testing.T, f *fixture) {
			req := whereRequest(f.tokens["alice"], false)
			req.Attributes.Request.Http.Headers["user-agent"] = "only-ua"
			if r := f.srv.Check(context.Background(), req); r.GetStatus().GetCode() != 0 {
				t.Fatalf("not allowed: %v", r.GetStatus())
			}
		}, "", "only-ua"},
		{"http mode", func(t *testing.T, f *fixture) {
			s := authdHTTP(t, f)
			req, _ := http.NewRequest("GET", s.URL+"/ext_authz/v1/orgs/acme/projects/web/runtime/x", nil)
			req.Header.Set("Authorization", "Bearer "+f.tokens["alice"])
			req.Header.Set("User-Agent", "Mozilla/5.0")
			req.Header.Set("X-Forwarded-For", "198.51.100.1") // not read (yet): the connection is the client
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("HTTP check: %v %v", resp, err)
			}
			resp.Body.Close()
		}, "127.0.0.1", "Mozilla/5.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, resolver.Options{})
			tc.check(t, f)
			f.res.Close() // flushes
			rec, err := f.st.GetToken(context.Background(), f.ids["alice"])
			if err != nil {
				t.Fatal(err)
			}
			if rec.LastUsedAt.IsZero() || rec.LastUsedIP != tc.ip || rec.LastUsedUserAgent != tc.ua {
				t.Errorf("last use at %v from %q (%q), want from %q (%q)", rec.LastUsedAt, rec.LastUsedIP, rec.LastUsedUserAgent, tc.ip, tc.ua)
			}
		})
	}
}
