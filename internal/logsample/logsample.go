// Package logsample thins out a log line that a flood repeats: the first few lines of a key in
// each window are logged, the rest counted, and the count logged in one line once the window is
// over. A flood then costs a few lines per window, not one per event, and no event goes
// unaccounted for. It serves the check path's denials (per reason, a window of a second), the
// admin API's store-unavailable failures and the PostgreSQL change feed's reconnects.
//
// Allow takes no allocation and, for a key named in advance, no lock but its window's: it runs
// on the check path.
package logsample

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Options configures a Sampler.
type Options struct {
	// Msg is the message of the summary line, e.g. "check denials not logged".
	Msg string
	// KeyAttr names the key in the summary line (e.g. "reason"); "" leaves it out, for a
	// sampler of one key.
	KeyAttr string
	// Keys are the keys known in advance, each with a window of its own; any other key shares
	// one window, reported as "other". Nil: every key shares that window.
	Keys []string
	// Every is the window (default 1 s); windows start at multiples of it since the Unix epoch,
	// so a summary's "since" is a round time.
	Every time.Duration
	// Burst is how many lines of a key are logged in each window (default 1).
	Burst int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Sampler decides which of a repeated line's occurrences are logged. It is safe for
// concurrent use.
type Sampler struct {
	log   *slog.Logger
	o     Options
	after func(time.Duration, func()) // time.AfterFunc, or a test's
	// by holds every key of Options.Keys, made once, so it is read without a lock; other holds
	// any other key.
	by    map[string]*window
	other *window
}

// window is one key's current window.
type window struct {
	label      string
	mu         sync.Mutex
	n          int64      // the window's index: its start is n*Every since the epoch
	seen       int        // occurrences in the window
	suppressed int        // of them, not logged
	level      slog.Level // of the suppressed lines (the highest)
	armed      bool       // a timer will report the window if no later occurrence does
}

// New returns a sampler that logs its summaries to log.
func New(log *slog.Logger, o Options) *Sampler {
	if o.Every <= 0 {
		o.Every = time.Second
	}
	if o.Burst <= 0 {
		o.Burst = 1
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Sampler{log: log, o: o, after: func(wait time.Duration, f func()) { time.AfterFunc(wait, f) },
		by: make(map[string]*window, len(o.Keys)), other: &window{label: "other"}}
	for _, k := range o.Keys {
		s.by[k] = &window{label: k}
	}
	return s
}

// Allow reports whether an occurrence of key, to be logged at level, may be logged now. One
// that may not is counted, and the count logged once its window is over: by the next
// occurrence of that key, or by a timer when none comes.
func (s *Sampler) Allow(key string, level slog.Level) bool {
	w := s.by[key]
	if w == nil {
		w = s.other
	}
	now := s.o.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := s.index(now); n != w.n {
		s.flush(w)
		w.n, w.seen = n, 0
	}
	w.seen++
	if w.seen <= s.o.Burst {
		return true
	}
	w.suppressed++
	w.level = max(w.level, level)
	if !w.armed {
		s.arm(w, now)
	}
	return false
}

func (s *Sampler) index(t time.Time) int64 { return t.UnixNano() / int64(s.o.Every) }

// arm reports w's window shortly after it ends, unless an occurrence has moved w on by then;
// then the new window is watched in turn. At most one timer per key is pending.
func (s *Sampler) arm(w *window, now time.Time) {
	w.armed = true
	end := time.Unix(0, (w.n+1)*int64(s.o.Every))
	s.after(end.Sub(now)+50*time.Millisecond, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.armed = false
		now := s.o.Now()
		if s.index(now) != w.n {
			s.flush(w)
		} else if w.suppressed > 0 {
			s.arm(w, now)
		}
	})
}

// flush logs how many occurrences of w's window were not logged; w.mu is held.
func (s *Sampler) flush(w *window) {
	if w.suppressed == 0 {
		return
	}
	attrs := make([]any, 0, 8)
	if s.o.KeyAttr != "" {
		attrs = append(attrs, s.o.KeyAttr, w.label)
	}
	attrs = append(attrs, "suppressed", w.suppressed, "since", time.Unix(0, w.n*int64(s.o.Every)).UTC().Format(time.RFC3339),
		"every", s.o.Every.String())
	s.log.Log(context.Background(), w.level, s.o.Msg, attrs...)
	w.suppressed, w.level = 0, slog.LevelInfo
}
