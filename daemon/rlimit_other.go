//go:build !unix

package daemon

import "errors"

func openFileLimit() (uint64, error) { return 0, errors.New("no RLIMIT_NOFILE on this system") }
