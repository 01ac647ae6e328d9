package tracing

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

func TestEnabled(t *testing.T) {
	cases := []struct {
		env     map[string]string
		want    bool
		wantErr string
	}{
		{env: nil, want: false},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, want: true},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, want: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, want: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": " OTLP "}, want: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, want: false},
		{env: map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, want: false},
		{env: map[string]string{"OTEL_SDK_DISABLED": "false", "OTEL_TRACES_EXPORTER": "otlp"}, want: true},
		{env: map[string]string{"OTEL_SDK_DISABLED": "yes"}, wantErr: `OTEL_SDK_DISABLED="yes"`},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, wantErr: "exports traces over OTLP only"},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp,console"}, wantErr: "exports traces over OTLP only"},
		{env: map[string]string{"OTEL_METRICS_EXPORTER": "otlp"}, want: false},
	}
	for _, c := range cases {
		got, err := Enabled(func(k string) string { return c.env[k] })
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("Enabled(%v) error %v; want one containing %q", c.env, err, c.wantErr)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Enabled(%v) = %v, %v; want %v", c.env, got, err, c.want)
		}
	}
}

func TestSamplerFromEnv(t *testing.T) {
	cases := []struct {
		sampler, arg string
		want         string // the sampler's description, or the error's text
	}{
		{"", "", "ParentBased{root:AlwaysOnSampler"},
		{"parentbased_traceidratio", "0.01", "ParentBased{root:TraceIDRatioBased{0.01}"},
		{"parentbased_traceidratio", "", "ParentBased{root:TraceIDRatioBased{1}"},
		{"traceidratio", "0.5", "TraceIDRatioBased{0.5}"},
		{"always_off", "", "AlwaysOffSampler"},
		{"parentbased_always_off", "", "ParentBased{root:AlwaysOffSampler"},
		{"traceidratio", "2", `OTEL_TRACES_SAMPLER_ARG="2": want a ratio from 0 to 1`},
		{"traceidratio", "-0.1", `OTEL_TRACES_SAMPLER_ARG="-0.1"`},
		{"parentbased_traceidratio", "1%", `OTEL_TRACES_SAMPLER_ARG="1%"`},
		{"jaeger_remote", "", `OTEL_TRACES_SAMPLER="jaeger_remote": want always_on`},
	}
	for _, c := range cases {
		env := map[string]string{"OTEL_TRACES_SAMPLER": c.sampler, "OTEL_TRACES_SAMPLER_ARG": c.arg}
		s, err := samplerFromEnv(func(k string) string { return env[k] })
		got := ""
		if err != nil {
			got = err.Error()
		} else {
			got = s.Description()
		}
		if !strings.Contains(got, c.want) {
			t.Errorf("sampler %q arg %q: %s; want %s", c.sampler, c.arg, got, c.want)
		}
	}
}

// TestFromEnvOff: with nothing set, tracing is off and the nil Provider is harmless.
func TestFromEnvOff(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	t.Setenv("OTEL_TRACES_EXPORTER", "")
	p, err := FromEnv(context.Background(), "", nil)
	if p != nil || err != nil {
		t.Fatalf("FromEnv with nothing set = %v, %v; want nil, nil", p, err)
	}
	if p.Tracer() != nil || p.QueryTracer() != nil || p.Shutdown(context.Background()) != nil || p.String() != "off" {
		t.Fatal("a nil Provider is not off")
	}
	h := http.NotFoundHandler()
	if got := p.Handler(h); got == nil {
		t.Fatal("nil Provider's Handler is nil")
	}
}

func TestFromEnvErrors(t *testing.T) {
	cases := []struct{ name, value, want string }{
		{"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", `OTEL_EXPORTER_OTLP_PROTOCOL="http/json": want grpc or http/protobuf`},
		{"OTEL_TRACES_SAMPLER", "sometimes", `OTEL_TRACES_SAMPLER="sometimes"`},
		{"OTEL_TRACES_EXPORTER", "console", `OTEL_TRACES_EXPORTER="console"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
			t.Setenv(c.name, c.value)
			p, err := FromEnv(context.Background(), "", nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("FromEnv with %s=%s = %v, %v; want an error containing %q", c.name, c.value, p, err, c.want)
			}
		})
	}
}

// TestHTTPProtobuf: the default protocol is http/protobuf (the specification's), to
// OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces; a real HTTP endpoint decodes what it is sent.
func TestHTTPProtobuf(t *testing.T) {
	var mu sync.Mutex
	var names []string
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var req collectortrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		paths = append(paths, r.URL.Path)
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					names = append(names, s.Name)
				}
			}
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		b, _ = proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Write(b)
	}))
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "")
	p, err := FromEnv(context.Background(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.String(), "otlp http/protobuf to "+srv.URL+"/v1/traces") {
		t.Errorf("settings %q", p)
	}
	_, span := p.Tracer().Start(context.Background(), "over-http")
	span.End()
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(names) != 1 || names[0] != "over-http" || paths[0] != "/v1/traces" {
		t.Fatalf("received spans %q at %q; want over-http at /v1/traces", names, paths)
	}
}

// TestShutdownBounded: a collector that accepts connections and never answers does not hold
// up Shutdown past the caller's deadline; the error says the spans were not sent.
func TestShutdownBounded(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never read
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+lis.Addr().String())
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	p, err := FromEnv(context.Background(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, span := p.Tracer().Start(context.Background(), "stuck")
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Shutdown(ctx) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "flush spans to") {
			t.Fatalf("Shutdown to a stuck collector = %v; want an error", err)
		}
	case <-time.After(ShutdownTimeout + 5*time.Second):
		t.Fatal("Shutdown is not bounded")
	}
}

func TestOperation(t *testing.T) {
	for sql, want := range map[string]string{
		"SELECT 1":                              "SELECT",
		"  insert into orgs (name) values ($1)": "INSERT",
		"-- a comment\nUPDATE tokens SET x=1":   "UPDATE",
		"WITH x AS (SELECT 1) SELECT * FROM x":  "WITH",
		"select(1)":                             "SELECT",
		"":                                      "query",
		"averyveryverylongidentifierthatisnotsql x": "query",
	} {
		if got := operation(sql); got != want {
			t.Errorf("operation(%q) = %q; want %q", sql, got, want)
		}
	}
}

func TestParseTraceparent(t *testing.T) {
	const id, span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	cases := []struct {
		h              string
		valid, sampled bool
	}{
		{"00-" + id + "-" + span + "-01", true, true},
		{"00-" + id + "-" + span + "-00", true, false},
		{"00-" + id + "-" + span + "-03", true, true},
		{"00-" + id + "-" + span + "-0f", true, true},
		{"00-" + id + "-" + span + "-02", true, false},
		{"00-" + id + "-" + span + "-0e", true, false},
		{"00-00000000000000000000000000000000-" + span + "-00", false, false},
		{"00-" + id + "-0000000000000000-00", false, false},
		{"00-" + strings.ToUpper(id) + "-" + span + "-00", false, false},
		{"01-" + id + "-" + span + "-00", false, false},
		{"00-" + id + "-" + span + "-0g", false, false},
		{"00-" + id + "-" + span + "-00-extra", false, false},
		{"00_" + id + "-" + span + "-00", false, false},
		{"", false, false},
	}
	for _, c := range cases {
		if v, s := parseTraceparent(c.h); v != c.valid || s != c.sampled {
			t.Errorf("parseTraceparent(%q) = %v, %v; want %v, %v", c.h, v, s, c.valid, c.sampled)
		}
	}
}
