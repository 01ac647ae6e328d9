// Package metrics defines rill-authd's Prometheus metrics in one place, so their names, labels
// and buckets are reviewed together and no label can carry a token, subject, email or any other
// unbounded value. Every method is safe on a nil *Metrics (metrics off, as in unit tests).
package metrics

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rill-authd/rill-authd/policy"
)

// Check results, kinds and reasons: the only values their labels take.
const (
	ResultAllowed = "allowed"
	ResultDenied  = "denied"
	ResultError   = "error"

	KindUser        = string(policy.KindUser)
	KindService     = string(policy.KindService)
	KindEphemeral   = string(policy.KindEphemeral)
	KindMagic       = string(policy.KindMagic)
	KindExternalJWT = "external_jwt"
	KindNone        = "none"
)

// Reasons is the fixed set of check reasons.
var Reasons = []string{"ok", "missing", "not_bearer", "malformed", "bad_checksum", "unknown", "expired", "revoked",
	"owner_gone", "jwt_invalid", "issuer_revoked", "forbidden", "plugin", "unavailable", "misconfigured", "bad_target",
	"network_not_allowed", "origin_not_allowed"}

// Metrics holds the collectors.
type Metrics struct {
	reg            *prometheus.Registry
	checks         *prometheus.CounterVec
	checkDuration  *prometheus.HistogramVec
	tokensIssued   *prometheus.CounterVec
	tokensRevoked  *prometheus.CounterVec
	adminRequests  *prometheus.CounterVec
	pluginCalls    *prometheus.CounterVec
	pluginDuration *prometheus.HistogramVec
	jwksRefreshes  *prometheus.CounterVec
	configReloads  *prometheus.CounterVec
	configLastOK   prometheus.Gauge
	configLastGood prometheus.Gauge
}

// New registers every collector, the Go runtime's and the process's included.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rill_authd_checks_total",
			Help: "Checks answered, by result (allowed, denied, error), credential kind and reason."}, []string{"result", "kind", "reason"}),
		checkDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "rill_authd_check_duration_seconds",
			Help:    "Time to answer a check inside rill-authd, by result.",
			Buckets: []float64{5e-6, 10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3}},
			[]string{"result"}),
		tokensIssued: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rill_authd_tokens_issued_total",
			Help: "Tokens issued, by kind (user, service, ephemeral)."}, []string{"kind"}),
		tokensRevoked: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rill_authd_tokens_revoked_total",
			Help: "Tokens revoked (directly or by deleting their owner), by kind."}, []string{"kind"}),
		adminRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rill_authd_admin_requests_total",
			Help: "Admin API requests, by HTTP method, route pattern (/v1/orgs/{org}/services) and HTTP status code."}, []string{"method", "route", "code"}),
		pluginCalls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rill_authd_plugin_calls_total",
			Help: "Calls to attribute-source plugins, by configured plugin name and result (ok, error)."}, []string{"plugin", "result"}),
		pluginDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "rill_authd_plugin_call_duration_seconds",
			Help:    "Time of a plugin call, by configured plugin name.",
			Buckets: []float64{100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 1}}, []string{"plugin"}),
		jwksRefreshes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rill_authd_jwks_refreshes_total",
			Help: "Fetches of trusted issuers' JWKS, by result (ok, error)."}, []string{"result"}),
		configReloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rill_authd_config_reloads_total",
			Help: "Reloads of the --config file on SIGHUP, by outcome (ok: applied; error: refused, the previous configuration kept)."}, []string{"outcome"}),
		configLastOK: prometheus.NewGauge(prometheus.GaugeOpts{Name: "rill_authd_config_last_reload_timestamp_seconds",
			Help: "Unix time at which the configuration in force was loaded: the start, or the last reload that applied."}),
		configLastGood: prometheus.NewGauge(prometheus.GaugeOpts{Name: "rill_authd_config_last_reload_successful",
			Help: "1 if the last reload (or the start) applied its configuration, 0 if it was refused."}),
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.checks, m.checkDuration, m.tokensIssued, m.tokensRevoked, m.adminRequests, m.pluginCalls, m.pluginDuration, m.jwksRefreshes,
		m.configReloads, m.configLastOK, m.configLastGood)
	// Series that exist from the start read 0 rather than being absent.
	for _, r := range []string{ResultAllowed, ResultDenied, ResultError} {
		m.checkDuration.WithLabelValues(r)
	}
	for _, ok := range []string{"ok", "error"} {
		m.jwksRefreshes.WithLabelValues(ok)
		m.configReloads.WithLabelValues(ok)
	}
	m.configLastOK.SetToCurrentTime()
	m.configLastGood.Set(1)
	return m
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Check records one answered check.
func (m *Metrics) Check(result, kind, reason string, took time.Duration) {
	if m == nil {
		return
	}
	m.checks.WithLabelValues(result, kind, reason).Inc()
	m.checkDuration.WithLabelValues(result).Observe(took.Seconds())
}

