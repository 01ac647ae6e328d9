package metrics_test

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rill-authd/rill-authd/metrics"
)

func exposition(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, err := io.ReadAll(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestAdminRequestMethodLabel: the ServeMux pattern's method and path go in labels of their own.
func TestAdminRequestMethodLabel(t *testing.T) {
	m := metrics.New()
	m.AdminRequest("DELETE /v1/orgs/{org}/services/{name}", 200)
	m.AdminRequest("/v1/odd", 404) // a pattern without a method
	out := exposition(t, m)
	for _, want := range []string{
		`rill_authd_admin_requests_total{code="200",method="DELETE",route="/v1/orgs/{org}/services/{name}"} 1`,
		`rill_authd_admin_requests_total{code="404",method="",route="/v1/odd"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestPluginSeriesFromStart: a configured plugin's series exist at 0 before its first call.
func TestPluginSeriesFromStart(t *testing.T) {
	m := metrics.New()
	if out := exposition(t, m); strings.Contains(out, "rill_authd_plugin_calls_total{") {
		t.Fatal("plugin series before any plugin is configured")
	}
	m.PluginsConfigured("hr", "crm")
	out := exposition(t, m)
	for _, want := range []string{
		`rill_authd_plugin_calls_total{plugin="hr",result="ok"} 0`, `rill_authd_plugin_calls_total{plugin="hr",result="error"} 0`,
		`rill_authd_plugin_calls_total{plugin="crm",result="ok"} 0`, `rill_authd_plugin_call_duration_seconds_count{plugin="crm"} 0`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	var nilMetrics *metrics.Metrics
	nilMetrics.PluginsConfigured("hr") // metrics off: no panic
	nilMetrics.AdminRequest("GET /x", 200)
}
