//go:build unix

package daemon

import (
	"fmt"
	"syscall"
)

// openFileLimit is the soft RLIMIT_NOFILE (which Go raises to the hard limit at start).
func openFileLimit() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("getrlimit RLIMIT_NOFILE: %w", err)
	}
	return uint64(rl.Cur), nil
}
