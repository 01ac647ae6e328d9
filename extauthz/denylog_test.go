package extauthz

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestDenialLogTimer covers the tail of a flood: when no later denial of a reason comes to
// report its suppressed count, a timer does, once the window is over and not before.
func TestDenialLogTimer(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(1_700_000_000, 0)
	d := newDenialLog(slog.New(slog.NewJSONHandler(&buf, nil)), func() time.Time { return now })
	var timers []func()
	var waits []time.Duration
	d.after = func(wait time.Duration, f func()) { timers, waits = append(timers, f), append(waits, wait) }
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
		if d.allow("unknown", slog.LevelInfo) {
			logged++
		}
	}
	if logged != denialBurst || len(timers) != 1 || waits[0] != time.Second+50*time.Millisecond {
		t.Fatalf("logged %d, timers %d (waits %v)", logged, len(timers), waits)
	}
	fire() // early (the clock has not moved): no report, the timer is set again
	if buf.Len() != 0 || len(timers) != 1 {
		t.Fatalf("an early timer reported %q or did not re-arm (%d)", buf.String(), len(timers))
	}
	now = now.Add(1200 * time.Millisecond)
	fire()
	var line struct {
		Msg        string
		Reason     string
		Suppressed int
		Second     string
		Level      string
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil || strings.Count(buf.String(), "\n") != 1 {
		t.Fatalf("want one summary line, got %q (%v)", buf.String(), err)
	}
	if line.Msg != "check denials not logged" || line.Reason != "unknown" || line.Suppressed != 95 ||
		line.Second != "2023-11-14T22:13:20Z" || line.Level != "INFO" {
		t.Errorf("summary %+v", line)
	}
	if len(timers) != 0 {
		t.Errorf("%d timers still pending after the report", len(timers))
	}
	// The new second starts afresh; a reason outside the fixed set has a budget of its own.
	buf.Reset()
	for i := range denialBurst + 1 {
		if got := d.allow("unknown", slog.LevelInfo); got != (i < denialBurst) {
			t.Fatalf("denial %d of the new second: logged %v", i, got)
		}
		if !d.allow("not-a-reason", slog.LevelError) && i < denialBurst {
			t.Fatalf("denial %d of another reason not logged", i)
		}
	}
	if buf.Len() != 0 {
		t.Errorf("unexpected lines %q", buf.String())
	}
}
