package daemon_test

import (
	"context"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	adminclient "github.com/rill-authd/rill-authd/adminapi/client"
	"github.com/rill-authd/rill-authd/internal/testenv"
)

// scrape reads /metrics over HTTP with Prometheus's own text parser, as "name{k=v,...}" -> value.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(labels)
			key := name + "{" + strings.Join(labels, ",") + "}"
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[name+"_count{"+strings.Join(labels, ",")+"}"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// TestMetricsMoveExactly drives checks of every outcome and admin writes through the real
// daemon and asserts each counter moved by exactly what was done.
func TestMetricsMoveExactly(t *testing.T) {
	d := testenv.Start(t, filepath.Join(t.TempDir(), "data"))
	ctx := context.Background()
	su := adminclient.New(d.URL(), d.Token)
	// Setup, before the first scrape.
	if _, err := su.CreateOrg(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := su.CreateProject(ctx, "acme", "web"); err != nil {
		t.Fatal(err)
	}
	if _, err := su.CreateUser(ctx, apiv1.UserRequest{Email: "nobody@acme.io"}); err != nil {
		t.Fatal(err)
	}
	before := scrape(t, d.URL())

	// Admin writes.
	svc, err := su.CreateService(ctx, "acme", apiv1.ServiceRequest{Name: "ci", OrgRole: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	nobody, err := su.IssueToken(ctx, apiv1.TokenRequest{DisplayName: "t", UserEmail: "nobody@acme.io"})
	if err != nil {
		t.Fatal(err)
	}
	eph, err := adminclient.New(d.URL(), svc.Token.Token).Credentials(ctx, "acme", "web", apiv1.CredentialsRequest{UserEmail: "end@user.io"})
	if err != nil {
		t.Fatal(err)
	}

	conn, err := grpc.NewClient(d.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := authv3.NewAuthorizationClient(conn)
	check := func(auth, path string) {
		t.Helper()
		h := map[string]string{}
		if auth != "" {
			h["authorization"] = auth
		}
		if _, err := client.Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
			Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: path, Headers: h}}}}); err != nil {
			t.Fatal(err)
		}
	}
	web := "/v1/orgs/acme/projects/web/runtime/query"
	for range 3 {
		check("Bearer "+d.Token, web) // allowed user
	}
	check("Bearer "+svc.Token.Token, web)  // allowed service
	check("Bearer "+eph.AccessToken, web)  // allowed ephemeral
	check("", web)                         // missing
	check("Bearer "+d.Token[:68]+"!", web) // malformed (bad character)
	check("Bearer "+nobody.Token, web)     // forbidden
	check("Bearer "+d.Token, "/healthz")   // misconfigured: no org anywhere
	if _, err := su.RevokeToken(ctx, "nobody@acme.io", nobody.ID); err != nil {
		t.Fatal(err)
	}
	check("Bearer "+nobody.Token, web) // revoked
	if _, err := su.DeleteService(ctx, "acme", "ci"); err != nil {
		t.Fatal(err)
	}
	after := scrape(t, d.URL())

	for key, want := range map[string]float64{
		"rill_authd_checks_total{kind=user,reason=ok,result=allowed}":                         3,
		"rill_authd_checks_total{kind=service,reason=ok,result=allowed}":                      1,
		"rill_authd_checks_total{kind=ephemeral,reason=ok,result=allowed}":                    1,
		"rill_authd_checks_total{kind=none,reason=missing,result=denied}":                     1,
		"rill_authd_checks_total{kind=user,reason=malformed,result=denied}":                   1,
		"rill_authd_checks_total{kind=user,reason=forbidden,result=denied}":                   1,
		"rill_authd_checks_total{kind=user,reason=revoked,result=denied}":                     1,
		"rill_authd_checks_total{kind=user,reason=misconfigured,result=error}":                1,
		"rill_authd_check_duration_seconds_count{result=allowed}":                             5,
		"rill_authd_check_duration_seconds_count{result=denied}":                              4,
		"rill_authd_check_duration_seconds_count{result=error}":                               1,
		"rill_authd_tokens_issued_total{kind=service}":                                        1,
		"rill_authd_tokens_issued_total{kind=user}":                                           1,
		"rill_authd_tokens_issued_total{kind=ephemeral}":                                      1,
		"rill_authd_tokens_revoked_total{kind=user}":                                          1,
		"rill_authd_tokens_revoked_total{kind=service}":                                       1,
		"rill_authd_active_tokens{kind=service}":                                              0,
		"rill_authd_active_tokens{kind=user}":                                                 0,
		"rill_authd_admin_requests_total{code=201,method=POST,route=/v1/orgs/{org}/services}": 1,
		"rill_authd_admin_requests_total{code=201,method=POST,route=/v1/tokens}":              1,
		"rill_authd_admin_requests_total{code=200,method=DELETE,route=/v1/tokens/{ref}}":      1,
		"rill_authd_jwks_refreshes_total{result=error}":                                       0,
	} {
		if got := after[key] - before[key]; got != want {
			t.Errorf("%s moved by %v, want %v", key, got, want)
		}
	}
	if after["rill_authd_cache_misses_total{}"] <= before["rill_authd_cache_misses_total{}"] ||
		after["rill_authd_cache_hits_total{}"]-before["rill_authd_cache_hits_total{}"] < 2 {
		t.Errorf("cache counters did not move: hits %v→%v misses %v→%v", before["rill_authd_cache_hits_total{}"],
			after["rill_authd_cache_hits_total{}"], before["rill_authd_cache_misses_total{}"], after["rill_authd_cache_misses_total{}"])
	}
	if age := after["rill_authd_signing_key_age_seconds{}"]; age <= 0 || age > 600 {
		t.Errorf("signing key age %v", age)
	}
	if after["go_goroutines{}"] == 0 || after["process_resident_memory_bytes{}"] == 0 {
		t.Error("Go and process collectors missing")
	}
	// No label value anywhere is a token, an email or a subject.
	for key := range after {
		for _, secret := range []string{d.Token[9:30], svc.Token.Token[9:30], "nobody@acme.io", "end@user.io", "admin@localhost"} {
			if strings.Contains(key, secret) {
				t.Errorf("metric %s carries %q", key, secret)
			}
		}
	}
}