// TokenIssued and TokensRevoked count token lifecycle events by kind.
func (m *Metrics) TokenIssued(kind policy.Kind) {
	if m != nil {
		m.tokensIssued.WithLabelValues(string(kind)).Inc()
	}
}

// TokensRevoked counts n revoked tokens of kind.
func (m *Metrics) TokensRevoked(kind policy.Kind, n int) {
	if m != nil && n > 0 {
		m.tokensRevoked.WithLabelValues(string(kind)).Add(float64(n))
	}
}

// AdminRequest counts one admin request by its ServeMux pattern ("DELETE /v1/tokens/{ref}";
// bounded: the registered ones): the method and the path pattern go in labels of their own,
// so a dashboard can sum one route's methods or one method's routes.
func (m *Metrics) AdminRequest(pattern string, code int) {
	if m == nil {
		return
	}
	method, route, ok := strings.Cut(pattern, " ")
	if !ok {
		method, route = "", pattern
	}
	m.adminRequests.WithLabelValues(method, route, strconv.Itoa(code)).Inc()
}

// PluginsConfigured creates the plugin series of every configured plugin at 0, so that they
// exist from the start (a rate() or an alert on them works before the first call).
func (m *Metrics) PluginsConfigured(names ...string) {
	if m == nil {
		return
	}
	for _, name := range names {
		m.pluginCalls.WithLabelValues(name, "ok")
		m.pluginCalls.WithLabelValues(name, "error")
		m.pluginDuration.WithLabelValues(name)
	}
}

// PluginCall records one plugin call.
func (m *Metrics) PluginCall(plugin string, err error, took time.Duration) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.pluginCalls.WithLabelValues(plugin, result).Inc()
	m.pluginDuration.WithLabelValues(plugin).Observe(took.Seconds())
}

// JWKSRefresh records one fetch of a trusted issuer's JWKS.
func (m *Metrics) JWKSRefresh(err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.jwksRefreshes.WithLabelValues("error").Inc()
	} else {
		m.jwksRefreshes.WithLabelValues("ok").Inc()
	}
}

// ConfigReload records one reload of the config file: applied (err nil) or refused.
func (m *Metrics) ConfigReload(err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.configReloads.WithLabelValues("error").Inc()
		m.configLastGood.Set(0)
		return
	}
	m.configReloads.WithLabelValues("ok").Inc()
	m.configLastOK.SetToCurrentTime()
	m.configLastGood.Set(1)
}

// GaugeFunc registers a gauge whose value is read at scrape time (cache size, active tokens,
// signing key age).
func (m *Metrics) GaugeFunc(name, help string, labels prometheus.Labels, f func() float64) {
	if m != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels}, f))
	}
}

// CounterFunc registers a counter read at scrape time (cache hits, misses, evictions).
func (m *Metrics) CounterFunc(name, help string, f func() float64) {
	if m != nil {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f))
	}
}
