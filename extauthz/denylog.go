package extauthz

import (
	"log/slog"
	"time"

	"github.com/rill-authd/rill-authd/internal/logsample"
	"github.com/rill-authd/rill-authd/metrics"
)

// denialBurst is how many denials of one reason are logged in each second; the rest of that
// second are counted and reported in one line.
const denialBurst = 5

// newDenialLog samples the log lines of denied checks per reason (the metrics label, a fixed
// set): a flood of bad tokens writes a few lines a second, not one per check. The metrics still
// count every check; they are recorded elsewhere.
func newDenialLog(log *slog.Logger, now func() time.Time) *logsample.Sampler {
	return logsample.New(log, logsample.Options{Msg: "check denials not logged", KeyAttr: "reason", Keys: metrics.Reasons,
		Every: time.Second, Burst: denialBurst, Now: now})
}
