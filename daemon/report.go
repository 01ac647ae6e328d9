package daemon

import (
	"fmt"
	"io"
	"strings"

	"github.com/rill-authd/rill-authd/store"
)

// The offline commands (import-rill, copy-store, restore) print their result (counts, what
// changed) on stdout, so `> file` and `| less` catch it, and progress and warnings on stderr.

// plural is n with the noun in the right number: "1 expired token", "2 expired tokens".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// countsLine lists a snapshot's records per kind in the words copy-store and restore share.
func countsLine(counts []store.KindCount) string {
	var parts []string
	for _, kc := range counts {
		parts = append(parts, kc.String())
	}
	return strings.Join(parts, ", ")
}

// say prints one line of a report.
func say(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, "rill-authd: "+format+"\n", args...)
}
