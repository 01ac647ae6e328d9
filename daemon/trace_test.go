package daemon_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/rill-authd/rill-authd/internal/testenv"
)

const (
	gatewayTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	gatewaySpan  = "00f067aa0ba902b7"
)

// tracedDo sends an admin request with a traceparent and returns the status and body.
func tracedDo(t *testing.T, method, url, bearer, body, traceparent string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Content-Type", "application/json")
	if traceparent != "" {
		req.Header.Set("traceparent", traceparent)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// noSecretIn fails t if any received span holds one of secrets.
func noSecretIn(t *testing.T, rcv *testenv.OTLPReceiver, secrets ...string) {
	t.Helper()
	for _, s := range rcv.Spans() {
		all := s.String()
		for _, v := range s.Resource {
			all += " " + v
		}
		for _, sec := range secrets {
			if sec != "" && strings.Contains(all, sec) {
				t.Errorf("span %q holds a secret: %s", s.Name, all)
			}
		}
		if strings.Contains(all, "Bearer") {
			t.Errorf("span %q holds an authorization header: %s", s.Name, all)
		}
	}
}

// TestTracesFromTheDaemon runs the real daemon with the OTEL_* variables pointing at a real
// OTLP receiver and a batch delay of ten minutes, so the spans arrive only because Shutdown
// flushes them: an admin request's span under the caller's traceparent, a check's span under
// Envoy's, none for the probes, no token in any.
func TestTracesFromTheDaemon(t *testing.T) {
	rcv := testenv.StartOTLPReceiver(t)
	rcv.Env(t)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "600000")
	t.Setenv("OTEL_SERVICE_NAME", "authd-under-test")
	d := testenv.Start(t, "")
	if !strings.Contains(d.Stderr(), "traces: on") || !strings.Contains(d.Stderr(), "protocol=grpc") {
		t.Fatalf("no start-up line for traces:\n%s", d.Stderr())
	}
	adminParent := "00-" + gatewayTrace[:31] + "a-" + gatewaySpan + "-01"
	if code, body := tracedDo(t, "POST", d.URL()+"/v1/orgs", d.Token, `{"name":"acme"}`, adminParent); code != 201 && code != 200 {
		t.Fatalf("create org: %d %s", code, body)
	}
	code, issued := tracedDo(t, "POST", d.URL()+"/v1/tokens", d.Token, `{"display_name":"traced"}`, adminParent)
	if code != 201 && code != 200 {
		t.Fatalf("issue token: %d %s", code, issued)
	}
	get(t, d.URL()+"/healthz")
	get(t, d.URL()+"/readyz")

	conn, err := grpc.NewClient(d.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
		Method: "GET", Path: "/v1/orgs/acme/projects/web/runtime/query",
		Headers: map[string]string{"authorization": "Bearer " + d.Token, "traceparent": "00-" + gatewayTrace + "-" + gatewaySpan + "-01"},
	}}}}
	if _, err := authv3.NewAuthorizationClient(conn).Check(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if n := len(rcv.Spans()); n != 0 {
		t.Fatalf("%d spans exported before shutdown with a 10-minute batch delay; the test cannot tell a flush", n)
	}
	d.Stop(t)

	check := rcv.WaitSpan(t, "rill-authd check", nil, 10*time.Second)
	if check.TraceID() != gatewayTrace || check.ParentID() != gatewaySpan {
		t.Errorf("check span in trace %s under %s; want %s under %s", check.TraceID(), check.ParentID(), gatewayTrace, gatewaySpan)
	}
	if a := check.Attrs(); a["rill.check.decision"] != "allowed" || a["rill.org"] != "acme" || a["rill.project"] != "web" || a["rill.check.kind"] != "user" {
		t.Errorf("check span attributes %v", a)
	}
	if check.Resource["service.name"] != "authd-under-test" {
		t.Errorf("service.name %q; want OTEL_SERVICE_NAME's", check.Resource["service.name"])
	}
	admin := rcv.WaitSpan(t, "POST /v1/orgs", nil, time.Second)
	if admin.TraceID() != gatewayTrace[:31]+"a" || admin.ParentID() != gatewaySpan {
		t.Errorf("admin span in trace %s under %s; want the caller's", admin.TraceID(), admin.ParentID())
	}
	if a := admin.Attrs(); a["http.route"] != "/v1/orgs" || a["http.response.status_code"] != "201" || a["http.request.method"] != "POST" {
		t.Errorf("admin span attributes %v", a)
	}
	rcv.WaitSpan(t, "POST /v1/tokens", nil, time.Second)
	for _, s := range rcv.Spans() {
		if p := s.Attrs()["url.path"]; p == "/healthz" || p == "/readyz" {
			t.Errorf("a span for the probe %s", p)
		}
	}
	noSecretIn(t, rcv, d.Token, secretOf(issued))
}

