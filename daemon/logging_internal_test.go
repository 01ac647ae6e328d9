package daemon

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

// TestLiveLog: a reload's level and format reach loggers made before it, With attributes and
// groups kept; asking whether a level is on allocates nothing (the check path asks it for
// every allowed check).
func TestLiveLog(t *testing.T) {
	var buf bytes.Buffer
	root := newLiveLog(&buf, "info", "text")
	log := root.logger().With("part", "check").WithGroup("g")
	log.Debug("hidden")
	log.Info("one", "k", 1)
	root.set("debug", "json")
	log.Debug("two", "k", 2)
	root.set("warn", "json")
	log.Info("hidden")
	log.Warn("three")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{`level=INFO msg=one part=check g.k=1`, `"level":"DEBUG","msg":"two","part":"check","g":{"k":2}}`, `"level":"WARN","msg":"three","part":"check"}`}
	if len(lines) != len(want) {
		t.Fatalf("lines:\n%s", buf.String())
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("line %d: %s, want it to contain %s", i, lines[i], w)
		}
	}
	if n := testing.AllocsPerRun(100, func() { log.Enabled(context.Background(), slog.LevelDebug) }); n != 0 {
		t.Errorf("Enabled allocates %v times", n)
	}
}
