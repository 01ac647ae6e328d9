package extauthz

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/rill-authd/rill-authd/metrics"
)

// denialBurst is how many denials of one reason are logged in each second; the rest of that
// second are counted and reported in one line.
const denialBurst = 5

// denialLog samples the log lines of denied checks per reason (the metrics label, a fixed set):
// a flood of bad tokens writes a few lines a second, not one per check. The metrics still
// count every check; they are recorded elsewhere.
type denialLog struct {
	log   *slog.Logger
	now   func() time.Time
	after func(time.Duration, func()) // time.AfterFunc, or a test's
	// by holds every reason, made once, so it is read without a lock; other holds any other.
	by    map[string]*reasonLog
	other *reasonLog
}

// reasonLog is one reason's window: a second of its clock.
type reasonLog struct {
	label      string
	mu         sync.Mutex
	second     int64
	n          int        // denials in the window
	suppressed int        // of them, not logged
	level      slog.Level // of the suppressed lines
	armed      bool       // a timer will report the window if no later denial does
}

func newDenialLog(log *slog.Logger, now func() time.Time) *denialLog {
	d := &denialLog{log: log, now: now, after: func(wait time.Duration, f func()) { time.AfterFunc(wait, f) },
		by: map[string]*reasonLog{}, other: &reasonLog{label: "other"}}
	for _, r := range metrics.Reasons {
		d.by[r] = &reasonLog{label: r}
	}
	return d
}

// allow reports whether a denial of reason label may be logged now. One that may not is counted,
// and the count logged once its second is over: by the next denial of that reason, or by a timer
// when none comes.
func (d *denialLog) allow(label string, level slog.Level) bool {
	r := d.by[label]
	if r == nil {
		r = d.other
	}
	now := d.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if sec := now.Unix(); sec != r.second {
		d.flush(r)
		r.second, r.n = sec, 0
	}
	r.n++
	if r.n <= denialBurst {
		return true
	}
	r.suppressed++
	r.level = max(r.level, level)
	if !r.armed {
		d.arm(r, now)
	}
	return false
}

// arm reports r's window shortly after it ends, unless a denial has moved r on by then; then the
// new window is watched in turn. At most one timer per reason is pending.
func (d *denialLog) arm(r *reasonLog, now time.Time) {
	r.armed = true
	d.after(time.Unix(r.second+1, 0).Sub(now)+50*time.Millisecond, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.armed = false
		now := d.now()
		if now.Unix() != r.second {
			d.flush(r)
		} else if r.suppressed > 0 {
			d.arm(r, now)
		}
	})
}

// flush logs how many denials of r's window were not logged; r.mu is held.
func (d *denialLog) flush(r *reasonLog) {
	if r.suppressed == 0 {
		return
	}
	d.log.Log(context.Background(), r.level, "check denials not logged", "reason", r.label, "suppressed", r.suppressed,
		"second", time.Unix(r.second, 0).UTC().Format(time.RFC3339))
	r.suppressed, r.level = 0, slog.LevelInfo
}
