package tracing

import (
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// untraced are the paths probed every few seconds by orchestrators and scrapers: a span for
// each would be most of the traces and tell nothing.
var untraced = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// Handler wraps the admin HTTP API (and the console) so that each request is a server span,
// a child of the caller's traceparent when it sends one. The span is named by the route that
// served it (the ServeMux pattern, "GET /v1/orgs/{org}/services"), not by the path, and records
// method, route, path (no query) and status; never a header, so never a credential. With
// tracing off it is next itself.
func (p *Provider) Handler(next http.Handler) http.Handler {
	if p == nil {
		return next
	}
	tr := p.tracer
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if untraced[r.URL.Path] {
			next.ServeHTTP(w, r)
			return
		}
		ctx := Parent(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := tr.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		r = r.WithContext(ctx)
		next.ServeHTTP(sw, r)
		if !span.IsRecording() {
			return
		}
		// The mux set the pattern on the request it was given: r.
		route := r.Pattern
		if route != "" {
			if _, path, ok := strings.Cut(route, " "); ok {
				route = path
			}
			span.SetName(r.Method + " " + route)
		}
		span.SetAttributes(
			attribute.String("http.request.method", r.Method),
			attribute.String("http.route", route),
			attribute.String("url.path", r.URL.Path),
			attribute.Int("http.response.status_code", sw.status),
		)
		if sw.status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(sw.status))
		}
	})
}

// statusWriter records the status a handler wrote. Unwrap lets http.ResponseController reach
// the connection (the backup and recovery handlers set deadlines through it).
type statusWriter struct {
	http.ResponseWriter
	status  int
	written bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.written {
		w.status, w.written = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.written = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush passes a flush on, for handlers that stream.
func (w *statusWriter) Flush() {
	w.written = true // a flush sends the header: 200 unless one was written
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
