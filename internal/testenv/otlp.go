package testenv

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
)

// OTLPReceiver is a real OTLP trace receiver: the collector's TraceService, served by a gRPC
// server on 127.0.0.1 port 0, keeping every span it is sent.
type OTLPReceiver struct {
	collectortrace.UnimplementedTraceServiceServer
	Addr string // host:port

	mu       sync.Mutex
	spans    []Span
	exports  int
	received chan struct{}
}

// Span is a received span with its resource's attributes.
type Span struct {
	*tracepb.Span
	Resource map[string]string
}

// TraceID and SpanID, ParentID are the ids in hex, as in a traceparent.
func (s Span) TraceID() string  { return hex.EncodeToString(s.Span.TraceId) }
func (s Span) SpanID() string   { return hex.EncodeToString(s.Span.SpanId) }
func (s Span) ParentID() string { return hex.EncodeToString(s.Span.ParentSpanId) }

// Attrs are the span's attributes as strings.
func (s Span) Attrs() map[string]string { return attrs(s.Attributes) }

func attrs(kvs []*commonpb.KeyValue) map[string]string {
	out := map[string]string{}
	for _, kv := range kvs {
		v := kv.GetValue()
		switch x := v.GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			out[kv.Key] = x.StringValue
		case *commonpb.AnyValue_IntValue:
			out[kv.Key] = fmt.Sprint(x.IntValue)
		case *commonpb.AnyValue_BoolValue:
			out[kv.Key] = fmt.Sprint(x.BoolValue)
		case *commonpb.AnyValue_DoubleValue:
			out[kv.Key] = fmt.Sprint(x.DoubleValue)
		default:
			out[kv.Key] = v.String()
		}
	}
	return out
}

// StartOTLPReceiver serves a receiver until the test ends.
func StartOTLPReceiver(t testing.TB) *OTLPReceiver {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &OTLPReceiver{Addr: lis.Addr().String(), received: make(chan struct{}, 1)}
	g := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(g, r)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	return r
}

// Export implements the collector's TraceService.
func (r *OTLPReceiver) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	r.exports++
	for _, rs := range req.GetResourceSpans() {
		res := attrs(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				r.spans = append(r.spans, Span{Span: sp, Resource: res})
			}
		}
	}
	r.mu.Unlock()
	select {
	case r.received <- struct{}{}:
	default:
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// Spans are the spans received so far.
func (r *OTLPReceiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.spans...)
}

// Env sets the OTEL_* variables that send a process's traces here over gRPC, every span
// sampled unless the test sets OTEL_TRACES_SAMPLER itself, and exported within 50 ms.
func (r *OTLPReceiver) Env(t testing.TB) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+r.Addr)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
}

// WaitSpan waits up to timeout for a span named name (a prefix, when it ends in "*") that
// match accepts (nil: any), and fails the test without one.
func (r *OTLPReceiver) WaitSpan(t testing.TB, name string, match func(Span) bool, timeout time.Duration) Span {
	t.Helper()
	deadline := time.After(timeout)
	for {
		for _, s := range r.Spans() {
			ok := s.Name == name
			if p, found := strings.CutSuffix(name, "*"); found {
				ok = strings.HasPrefix(s.Name, p)
			}
			if ok && (match == nil || match(s)) {
				return s
			}
		}
		select {
		case <-r.received:
		case <-deadline:
			var names []string
			for _, s := range r.Spans() {
				names = append(names, s.Name)
			}
			t.Fatalf("no span %q received within %v; received: %q", name, timeout, names)
			return Span{}
		}
	}
}
