package console

import (
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/metrics"
)

// TestPaginate: search keeps the rows holding every word (any case), the page is cut from
// the matches, and the pager's links keep the search and the page's other parameters.
func TestPaginate(t *testing.T) {
	rows := make([]string, 120)
	for i := range rows {
		rows[i] = fmt.Sprintf("Laptop %d", i)
	}
	text := func(s *string) string { return *s }
	keep := url.Values{"org": {"acme"}}
	for _, tc := range []struct {
		query          string
		first, n       int
		found, last    int
		page           int
		prev, next     string
		firstN, untilN int
	}{
		{"", 0, 50, 120, 3, 1, "", "/ui/x?org=acme&page=2", 1, 50},
		{"page=3", 100, 20, 120, 3, 3, "/ui/x?org=acme&page=2", "", 101, 120},
		{"page=99", 100, 20, 120, 3, 3, "/ui/x?org=acme&page=2", "", 101, 120},
		{"page=-1", 0, 50, 120, 3, 1, "", "/ui/x?org=acme&page=2", 1, 50},
		{"q=LAPTOP+1", 1, 39, 39, 1, 1, "", "", 1, 39}, // 1, 10-19, 21, 31 … 91, 100-119
		{"q=laptop+11&page=1", 11, 11, 11, 1, 1, "", "", 1, 11},
		{"q=nothing", 0, 0, 0, 1, 1, "", "", 0, 0},
	} {
		r := httptest.NewRequest("GET", "/ui/x?"+tc.query, nil)
		got, l := paginate(r, "/ui/x", "rows", keep, rows, text)
		if len(got) != tc.n || (tc.n > 0 && got[0] != rows[tc.first]) || l.Found != tc.found || l.Total != 120 || l.Last != tc.last ||
			l.Page != tc.page || l.Prev != tc.prev || l.Next != tc.next || l.First != tc.firstN || l.Until != tc.untilN {
			t.Errorf("%s: %d rows from %q, %+v", tc.query, len(got), got, l)
		}
	}
	r := httptest.NewRequest("GET", "/ui/x?q=laptop&page=1", nil)
	if _, l := paginate(r, "/ui/x", "rows", keep, rows, text); l.Next != "/ui/x?org=acme&page=2&q=laptop" {
		t.Errorf("the next page forgets the search: %q", l.Next)
	}
	// A list filtered otherwise (nil text) is paged only.
	if got, l := paginate(httptest.NewRequest("GET", "/ui/x?q=zzz", nil), "/ui/x", "rows", nil, rows, nil); len(got) != 50 || l.Q != "" {
		t.Errorf("nil text: %d rows, %+v", len(got), l)
	}
}

// TestParseAuditTimes: From and To are UTC, 24-hour, ISO; a To keeps its whole minute (or
// day); anything else is refused with a message that says what to type.
func TestParseAuditTimes(t *testing.T) {
	d := func(s string) time.Time { v, _ := time.Parse(time.RFC3339Nano, s); return v }
	for _, tc := range []struct {
		in    string
		to    bool
		want  time.Time
		shown string
	}{
		{"2026-01-02 15:04", false, d("2026-01-02T15:04:00Z"), "2026-01-02 15:04"},
		{"2026-01-02T15:04", false, d("2026-01-02T15:04:00Z"), "2026-01-02 15:04"},
		{" 2026-01-02 15:04Z ", false, d("2026-01-02T15:04:00Z"), "2026-01-02 15:04"},
		{"2026-01-02 15:04 UTC", true, d("2026-01-02T15:04:59.999999999Z"), "2026-01-02 15:04"},
		{"2026-01-02 23:59:30", true, d("2026-01-02T23:59:30.999999999Z"), "2026-01-02 23:59:30"},
		{"2026-01-02", false, d("2026-01-02T00:00:00Z"), "2026-01-02"},
		{"2026-01-02", true, d("2026-01-02T23:59:59.999999999Z"), "2026-01-02"},
	} {
		got, shown, err := parseUTC("From", tc.in, tc.to)
		if err != nil || !got.Equal(tc.want) || shown != tc.shown || got.Location() != time.UTC {
			t.Errorf("%q: %v %q %v", tc.in, got, shown, err)
		}
	}
	for _, bad := range []string{"yesterday", "01/02/2026, 03:04 PM", "2026-01-02 3:04 PM", "2026-13-01 10:00", "2026-01-02 24:00", "2026-01-02 15:04+02:00"} {
		if _, _, err := parseUTC("From", bad, false); err == nil || !strings.Contains(err.Error(), "YYYY-MM-DD HH:MM") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if _, bad := parseAuditQuery(url.Values{"from": {"2026-01-02 10:00"}, "to": {"2026-01-02 09:00"}}); !strings.Contains(bad, "before") {
		t.Errorf("To before From: %q", bad)
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

// TestPlural: the overview's counts of one read in the singular, whatever the count's type.
func TestPlural(t *testing.T) {
	for _, tc := range []struct {
		n    any
		want string
	}{
		{0, "tokens"}, {1, "token"}, {2, "tokens"},
		{uint64(1), "token"}, {uint64(11), "tokens"},
		{1.0, "token"}, {0.5, "tokens"}, {1.5, "tokens"},
	} {
		if got := plural(tc.n, "token", "tokens"); got != tc.want {
			t.Errorf("plural(%v) = %q, want %q", tc.n, got, tc.want)
		}
	}
}
