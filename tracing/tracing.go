// Package tracing sets up OpenTelemetry traces from the standard OTEL_* environment variables
// and exports them over OTLP. Spans are started where the work is (the check in extauthz, the
// admin requests and PostgreSQL queries through the helpers here); this package only builds the
// provider, the propagation of W3C trace context, and those helpers.
//
// Tracing is off unless the environment asks for it (see FromEnv); when it is off every helper
// here is a nil (a nil *Provider, a nil trace.Tracer), and the check path tests for nil and does
// nothing more, so it keeps its zero allocations.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Name is the instrumentation scope of our spans, and the default service.name.
const (
	Name        = "github.com/rill-authd/rill-authd"
	ServiceName = "rill-authd"
)

// ShutdownTimeout bounds how long Shutdown waits for the last spans to reach the collector: a
// collector that is down must not hold up the daemon's exit.
const ShutdownTimeout = 5 * time.Second

// Provider is the tracing set-up of a process. A nil *Provider is tracing off: its methods
// return nil tracers and pass handlers through.
type Provider struct {
	tp       *sdktrace.TracerProvider
	tracer   trace.Tracer
	protocol string
	endpoint string
	sampler  string
	// followsParent: the sampler is parent-based, so a remote parent that is not sampled makes
	// a span that is not sampled either (ServerTracer's shortcut).
	followsParent bool
}

// String describes the settings FromEnv found.
func (p *Provider) String() string {
	if p == nil {
		return "off"
	}
	return fmt.Sprintf("otlp %s to %s, sampler %s", p.protocol, p.endpoint, p.sampler)
}

// LogAttrs are the settings as log attributes, for the start-up line.
func (p *Provider) LogAttrs() []any {
	if p == nil {
		return []any{"traces", "off"}
	}
	return []any{"traces", "otlp", "protocol", p.protocol, "endpoint", p.endpoint, "sampler", p.sampler}
}

// Tracer is the tracer of our spans, nil when tracing is off.
func (p *Provider) Tracer() trace.Tracer {
	if p == nil {
		return nil
	}
	return p.tracer
}

// Shutdown sends the spans still buffered and stops the exporter, within ctx and at most
// ShutdownTimeout.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, ShutdownTimeout)
	defer cancel()
	if err := p.tp.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: flush spans to %s: %w", p.endpoint, err)
	}
	return nil
}

// ForceFlush sends the spans buffered so far (tests read them at the collector).
func (p *Provider) ForceFlush(ctx context.Context) error {
	if p == nil {
		return nil
	}
	return p.tp.ForceFlush(ctx)
}

// Enabled reports whether the environment turns tracing on, and why not when it is an error:
//
//   - OTEL_SDK_DISABLED=true: off.
//   - OTEL_TRACES_EXPORTER=none: off; =otlp: on (to the default endpoint if none is set);
//     any other exporter is an error (only OTLP is built in).
//   - OTEL_TRACES_EXPORTER unset or empty: on exactly when OTEL_EXPORTER_OTLP_ENDPOINT or
//     OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set. The specification's default exporter is otlp,
//     but a sidecar that starts sending spans to localhost because nothing was configured is a
//     surprise: naming where the spans go is what turns tracing on.
func Enabled(getenv func(string) string) (bool, error) {
	if v := strings.TrimSpace(getenv("OTEL_SDK_DISABLED")); v != "" {
		disabled, err := strconv.ParseBool(v)
		if err != nil {
			return false, fmt.Errorf("OTEL_SDK_DISABLED=%q: want true or false", v)
		}
		if disabled {
			return false, nil
		}
	}
	switch e := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER"))); e {
	case "none":
		return false, nil
	case "otlp":
		return true, nil
	case "":
		return getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "", nil
	default:
		return false, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: rill-authd exports traces over OTLP only: want otlp or none", e)
	}
}

// FromEnv builds the tracing set-up the OTEL_* environment variables ask for, or returns nil
// (tracing off, see Enabled). The exporter, its endpoint, headers, TLS, compression and timeout,
// and the batch processor read their own variables (OTEL_EXPORTER_OTLP_*, OTEL_BSP_*) as the
// OpenTelemetry specification defines them; the protocol (OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL,
// grpc or http/protobuf, default http/protobuf), the sampler (OTEL_TRACES_SAMPLER[_ARG],
// default parentbased_always_on) and the resource (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES;
// service.name defaults to rill-authd) are read here, and a value that does not parse is an
// error rather than a silent default. Nothing is dialed before the first export.
func FromEnv(ctx context.Context, version string, log *slog.Logger) (*Provider, error) {
	on, err := Enabled(os.Getenv)
	if err != nil || !on {
		return nil, err
	}
	sampler, err := samplerFromEnv(os.Getenv)
	if err != nil {
		return nil, err
	}
	name := strings.ToLower(strings.TrimSpace(os.Getenv("OTEL_TRACES_SAMPLER")))
	p := &Provider{sampler: sampler.Description(), followsParent: name == "" || strings.HasPrefix(name, "parentbased_")}
	p.protocol = firstEnv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
	if p.protocol == "" {
		p.protocol = "http/protobuf"
	}
	var exp sdktrace.SpanExporter
	switch p.protocol {
	case "grpc":
		p.endpoint = endpoint("localhost:4317", "")
		exp, err = otlptracegrpc.New(ctx)
	case "http/protobuf":
		p.endpoint = endpoint("localhost:4318", "/v1/traces")
		exp, err = otlptracehttp.New(ctx)
	default:
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%q: want grpc or http/protobuf", p.protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", ServiceName)}
	if version != "" {
		attrs = append(attrs, attribute.String("service.version", version))
	}
	// Later detectors win: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override our defaults.
	res, err := resource.New(ctx, resource.WithAttributes(attrs...), resource.WithTelemetrySDK(), resource.WithHost(), resource.WithFromEnv())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	p.tp = sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res), sdktrace.WithSampler(sampler))
	p.tracer = p.tp.Tracer(Name, trace.WithInstrumentationVersion(version))
	if log != nil {
		// The SDK reports failed exports here; without this they go to the standard logger.
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("tracing: exporting spans failed", "err", err) }))
	}
	return p, nil
}

