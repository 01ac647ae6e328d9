package logsample

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestTimerReportsTheTail covers the tail of a flood: when no later occurrence of a key comes
// to report its suppressed count, a timer does, once the window is over and not before; the
// window and burst are the sampler's (a second and 5 for check denials, 10 s and 1 for the
// store's outage lines).
func TestTimerReportsTheTail(t *testing.T) {
	for _, tc := range []struct {
		name    string
		every   time.Duration
		burst   int
		keyAttr string
		since   string
	}{
		{"denials: 5 a second", time.Second, 5, "reason", "2023-11-14T22:13:20Z"},
		{"an outage line: 1 in 10 s", 10 * time.Second, 1, "", "2023-11-14T22:13:20Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			start := time.Unix(1_700_000_000, 0) // a multiple of 10 s
			now := start.Add(tc.every / 4)
			s := New(slog.New(slog.NewJSONHandler(&buf, nil)), Options{Msg: "lines not logged", KeyAttr: tc.keyAttr,
				Keys: []string{"unknown"}, Every: tc.every, Burst: tc.burst, Now: func() time.Time { return now }})
			var timers []func()
			var waits []time.Duration
			s.after = func(wait time.Duration, f func()) { timers, waits = append(timers, f), append(waits, wait) }
			fire := func() {
				t.Helper()
				if len(timers) != 1 {
					t.Fatalf("%d timers pending, want 1", len(timers))
				}
				f := timers[0]
				timers = nil
				f()
			}
			logged := 0
			for range 100 {
				if s.Allow("unknown", slog.LevelWarn) {
					logged++
				}
			}
			if want := tc.every*3/4 + 50*time.Millisecond; logged != tc.burst || len(timers) != 1 || waits[0] != want {
				t.Fatalf("logged %d, timers %d (waits %v, want %v)", logged, len(timers), waits, want)
			}
			fire() // early (the clock has not moved): no report, the timer is set again
			if buf.Len() != 0 || len(timers) != 1 {
				t.Fatalf("an early timer reported %q or did not re-arm (%d)", buf.String(), len(timers))
			}
			now = start.Add(tc.every + 200*time.Millisecond)
			fire()
			var line map[string]any
			if err := json.Unmarshal(buf.Bytes(), &line); err != nil || strings.Count(buf.String(), "\n") != 1 {
				t.Fatalf("want one summary line, got %q (%v)", buf.String(), err)
			}
			want := map[string]any{"msg": "lines not logged", "suppressed": float64(100 - tc.burst), "since": tc.since,
				"every": tc.every.String(), "level": "WARN"}
			if tc.keyAttr != "" {
				want[tc.keyAttr] = "unknown"
			}
			for k, v := range want {
				if line[k] != v {
					t.Errorf("summary %s = %v, want %v (%s)", k, line[k], v, buf.String())
				}
			}
			if len(line) != len(want)+1 { // and time
				t.Errorf("summary has other attributes: %s", buf.String())
			}
			if len(timers) != 0 {
				t.Errorf("%d timers still pending after the report", len(timers))
			}
			// The new window starts afresh; a key outside Keys has a budget of its own.
			buf.Reset()
			for i := range tc.burst + 1 {
				if got := s.Allow("unknown", slog.LevelInfo); got != (i < tc.burst) {
					t.Fatalf("occurrence %d of the new window: logged %v", i, got)
				}
				if !s.Allow("not-a-key", slog.LevelError) && i < tc.burst {
					t.Fatalf("occurrence %d of another key not logged", i)
				}
			}
			if buf.Len() != 0 {
				t.Errorf("unexpected lines %q", buf.String())
			}
			// The next occurrence after the window reports it, without a timer.
			now = now.Add(tc.every)
			timers = nil
			if !s.Allow("unknown", slog.LevelInfo) || !strings.Contains(buf.String(), `"suppressed":1`) {
				t.Errorf("the next window's first occurrence: %q", buf.String())
			}
		})
	}
}

// TestConcurrentCountsAddUp: occurrences from many goroutines are each either logged or
// counted in a summary, none lost and none twice.
func TestConcurrentCountsAddUp(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := New(slog.New(slog.NewJSONHandler(&buf, nil)), Options{Msg: "m", Every: time.Second, Burst: 3, Now: clock})
	s.after = func(time.Duration, func()) {}
	var logged sync.WaitGroup
	var allowed, total int
	var cmu sync.Mutex
	for g := range 8 {
		logged.Add(1)
		go func() {
			defer logged.Done()
			for i := range 500 {
				if g == 0 && i%100 == 0 {
					mu.Lock()
					now = now.Add(time.Second)
					mu.Unlock()
				}
				ok := s.Allow("k", slog.LevelInfo)
				cmu.Lock()
				total++
				if ok {
					allowed++
				}
				cmu.Unlock()
			}
		}()
	}
	logged.Wait()
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	s.Allow("k", slog.LevelInfo) // reports the last window
	allowed++
	total++
	suppressed := 0
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m struct{ Suppressed int }
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		suppressed += m.Suppressed
	}
	if allowed+suppressed != total {
		t.Errorf("%d logged + %d in summaries != %d occurrences", allowed, suppressed, total)
	}
}

func BenchmarkAllow(b *testing.B) {
	s := New(slog.New(slog.DiscardHandler), Options{Msg: "m", Keys: []string{"k"}, Burst: 5})
	b.ReportAllocs()
	for b.Loop() {
		s.Allow("k", slog.LevelInfo)
	}
}
