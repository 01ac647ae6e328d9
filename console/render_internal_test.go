package console

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/metrics"
)

// BenchmarkRenderTokens10k is My tokens' template alone with 10,000 rows (the page benchmark
// adds the in-process API call).
func BenchmarkRenderTokens10k(b *testing.B) {
	c, err := New(Options{API: http.NotFoundHandler()})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	toks := make([]apiv1.TokenInfo, 10000)
	now := time.Now()
	for i := range toks {
		toks[i] = apiv1.TokenInfo{ID: fmt.Sprintf("%08d-0000-4000-8000-000000000000", i), Prefix: "rill_usr_0123456789", DisplayName: fmt.Sprintf("laptop %d", i), CreatedAt: now}
	}
	r := httptest.NewRequest("GET", "/ui/tokens", nil)
	v := &view{c: c, r: r, s: &session{csrf: "x"}, Title: "My tokens", Data: nil}
	for b.Loop() {
		v.Data = myTokensData{Count: len(toks), Rows: myTokenRows(tokenRows(toks, ""), "x"), TTLChoices: ttlChoices}
		w := httptest.NewRecorder()
		w.Body = nil
		c.render(discard{w}, v, "tokens", 200)
	}
}

type discard struct{ http.ResponseWriter }

func (discard) Write(b []byte) (int, error) { return io.Discard.Write(b) }

// TestTokenRowsEscape: the hand-written rows of My tokens escape every value, in text and in
// attributes, as html/template would.
func TestTokenRowsEscape(t *testing.T) {
	evil := `<script>alert(1)</script>"'&`
	out := string(myTokenRows([]tokenRow{{ID: `x"><img src=x onerror=alert(1)>`, Prefix: evil, Name: evil, Created: evil, Expires: evil, LastUsed: evil}}, `c"<`))
	for _, bad := range []string{"<script>", `"><img`, `'&`, `c"<`} {
		if strings.Contains(out, bad) {
			t.Errorf("unescaped %q in:\n%s", bad, out)
		}
	}
	if !strings.Contains(out, "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&#39;&amp;") || !strings.Contains(out, `value="x&#34;&gt;&lt;img`) {
		t.Errorf("not escaped as expected:\n%s", out)
	}
}

// TestRingPerMinute: a minute's checks are its last reading less the one of the minute before;
// the current minute counts up to now; a minute without readings is unknown, not zero.
func TestRingPerMinute(t *testing.T) {
	r := newRing()
	t0 := time.Date(2026, 12, 3, 10, 0, 5, 0, time.UTC)
	tot := func(a, d float64) metrics.CheckTotals {
		return metrics.CheckTotals{Allowed: a, Denied: d, Reasons: map[string]float64{"revoked": d}}
	}
	r.record(t0, tot(0, 0))                                       // 10:00, the first reading
	r.record(t0.Add(50*time.Second), tot(4, 1))                   // 10:00, last of the minute
	r.record(t0.Add(70*time.Second), tot(10, 1))                  // 10:01
	r.record(t0.Add(3*time.Minute), tot(12, 3))                   // 10:03 (10:02 has no reading)
	pts, reasons := r.lastHour(t0.Add(4*time.Minute), tot(20, 4)) // now 10:04
	last := pts[len(pts)-5:]                                      // 10:00 .. 10:04
	want := []struct {
		known bool
		a, d  float64
	}{{true, 4, 1}, {true, 6, 0}, {false, 0, 0}, {false, 0, 0}, {true, 8, 1}}
	for i, w := range want {
		p := last[i]
		if p.Known != w.known || p.Allowed != w.a || p.Denied != w.d {
			t.Errorf("%s: %+v, want %+v", p.At.Format("15:04"), p, w)
		}
	}
	if reasons["revoked"] != 4 {
		t.Errorf("reasons over the hour: %v", reasons)
	}
	if svg := string(chartSVG(pts)); !strings.Contains(svg, "10:04 UTC: 8 allowed, 1 denied") || !strings.Contains(svg, "10:02 UTC: no reading") {
		t.Errorf("chart titles:\n%s", svg)
	}
}