// TestLogsNeverHoldSecrets runs every kind of credential, good and bad, through the daemon at
// debug level and proves no token secret or JWT reaches its log.
func TestLogsNeverHoldSecrets(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			d := testenv.Start(t, filepath.Join(t.TempDir(), "data"), "--log-level", "debug", "--log-format", format, "--log-allowed-every", "1")
			ctx := context.Background()
			su := adminclient.New(d.URL(), d.Token)
			su.CreateOrg(ctx, "acme")
			su.CreateProject(ctx, "acme", "web")
			svc, err := su.CreateService(ctx, "acme", apiv1.ServiceRequest{Name: "ci", OrgRole: "admin"})
			if err != nil {
				t.Fatal(err)
			}
			extra, _ := su.IssueServiceToken(ctx, "acme", "ci")
			mine, _ := su.IssueToken(ctx, apiv1.TokenRequest{DisplayName: "mine"})
			eph, err := adminclient.New(d.URL(), svc.Token.Token).Credentials(ctx, "acme", "web", apiv1.CredentialsRequest{UserEmail: "end@user.io"})
			if err != nil {
				t.Fatal(err)
			}
			secrets := []string{d.Token, svc.Token.Token, extra.Token, mine.Token, eph.AccessToken}
			var bearers []string
			for _, s := range secrets {
				bearers = append(bearers, s, s[:len(s)-1]+"!", s[:40], s+"x")
			}
			bearers = append(bearers, "rill_usr_"+strings.Repeat("A", 60), "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", strings.Repeat("z", 5000))
			for _, b := range bearers {
				req, _ := http.NewRequest("GET", d.URL()+"/ext_authz/v1/orgs/acme/projects/web/q?token="+b, nil)
				req.Header.Set("Authorization", "Bearer "+b)
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
				adminclient.New(d.URL(), b).Whoami(ctx)
				su.Introspect(ctx, b)
			}
			su.RevokeToken(ctx, "", mine.Prefix)
			su.DeleteService(ctx, "acme", "ci")
			d.Stop(t)

			logs := d.Stderr()
			// The one line that shows the bootstrap token on purpose.
			var kept []string
			for _, l := range strings.Split(logs, "\n") {
				if !strings.Contains(l, "bootstrap token (shown once") {
					kept = append(kept, l)
				}
			}
			logs = strings.Join(kept, "\n")
			if !strings.Contains(logs, "check denied") || !strings.Contains(logs, "check allowed") || !strings.Contains(logs, "admin mutation") {
				t.Fatalf("the log lacks the lines this test relies on:\n%s", logs)
			}
			for _, s := range secrets {
				for _, part := range []string{s[9:29], s[len(s)-20:]} { // secret-bearing middles and ends
					if strings.Contains(logs, part) {
						t.Errorf("log holds part of a credential %q", part)
					}
				}
			}
			if strings.Contains(logs, "eyJ") {
				t.Error("log holds a JWT")
			}
		})
	}
}
