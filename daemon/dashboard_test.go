package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	adminclient "github.com/rill-authd/rill-authd/adminapi/client"
	"github.com/rill-authd/rill-authd/internal/testenv"
)

// dashboard is what the test reads of deploy/grafana-dashboard.json.
type dashboard struct {
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
	Panels []dashPanel `json:"panels"`
}

type dashPanel struct {
	Title   string      `json:"title"`
	Type    string      `json:"type"`
	Panels  []dashPanel `json:"panels"` // a collapsed row's
	Targets []struct {
		Expr   string `json:"expr"`
		Legend string `json:"legendFormat"`
	} `json:"targets"`
}

var (
	metricNameRe = regexp.MustCompile(`\b(?:rill_authd|go|process)_[a-z0-9_]+\b`)
	byRe         = regexp.MustCompile(`\bby \(([^)]*)\)`)
	legendRe     = regexp.MustCompile(`\{\{\s*([a-z_]+)\s*\}\}`)
)

// exported scrapes /metrics into every series name it exposes (a histogram's _bucket, _sum
// and _count) and the label names each carries.
func exported(t *testing.T, url string) map[string]map[string]bool {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	out := map[string]map[string]bool{}
	add := func(name string, labels map[string]bool) {
		if out[name] == nil {
			out[name] = map[string]bool{}
		}
		for l := range labels {
			out[name][l] = true
		}
	}
	for name, f := range fams {
		labels := map[string]bool{}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = true
			}
		}
		add(name, labels)
		if f.GetType() == dto.MetricType_HISTOGRAM {
			add(name+"_sum", labels)
			add(name+"_count", labels)
			labels["le"] = true
			add(name+"_bucket", labels)
		}
	}
	return out
}

// TestDashboardQueriesExportedMetrics loads deploy/grafana-dashboard.json and checks every
// panel's queries against a real daemon's /metrics: each metric a query names is exported,
// each label it groups by or draws in a legend is one of that metric's (or instance, which
// Prometheus adds), and each query is limited to the $instance variable's replicas. The daemon
// runs on PostgreSQL with a plugin configured, so the store's and the plugins' series exist,
// and has answered checks and admin calls, so every labelled series has appeared.
func TestDashboardQueriesExportedMetrics(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(testenv.ModuleRoot(), "deploy", "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash dashboard
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}

	dbURL, _ := testenv.PostgresDB(t, "")
	dir := t.TempDir()
	attrs := filepath.Join(dir, "attrs.json")
	if err := os.WriteFile(attrs, []byte(`{"admin@localhost": {"department": "sales"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.yaml")
	plugin := filepath.Join(filepath.Dir(testenv.Bin(t, "rill-authd")), "plugins", "jsonfile")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("plugins:\n  - name: hr\n    command: %s\n    args: [\"--file\", %q]\n", plugin, attrs)), 0o600); err != nil {
		t.Fatal(err)
	}
	d := testenv.Start(t, filepath.Join(dir, "data"), "--store", dbURL, "--config", cfg)
	ctx := context.Background()
	su := adminclient.New(d.URL(), d.Token)
	c := acmeService(t, su, "dash")
	tok, err := su.IssueToken(ctx, apiv1.TokenRequest{DisplayName: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := su.RevokeToken(ctx, "", tok.ID); err != nil {
		t.Fatal(err)
	}
	checkStatus(t, d, c.Token)
	checkStatus(t, d, tok.Token)
	metrics := exported(t, d.URL())

	queries := 0
	drawn := map[string]bool{} // metric families some panel queries
	family := func(n string) string {
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			n = strings.TrimSuffix(n, suf)
		}
		return n
	}
	var walk func([]dashPanel)
	walk = func(ps []dashPanel) {
		for _, p := range ps {
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				queries++
				names := metricNameRe.FindAllString(tg.Expr, -1)
				for _, n := range names {
					drawn[family(n)] = true
				}
				if len(names) == 0 {
					t.Errorf("panel %q: query %q names no metric", p.Title, tg.Expr)
					continue
				}
				labels := map[string]bool{"instance": true, "job": true}
				for _, n := range names {
					got, ok := metrics[n]
					if !ok {
						t.Errorf("panel %q: %s is not exported by the daemon (query %q)", p.Title, n, tg.Expr)
						continue
					}
					for l := range got {
						labels[l] = true
					}
				}
				var used []string
				for _, m := range byRe.FindAllStringSubmatch(tg.Expr, -1) {
					for _, l := range strings.Split(m[1], ",") {
						used = append(used, strings.TrimSpace(l))
					}
				}
				for _, l := range used {
					if !labels[l] {
						t.Errorf("panel %q: groups by %q, a label none of %v has", p.Title, l, names)
					}
				}
				// A legend draws labels the query keeps: those it groups by, if it aggregates.
				keep := labels
				if len(used) > 0 {
					keep = map[string]bool{}
					for _, l := range used {
						keep[l] = true
					}
				}
				for _, m := range legendRe.FindAllStringSubmatch(tg.Legend, -1) {
					if !keep[m[1]] {
						t.Errorf("panel %q: legend %q draws {{%s}}, which query %q does not keep", p.Title, tg.Legend, m[1], tg.Expr)
					}
				}
				if strings.Count(tg.Expr, `instance=~"$instance"`) != len(names) {
					t.Errorf("panel %q: query %q does not limit every metric to $instance", p.Title, tg.Expr)
				}
			}
		}
	}
	walk(dash.Panels)
	if queries == 0 {
		t.Fatal("the dashboard has no queries")
	}
	// Every metric of ours is on some panel (cache drops, rechecks and stale answers were not).
	for n := range metrics {
		if strings.HasPrefix(n, "rill_authd_") && !drawn[family(n)] {
			t.Errorf("%s is exported but no panel of the dashboard draws it", family(n))
		}
	}

	// The alert ideas in deploy/prometheus.yml name exported metrics too.
	prom, err := os.ReadFile(filepath.Join(testenv.ModuleRoot(), "deploy", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range metricNameRe.FindAllString(string(prom), -1) {
		if _, ok := metrics[n]; !ok {
			t.Errorf("deploy/prometheus.yml names %s, which the daemon does not export", n)
		}
	}

	// The instance variable exists and reads a metric every replica exports.
	var found bool
	for _, v := range dash.Templating.List {
		if v.Name == "instance" {
			found = true
			for _, n := range metricNameRe.FindAllString(v.Definition, -1) {
				if _, ok := metrics[n]; !ok {
					t.Errorf("variable instance reads %s, which the daemon does not export", n)
				}
			}
		}
	}
	if !found {
		t.Error("the dashboard has no instance variable")
	}
}
