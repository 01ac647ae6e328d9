package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// CheckTotals is what the checks counter holds now: checks answered since start by result, and
// the checks not allowed (denied or error) by reason.
type CheckTotals struct {
	Allowed, Denied, Errors float64
	Reasons                 map[string]float64
}

// CheckTotals reads the checks counter (for the console's per-minute chart; nothing on the
// check path calls it). The zero value on a nil *Metrics.
func (m *Metrics) CheckTotals() CheckTotals {
	t := CheckTotals{Reasons: map[string]float64{}}
	if m == nil {
		return t
	}
	ch := make(chan prometheus.Metric, 64)
	go func() { m.checks.Collect(ch); close(ch) }()
	for pm := range ch {
		var d dto.Metric
		if pm.Write(&d) != nil || d.Counter == nil {
			continue
		}
		var result, reason string
		for _, l := range d.Label {
			switch l.GetName() {
			case "result":
				result = l.GetValue()
			case "reason":
				reason = l.GetValue()
			}
		}
		v := d.Counter.GetValue()
		switch result {
		case ResultAllowed:
			t.Allowed += v
		case ResultDenied:
			t.Denied += v
			t.Reasons[reason] += v
		case ResultError:
			t.Errors += v
			t.Reasons[reason] += v
		}
	}
	return t
}
