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
	p := &Provider{sampler: sampler.Description()}
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

// Parent is ctx with the remote span the first carrier that holds a valid traceparent names,
// or ctx as it is when none does (the span started under it is then a root).
func Parent(ctx context.Context, carriers ...propagation.TextMapCarrier) context.Context {
	for _, c := range carriers {
		if c == nil {
			continue
		}
		if pc := propagator.Extract(ctx, c); trace.SpanContextFromContext(pc).IsValid() {
			return pc
		}
	}
	return ctx
}

// MetadataCarrier reads trace context from gRPC metadata (keys in lower case, as gRPC keeps
// them).
type MetadataCarrier map[string][]string

// Get returns the first value of key.
func (m MetadataCarrier) Get(key string) string {
	if v := m[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Set is not used: we never inject into metadata.
func (m MetadataCarrier) Set(key, value string) { m[key] = []string{value} }

// Keys lists the keys.
func (m MetadataCarrier) Keys() []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
