package extauthz_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	tracev3 "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"gopkg.in/yaml.v3"

	"github.com/rill-authd/rill-authd/extauthz"
	"github.com/rill-authd/rill-authd/internal/testenv"
	"github.com/rill-authd/rill-authd/resolver"
	"github.com/rill-authd/rill-authd/tracing"
)

// TestCheckSpans sends checks through the real gRPC ext_authz server and the HTTP mode with
// tracing on, exporting to a real OTLP receiver, and reads each check's span there: it joins
// the gateway's trace (trace id and parent span id of the traceparent sent), carries the
// decision's facts, and holds no credential anywhere.
func TestCheckSpans(t *testing.T) {
	rcv := testenv.StartOTLPReceiver(t)
	rcv.Env(t)
	p, err := tracing.FromEnv(context.Background(), "test", nil)
	if err != nil || p == nil {
		t.Fatalf("tracing.FromEnv = %v, %v; want a provider", p, err)
	}
	t.Cleanup(func() { p.Shutdown(context.Background()) })
	f := newFixture(t, resolver.Options{})
	srv := extauthz.New(f.res, extauthz.Config{Tracer: p.ServerTracer()})
	client := grpcClient(t, srv.Register, extauthz.GRPCServerOptions()...)
	web := httptest.NewServer(srv.Handler(http.NotFoundHandler()))
	t.Cleanup(web.Close)

	const (
		envoyTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
		envoySpan   = "00f067aa0ba902b7"
		egressTrace = "0af7651916cd43dd8448eb211c80319c"
		egressSpan  = "b7ad6b7169203331"
	)
	tp := func(trace, span string) string { return "00-" + trace + "-" + span + "-01" }
	cases := []struct {
		name              string
		mode              string // grpc or http
		path, token       string
		headers, metadata map[string]string
		wantTrace         string // "" : a root span of its own
		wantParent        string
		want              map[string]string
	}{
		{name: "allowed, traceparent in the request headers", mode: "grpc", path: "/v1/orgs/acme/projects/web/runtime/q1", token: "alice",
			headers: map[string]string{"traceparent": tp(envoyTrace, envoySpan)}, wantTrace: envoyTrace, wantParent: envoySpan,
			want: map[string]string{"rill.check.decision": "allowed", "rill.check.kind": "user", "rill.check.reason": "ok", "rill.org": "acme",
				"rill.project": "web", "rill.permission": "read_prod", "rill.check.status": "200", "http.request.method": "GET"}},
		{name: "denied: lacks the permission", mode: "grpc", path: "/v1/orgs/acme/projects/data/runtime/q2", token: "alice",
			headers: map[string]string{"traceparent": "00-" + envoyTrace[:31] + "1-" + envoySpan + "-01"}, wantTrace: envoyTrace[:31] + "1", wantParent: envoySpan,
			want: map[string]string{"rill.check.decision": "denied", "rill.check.kind": "user", "rill.check.reason": "forbidden", "rill.org": "acme",
				"rill.project": "data", "rill.check.status": "403"}},
		{name: "denied: revoked token", mode: "grpc", path: "/v1/orgs/acme/projects/web/runtime/q3", token: "revoked",
			headers: map[string]string{"traceparent": "00-" + envoyTrace[:31] + "2-" + envoySpan + "-01"}, wantTrace: envoyTrace[:31] + "2", wantParent: envoySpan,
			want: map[string]string{"rill.check.decision": "denied", "rill.check.kind": "user", "rill.check.reason": "revoked", "rill.check.status": "401"}},
		{name: "Envoy's ext_authz span in the call's metadata comes first", mode: "grpc", path: "/v1/orgs/acme/projects/web/runtime/q4", token: "svc",
			headers: map[string]string{"traceparent": tp(envoyTrace, envoySpan)}, metadata: map[string]string{"traceparent": tp(egressTrace, egressSpan)},
			wantTrace: egressTrace, wantParent: egressSpan, want: map[string]string{"rill.check.decision": "allowed", "rill.check.kind": "service"}},
		{name: "a malformed traceparent is ignored: a root span", mode: "grpc", path: "/v1/orgs/acme/projects/web/runtime/q5", token: "alice",
			headers: map[string]string{"traceparent": "00-zz-" + envoySpan + "-01"}, want: map[string]string{"rill.check.decision": "allowed"}},
		{name: "no traceparent: a root span", mode: "grpc", path: "/v1/orgs/acme/projects/web/runtime/q6", token: "bob",
			want: map[string]string{"rill.check.decision": "allowed"}},
		{name: "HTTP mode (forward-auth)", mode: "http", path: "/v1/orgs/acme/projects/web/runtime/q7", token: "alice",
			headers: map[string]string{"traceparent": "00-" + envoyTrace[:31] + "7-" + envoySpan + "-01"}, wantTrace: envoyTrace[:31] + "7", wantParent: envoySpan,
			want: map[string]string{"rill.check.decision": "allowed", "rill.check.kind": "user", "rill.org": "acme", "rill.project": "web",
				"url.path": "/v1/orgs/acme/projects/web/runtime/q7"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			secret := f.tokens[c.token]
			switch c.mode {
			case "grpc":
				h := map[string]string{"authorization": "Bearer " + secret}
				for k, v := range c.headers {
					h[k] = v
				}
				ctx := context.Background()
				if c.metadata != nil {
					ctx = metadata.NewOutgoingContext(ctx, metadata.New(c.metadata))
				}
				// A query the span must not keep.
				if _, err := client.Check(ctx, envoyRequest("GET", c.path+"?access_token="+secret, h, nil)); err != nil {
					t.Fatal(err)
				}
			case "http":
				req, _ := http.NewRequest("GET", web.URL+extauthz.HTTPPrefix, nil)
				req.Header.Set("Authorization", "Bearer "+secret)
				req.Header.Set("X-Forwarded-Uri", c.path)
				for k, v := range c.headers {
					req.Header.Set(k, v)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
			}
			s := rcv.WaitSpan(t, "rill-authd check", func(s testenv.Span) bool { return s.Attrs()["url.path"] == c.path }, 10*time.Second)
			if c.wantTrace != "" && (s.TraceID() != c.wantTrace || s.ParentID() != c.wantParent) {
				t.Errorf("span in trace %s under %s; want trace %s under %s", s.TraceID(), s.ParentID(), c.wantTrace, c.wantParent)
			}
			if c.wantTrace == "" && (len(s.ParentSpanId) != 0 || s.TraceID() == envoyTrace) {
				t.Errorf("span in trace %s under %q; want a root span of a new trace", s.TraceID(), s.ParentID())
			}
			if s.Kind.String() != "SPAN_KIND_SERVER" {
				t.Errorf("span kind %v; want server", s.Kind)
			}
			got := s.Attrs()
			for k, v := range c.want {
				if got[k] != v {
					t.Errorf("attribute %s = %q; want %q (all: %v)", k, got[k], v, got)
				}
			}
			if s.Resource["service.name"] != "rill-authd" {
				t.Errorf("resource service.name = %q; want rill-authd", s.Resource["service.name"])
			}
		})
	}
	// No span holds a credential: not in its name, attributes, events or resource.
	for _, s := range rcv.Spans() {
		all := s.String() + " " + strings.Join(values(s.Resource), " ")
		for name, tok := range f.tokens {
			if strings.Contains(all, tok) {
				t.Errorf("span %q holds the token %s", s.Name, name)
			}
		}
		if strings.Contains(all, "Bearer") || strings.Contains(all, "access_token") {
			t.Errorf("span %q holds the authorization header or the query: %s", s.Name, all)
		}
	}
}

func values(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// TestCheckWithTracingOffDoesNotAllocate: the check path with tracing on in the process but
// not for this server (a nil Tracer) is the check path as it was: no allocation.
func TestCheckWithTracingOffDoesNotAllocate(t *testing.T) {
	f := newFixture(t, resolver.Options{})
	srv := extauthz.New(f.res, extauthz.Config{Tracer: (*tracing.Provider)(nil).ServerTracer()})
	ctx := context.Background()
	req := envoyRequest("GET", "/v1/orgs/acme/projects/web/runtime/query",
		map[string]string{"authorization": "Bearer " + f.tokens["alice"], "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, nil)
	if r := srv.Check(ctx, req); r.GetStatus().GetCode() != 0 {
		t.Fatalf("not allowed: %v", r.GetStatus())
	}
	if n := testing.AllocsPerRun(1000, func() { srv.Check(ctx, req) }); n != 0 {
		t.Fatalf("an allowed check with tracing off allocates %v times", n)
	}
}

// TestREADMEEnvoyTracing parses the README's Envoy tracing block (### Traces) as the
// connection manager's tracing field, with go-control-plane, as envoy.yaml is parsed.
func TestREADMEEnvoyTracing(t *testing.T) {
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(raw), "# in the http_connection_manager of envoy.yaml\n")
	if !ok {
		t.Fatal("README: no Envoy tracing block")
	}
	block, _, _ = strings.Cut(block, "```")
	var doc any
	if err := yaml.Unmarshal([]byte(block), &doc); err != nil {
		t.Fatalf("README's tracing block is not YAML: %v", err)
	}
	js, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var hcm hcmv3.HttpConnectionManager
	if err := protojson.Unmarshal(js, &hcm); err != nil {
		t.Fatalf("README's tracing block is not an http_connection_manager's: %v", err)
	}
	tr := hcm.GetTracing()
	testenv.ValidateEnvoy(t, "tracing", tr.ProtoReflect())
	if tr.GetRandomSampling().GetValue() != 1 {
		t.Errorf("random_sampling %v; want 1 (percent)", tr.GetRandomSampling())
	}
	var otel tracev3.OpenTelemetryConfig
	if err := tr.GetProvider().GetTypedConfig().UnmarshalTo(&otel); err != nil || otel.GetGrpcService().GetEnvoyGrpc().GetClusterName() == "" {
		t.Errorf("provider is not an OpenTelemetry tracer with a gRPC collector: %v %v", err, &otel)
	}
}
