package tracing_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/internal/testenv"
	"github.com/rill-authd/rill-authd/tracing"
)

// TestServerTracerSampling: the shortcut for a parent that is not sampled gives what the SDK
// gives. With a parent-based sampler such a parent yields no span, even at ratio 1 (and a
// sampled parent always one, even at ratio 0); with a sampler that ignores the parent the
// ratio decides, and the span still joins the parent's trace.
func TestServerTracerSampling(t *testing.T) {
	const trace, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	cases := []struct {
		sampler, arg, flags string
		wantSpan            bool
	}{
		{"parentbased_traceidratio", "1", "00", false},
		{"parentbased_traceidratio", "0", "01", true},
		{"", "", "00", false},
		{"", "", "01", true},
		{"traceidratio", "1", "00", true},
		{"traceidratio", "0", "01", false},
		{"always_on", "", "00", true},
	}
	for i, c := range cases {
		t.Run(c.sampler+"/"+c.arg+"/"+c.flags, func(t *testing.T) {
			rcv := testenv.StartOTLPReceiver(t)
			rcv.Env(t)
			t.Setenv("OTEL_TRACES_SAMPLER", c.sampler)
			t.Setenv("OTEL_TRACES_SAMPLER_ARG", c.arg)
			p, err := tracing.FromEnv(context.Background(), "", nil)
			if err != nil {
				t.Fatal(err)
			}
			id := trace[:31] + string("0123456789abcdef"[i])
			_, span := p.ServerTracer().Start(context.Background(), "check", "00-"+id+"-"+parent+"-"+c.flags, "vendor=x")
			span.End()
			if err := p.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			spans := rcv.Spans()
			if got := len(spans) == 1; got != c.wantSpan || len(spans) > 1 {
				t.Fatalf("%d spans exported; want a span: %v", len(spans), c.wantSpan)
			}
			if c.wantSpan {
				s := spans[0]
				if s.TraceID() != id || s.ParentID() != parent || s.TraceState != "vendor=x" {
					t.Errorf("span in trace %s under %s, state %q; want %s under %s, vendor=x", s.TraceID(), s.ParentID(), s.TraceState, id, parent)
				}
			}
		})
	}
}

// TestHandler: an admin request's span is named by the route the mux chose, joins the caller's
// trace, records the status (a 5xx as an error), and leaves the handler's ResponseController
// working (the backup sets write deadlines through it); a probe gets no span.
func TestHandler(t *testing.T) {
	rcv := testenv.StartOTLPReceiver(t)
	rcv.Env(t)
	p, err := tracing.FromEnv(context.Background(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	var rcErr error
	mux.HandleFunc("GET /v1/things/{id}", func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		w.WriteHeader(http.StatusServiceUnavailable)
		rcErr = errors.Join(rc.SetWriteDeadline(time.Now().Add(time.Minute)), rc.Flush())
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {})
	srv := httptest.NewServer(p.Handler(mux))
	for _, path := range []string{"/v1/things/42", "/healthz"} {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	// The answer reaches us at the handler's flush, before it returns and its span ends: Close
	// waits for every request to finish (and rcErr to be written).
	srv.Close()
	if rcErr != nil {
		t.Errorf("the handler's ResponseController: %v", rcErr)
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := rcv.Spans()
	if len(spans) != 1 {
		t.Fatalf("%d spans; want 1 (none for /healthz)", len(spans))
	}
	s := spans[0]
	a := s.Attrs()
	if s.Name != "GET /v1/things/{id}" || a["http.route"] != "/v1/things/{id}" || a["url.path"] != "/v1/things/42" || a["http.response.status_code"] != "503" {
		t.Errorf("span %q attributes %v", s.Name, a)
	}
	if s.Status.GetCode().String() != "STATUS_CODE_ERROR" {
		t.Errorf("span status %v; want an error for a 503", s.Status)
	}
	if s.TraceID() != "4bf92f3577b34da6a3ce929d0e0e4736" || s.ParentID() != "00f067aa0ba902b7" {
		t.Errorf("span in trace %s under %s; want the caller's", s.TraceID(), s.ParentID())
	}
}
