package tracing

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// QueryTracer is a pgx.QueryTracer (set on the pool's ConnConfig.Tracer) that makes each query
// a client span. Ours rather than a third-party otelpgx module: the OpenTelemetry project ships
// none for pgx, the hook is a dozen lines, and we decide what a span may hold: the SQL text
// (every query of the store is parameterized) but never an argument, since arguments are token
// hashes, encrypted keys and users' data.
//
// A query only becomes a span inside a traced piece of work (a check, an admin request): the
// store's own background queries (the change feed's poll every second, maintenance) would be a
// stream of root spans that tell nothing.
type QueryTracer struct{ tracer trace.Tracer }

// QueryTracer is the tracer for the PostgreSQL pool, nil when tracing is off.
func (p *Provider) QueryTracer() *QueryTracer {
	if p == nil {
		return nil
	}
	return &QueryTracer{tracer: p.tracer}
}

var _ pgx.QueryTracer = (*QueryTracer)(nil)

// TraceQueryStart starts the span of a query under the work in ctx.
func (q *QueryTracer) TraceQueryStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	op := operation(data.SQL)
	attrs := []attribute.KeyValue{
		attribute.String("db.system.name", "postgresql"),
		attribute.String("db.operation.name", op),
		attribute.String("db.query.text", data.SQL),
	}
	if conn != nil {
		if cfg := conn.Config(); cfg != nil {
			attrs = append(attrs, attribute.String("db.namespace", cfg.Database), attribute.String("server.address", cfg.Host),
				attribute.Int("server.port", int(cfg.Port)))
		}
	}
	ctx, span := q.tracer.Start(ctx, "postgresql "+op, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return context.WithValue(ctx, querySpanKey{}, span)
}

// querySpanKey holds the span of the query in its context: the span in ctx may be the caller's
// (a query outside traced work has none of its own), which TraceQueryEnd must not end.
type querySpanKey struct{}

// TraceQueryEnd ends the span TraceQueryStart started, with the query's error if any.
func (q *QueryTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	span, ok := ctx.Value(querySpanKey{}).(trace.Span)
	if !ok {
		return
	}
	if !span.IsRecording() {
		span.End()
		return
	}
	if data.Err != nil {
		span.RecordError(data.Err)
		span.SetStatus(codes.Error, "query failed")
	} else {
		span.SetAttributes(attribute.Int64("db.response.returned_rows", data.CommandTag.RowsAffected()))
	}
	span.End()
}

// operation is the SQL command of a query (SELECT, INSERT, ...), for the span's name: short and
// of low cardinality, as span names should be.
func operation(sql string) string {
	sql = strings.TrimSpace(sql)
	for strings.HasPrefix(sql, "--") { // a leading comment line
		_, sql, _ = strings.Cut(sql, "\n")
		sql = strings.TrimSpace(sql)
	}
	end := strings.IndexFunc(sql, func(r rune) bool { return r == ' ' || r == '\n' || r == '\t' || r == '(' || r == ';' })
	if end < 0 {
		end = len(sql)
	}
	if end == 0 || end > 16 {
		return "query"
	}
	return strings.ToUpper(sql[:end])
}
