package console

import (
	"fmt"
	"html/template"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rill-authd/rill-authd/metrics"
)

// ring keeps the checks counter as last read in each of the last 61 minutes, so the Overview
// can draw checks per minute over the last hour from the daemon's own counters: a minute's
// checks are its last reading less the one of the minute before. Fed by the console's sampler;
// the check path knows nothing of it.
type ring struct {
	mu    sync.Mutex
	slots [61]reading
	first reading // the console's first reading: the baseline of its first minute
}

type reading struct {
	minute int64 // Unix minute; 0: empty slot
	t      metrics.CheckTotals
}

func newRing() *ring { return &ring{} }

func (r *ring) record(now time.Time, t metrics.CheckTotals) {
	m := now.Unix() / 60
	r.mu.Lock()
	r.slots[m%int64(len(r.slots))] = reading{minute: m, t: t}
	if r.first.minute == 0 {
		r.first = reading{minute: m, t: t}
	}
	r.mu.Unlock()
}

func (r *ring) at(m int64) (metrics.CheckTotals, bool) {
	s := r.slots[(m%int64(len(r.slots))+int64(len(r.slots)))%int64(len(r.slots))]
	return s.t, s.minute == m
}

// minutePoint is one minute of the chart.
type minutePoint struct {
	At              time.Time
	Allowed, Denied float64
	Known           bool // both readings were there
}

// lastHour is the checks of each of the last 60 minutes (the current one counted up to now),
// oldest first, and the checks not allowed by reason over that hour (as far back as the ring
// reaches).
func (r *ring) lastHour(now time.Time, cur metrics.CheckTotals) ([]minutePoint, map[string]float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := now.Unix() / 60
	pts := make([]minutePoint, 0, 60)
	for i := m - 59; i <= m; i++ {
		end, ok := r.at(i)
		if i == m {
			end, ok = cur, true
		}
		start, ok2 := r.at(i - 1)
		if !ok2 && r.first.minute == i {
			start, ok2 = r.first.t, true
		}
		p := minutePoint{At: time.Unix(i*60, 0).UTC()}
		if ok && ok2 {
			p.Known = true
			p.Allowed = max(0, end.Allowed-start.Allowed)
			p.Denied = max(0, end.Denied+end.Errors-start.Denied-start.Errors)
		}
		pts = append(pts, p)
	}
	// The baseline: the console's first reading when it is within the hour, else the oldest
	// reading the ring holds.
	base, found := r.first.t, r.first.minute != 0 && r.first.minute >= m-60
	for i := m - 60; i < m && !found; i++ {
		base, found = r.at(i)
	}
	reasons := map[string]float64{}
	if found {
		for k, v := range cur.Reasons {
			if d := v - base.Reasons[k]; d > 0 {
				reasons[k] = d
			}
		}
	}
	return pts, reasons
}

// chartSVG draws the points as bars, allowed up and denied down from a middle axis, so that the
// two read apart without colour; every bar has a title with its numbers, and the page has the
// same numbers as a table.
func chartSVG(pts []minutePoint) template.HTML {
	const w, h, left, top, bottom = 960.0, 240.0, 48.0, 12.0, 28.0
	peak := 1.0
	for _, p := range pts {
		peak = max(peak, p.Allowed, p.Denied)
	}
	mid := top + (h-top-bottom)/2
	half := (h - top - bottom) / 2
	bw := (w - left - 8) / float64(len(pts))
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %.0f %.0f" role="img" aria-labelledby="chart-title chart-desc" xmlns="http://www.w3.org/2000/svg">`, w, h)
	b.WriteString(`<title id="chart-title">Checks per minute, last hour</title>`)
	b.WriteString(`<desc id="chart-desc">Bars above the axis are allowed checks, hatched bars below it are denied checks (errors included); the same numbers are in the table below.</desc>`)
	b.WriteString(`<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" class="denied-bg"/><line x1="0" y1="0" x2="0" y2="6" class="denied-line" stroke-width="3"/></pattern></defs>`)
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" class="axis"/>`, left, mid, w-8, mid)
	fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" class="label" text-anchor="end">%s</text>`, left-6, top+10, fmtCount(peak))
	fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" class="label" text-anchor="end">0</text>`, left-6, mid+4)
	fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" class="label" text-anchor="end">%s</text>`, left-6, h-bottom, fmtCount(peak))
	fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" class="label">▲ allowed</text>`, left+4, top+10)
	fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" class="label">▼ denied</text>`, left+4, h-bottom)
	for i, p := range pts {
		x := left + float64(i)*bw
		label := p.At.Format("15:04") + " UTC: "
		if p.Known {
			label += fmtCount(p.Allowed) + " allowed, " + fmtCount(p.Denied) + " denied"
		} else {
			label += "no reading"
		}
		fmt.Fprintf(&b, `<g><title>%s</title>`, template.HTMLEscapeString(label))
		ah, dh := half*p.Allowed/peak, half*p.Denied/peak
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" class="allowed"/>`, x+1, mid-ah, bw-2, ah)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" class="denied" fill="url(#hatch)"/></g>`, x+1, mid, bw-2, dh)
		if i%10 == 0 || i == len(pts)-1 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="label" text-anchor="middle">%s</text>`, x+bw/2, h-6, p.At.Format("15:04"))
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // built here from numbers and escaped labels only
}

func fmtCount(f float64) string {
	if f == float64(int64(f)) {
		return fmt.Sprintf("%d", int64(f))
	}
	return fmt.Sprintf("%.1f", f)
}

type reasonCount struct {
	Reason string
	Count  float64
}

func sortedReasons(m map[string]float64) []reasonCount {
	out := make([]reasonCount, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, reasonCount{k, m[k]})
	}
	slices.SortStableFunc(out, func(a, b reasonCount) int {
		switch {
		case a.Count > b.Count:
			return -1
		case a.Count < b.Count:
			return 1
		}
		return 0
	})
	return out
}
