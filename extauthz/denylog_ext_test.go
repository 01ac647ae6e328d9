package extauthz_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/extauthz"
	"github.com/rill-authd/rill-authd/metrics"
	"github.com/rill-authd/rill-authd/resolver"
	"github.com/rill-authd/rill-authd/token"
)

// lockedBuffer is a log sink the server's goroutines write while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines are the JSON log lines written so far, decoded.
func (l *lockedBuffer) lines(t *testing.T) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(l.b.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// TestDenialLogsAreSampled floods a real gRPC server with 1,000 denials of one reason within one
// second of its (injected) clock: a handful of lines are logged, then one line with the count of
// the rest; another reason keeps a budget of its own; the metrics count every denial.
func TestDenialLogsAreSampled(t *testing.T) {
	f := newFixture(t, resolver.Options{})
	var logs lockedBuffer
	var clock atomic.Int64
	clock.Store(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	m := metrics.New()
	srv := extauthz.New(f.res, extauthz.Config{Logger: slog.New(slog.NewJSONHandler(&logs, nil)), Metrics: m,
		Now: func() time.Time { return time.Unix(0, clock.Load()) }})
	client := grpcClient(t, srv.Register, extauthz.GRPCServerOptions()...)
	check := func(auth string) { // called from several goroutines: Errorf, not Fatalf
		h := map[string]string{}
		if auth != "" {
			h["authorization"] = auth
		}
		resp, err := client.Check(context.Background(), envoyRequest("GET", "/v1/orgs/acme/projects/web/x", h, nil))
		if err != nil || resp.GetDeniedResponse().GetStatus().GetCode() != 401 {
			t.Errorf("want a 401: %v %v", resp.GetStatus(), err)
		}
	}
	bad := func() string { // well-formed, checksummed, in no store: "unknown token"
		tok, err := token.New(token.User)
		if err != nil {
			panic(err)
		}
		return "Bearer " + tok.Encode()
	}
	count := func() (denied, summaries map[string]int, suppressed map[string]float64) {
		denied, summaries, suppressed = map[string]int{}, map[string]int{}, map[string]float64{}
		for _, l := range logs.lines(t) {
			switch l["msg"] {
			case "check denied":
				denied[l["reason"].(string)]++
			case "check denials not logged":
				summaries[l["reason"].(string)]++
				suppressed[l["reason"].(string)] += l["suppressed"].(float64)
			default:
				t.Errorf("unexpected line %v", l)
			}
		}
		return
	}
	before := scrapeChecks(t, m)

	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 250 {
				check(bad())
				if w == 0 && i < 20 {
					check("") // another reason, in the same second
				}
				clock.Add(int64(900 * time.Microsecond)) // 1,000 checks in 0.9 s
			}
		})
	}
	wg.Wait()
	denied, summaries, _ := count()
	if denied["unknown token"] != 5 || denied["missing bearer token"] != 5 || len(summaries) != 0 {
		t.Fatalf("in the flood's second: %v denial lines, %v summaries; want 5 of each reason and none", denied, summaries)
	}
	// The next second: its first denial reports the last second's suppressed ones.
	clock.Store(time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC).UnixNano())
	check(bad())
	check("")
	denied, summaries, suppressed := count()
	if denied["unknown token"] != 6 || denied["missing bearer token"] != 6 {
		t.Errorf("denial lines %v, want 6 of each", denied)
	}
	if summaries["unknown"] != 1 || suppressed["unknown"] != 995 || summaries["missing"] != 1 || suppressed["missing"] != 15 {
		t.Errorf("summaries %v, suppressed %v; want one each, 995 unknown and 15 missing", summaries, suppressed)
	}
	// 1,000 "unknown" denials in a second: 5 lines and 1 summary. The same for 20 "missing" ones,
	// and one line each for the two denials of the next second.
	if n := len(logs.lines(t)); n != 14 {
		t.Errorf("%d log lines for 1,022 denials, want 14", n)
	}
	after := scrapeChecks(t, m)
	if got := after[`kind="user",reason="unknown",result="denied"`] - before[`kind="user",reason="unknown",result="denied"`]; got != 1001 {
		t.Errorf("unknown denials counted %v, want 1001", got)
	}
	if got := after[`kind="none",reason="missing",result="denied"`] - before[`kind="none",reason="missing",result="denied"`]; got != 21 {
		t.Errorf("missing denials counted %v, want 21", got)
	}
}

// scrapeChecks reads rill_authd_checks_total by its labels.
func scrapeChecks(t *testing.T, m *metrics.Metrics) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	out := map[string]float64{}
	for _, l := range strings.Split(rec.Body.String(), "\n") {
		rest, ok := strings.CutPrefix(l, "rill_authd_checks_total{")
		if !ok {
			continue
		}
		labels, v, _ := strings.Cut(rest, "} ")
		var f float64
		if err := json.Unmarshal([]byte(v), &f); err != nil {
			t.Fatalf("metric line %q", l)
		}
		out[labels] = f
	}
	return out
}