// samplerFromEnv is the sampler OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG name (the
// SDK reads them too, but falls back to a default on a value it cannot parse, silently).
func samplerFromEnv(getenv func(string) string) (sdktrace.Sampler, error) {
	name := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER")))
	arg := strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER_ARG"))
	ratio := func() (sdktrace.Sampler, error) {
		if arg == "" {
			return sdktrace.TraceIDRatioBased(1), nil
		}
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return nil, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG=%q: want a ratio from 0 to 1", arg)
		}
		return sdktrace.TraceIDRatioBased(r), nil
	}
	switch name {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "traceidratio":
		return ratio()
	case "parentbased_traceidratio":
		s, err := ratio()
		if err != nil {
			return nil, err
		}
		return sdktrace.ParentBased(s), nil
	}
	return nil, fmt.Errorf("OTEL_TRACES_SAMPLER=%q: want always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio", name)
}

// endpoint is where spans go, for the log line: the variables' value, or the default.
func endpoint(def, path string) string {
	if e := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); e != "" {
		return e
	}
	if e := os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT"); e != "" {
		return strings.TrimSuffix(e, "/") + path
	}
	return def + path
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := strings.ToLower(strings.TrimSpace(os.Getenv(n))); v != "" {
			return v
		}
	}
	return ""
}

// propagator reads W3C trace context (traceparent, tracestate): what Envoy's OpenTelemetry
// tracer, nginx's otel module and the OpenTelemetry SDKs send.
var propagator = propagation.TraceContext{}

// Parent is ctx with the remote span c's traceparent names, or ctx as it is when c holds no
// valid one (the span started under it is then a root).
func Parent(ctx context.Context, c propagation.TextMapCarrier) context.Context {
	return propagator.Extract(ctx, c)
}

// ServerTracer starts the server spans of requests that come with a gateway's trace context,
// at the least cost to a request whose trace is not sampled: with a parent-based sampler (the
// default) a valid traceparent whose sampled flag is off yields a span that records nothing and
// has no children, so Start returns one made once instead of parsing the context into a
// new one. Every other request takes the SDK's ordinary path.
type ServerTracer struct {
	tracer        trace.Tracer
	followsParent bool
}

// ServerTracer is the tracer of the check's spans, nil when tracing is off.
func (p *Provider) ServerTracer() *ServerTracer {
	if p == nil {
		return nil
	}
	return &ServerTracer{tracer: p.tracer, followsParent: p.followsParent}
}

// serverSpan are the options of every server span, made once.
var serverSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}

// unsampled is a span that records nothing and names no trace: what a child of a parent that
// is not sampled comes to under a parent-based sampler, for no allocation.
var unsampled = trace.SpanFromContext(context.Background())

// Start starts a server span named name under the W3C trace context traceparent and tracestate
// ("" when the request has none: a root span, which the sampler's ratio decides).
func (s *ServerTracer) Start(ctx context.Context, name, traceparent, tracestate string) (context.Context, trace.Span) {
	if traceparent != "" {
		if s.followsParent {
			if valid, sampled := parseTraceparent(traceparent); valid && !sampled {
				return ctx, unsampled
			}
		}
		ctx = Parent(ctx, propagation.MapCarrier{"traceparent": traceparent, "tracestate": tracestate})
	}
	return s.tracer.Start(ctx, name, serverSpan...)
}

// parseTraceparent reports whether h is a version-00 traceparent the W3C propagator accepts
// (00-<32 hex trace id, not all zero>-<16 hex span id, not all zero>-<2 hex flags>), and whether
// its sampled flag is set. Another version, or a malformed header, is not valid here: it takes
// the propagator's path.
func parseTraceparent(h string) (valid, sampled bool) {
	if len(h) != 55 || h[0] != '0' || h[1] != '0' || h[2] != '-' || h[35] != '-' || h[52] != '-' {
		return false, false
	}
	traceID, spanID, flags := h[3:35], h[36:52], h[53:55]
	if !lowerHex(traceID) || !lowerHex(spanID) || !lowerHex(flags) || strings.Trim(traceID, "0") == "" || strings.Trim(spanID, "0") == "" {
		return false, false
	}
	// The sampled flag is the lowest bit of the last hex digit; '1', '3', ..., 'd', 'f' are odd.
	c := flags[1]
	if c >= 'a' {
		c -= 'a' - 10
	} else {
		c -= '0'
	}
	return true, c&1 == 1
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