// secretOf is the rill_usr_ token in an issue response's body.
func secretOf(body string) string {
	i := strings.Index(body, "rill_usr_")
	if i < 0 {
		return ""
	}
	return body[i : i+9+60]
}

// TestTracesOff: with an endpoint set but OTEL_TRACES_EXPORTER=none, the daemon sends nothing
// and says nothing of traces.
func TestTracesOff(t *testing.T) {
	rcv := testenv.StartOTLPReceiver(t)
	rcv.Env(t)
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	d := testenv.Start(t, "")
	tracedDo(t, "GET", d.URL()+"/v1/orgs", d.Token, "", "00-"+gatewayTrace+"-"+gatewaySpan+"-01")
	d.Stop(t)
	if strings.Contains(d.Stderr(), "traces: on") {
		t.Errorf("traces on with OTEL_TRACES_EXPORTER=none:\n%s", d.Stderr())
	}
	if n := len(rcv.Spans()); n != 0 {
		t.Errorf("%d spans received with OTEL_TRACES_EXPORTER=none", n)
	}
}

// TestTracesBadSettings: a sampler or protocol that does not parse stops the start with a line
// that names the variable, rather than tracing with a default no one asked for.
func TestTracesBadSettings(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	t.Setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
	t.Setenv("OTEL_TRACES_SAMPLER_ARG", "1%")
	d := testenv.Spawn(t, "")
	select {
	case <-d.Exited():
	case <-time.After(30 * time.Second):
		t.Fatal("the daemon started with OTEL_TRACES_SAMPLER_ARG=1%")
	}
	if !strings.Contains(d.Stderr(), `OTEL_TRACES_SAMPLER_ARG="1%": want a ratio from 0 to 1`) {
		t.Fatalf("stderr does not name the variable:\n%s", d.Stderr())
	}
}

// TestTracesPostgres: an admin request on the PostgreSQL store has the store's queries as
// child spans, with the SQL text but never an argument (a token's hash, a secret).
func TestTracesPostgres(t *testing.T) {
	dbURL, name := testenv.PostgresDB(t, "")
	rcv := testenv.StartOTLPReceiver(t)
	rcv.Env(t)
	d := testenv.Start(t, "", "--store", dbURL)
	parent := "00-" + gatewayTrace[:31] + "b-" + gatewaySpan + "-01"
	if code, body := tracedDo(t, "POST", d.URL()+"/v1/orgs", d.Token, `{"name":"acme"}`, parent); code != 201 && code != 200 {
		t.Fatalf("create org: %d %s", code, body)
	}
	code, issued := tracedDo(t, "POST", d.URL()+"/v1/tokens", d.Token, `{"display_name":"traced"}`, parent)
	if code != 201 && code != 200 {
		t.Fatalf("issue token: %d %s", code, issued)
	}
	admin := rcv.WaitSpan(t, "POST /v1/orgs", nil, 10*time.Second)
	q := rcv.WaitSpan(t, "postgresql INSERT", func(s testenv.Span) bool {
		return s.ParentID() == admin.SpanID() && strings.Contains(s.Attrs()["db.query.text"], "orgs")
	}, 10*time.Second)
	a := q.Attrs()
	if q.TraceID() != admin.TraceID() || a["db.system.name"] != "postgresql" || a["db.namespace"] != name || a["db.operation.name"] != "INSERT" {
		t.Errorf("query span in trace %s (admin %s), attributes %v", q.TraceID(), admin.TraceID(), a)
	}
	if q.Kind.String() != "SPAN_KIND_CLIENT" {
		t.Errorf("query span kind %v; want client", q.Kind)
	}
	d.Stop(t)
	// Background work (the feed's poll, maintenance) makes no root spans of queries.
	for _, s := range rcv.Spans() {
		if strings.HasPrefix(s.Name, "postgresql ") && len(s.ParentSpanId) == 0 {
			t.Errorf("a root span for a query outside any request: %s", s.Attrs()["db.query.text"])
		}
	}
	noSecretIn(t, rcv, d.Token, secretOf(issued), "password")
}
