//go:build !linux

package badger

import "errors"

// exchange is renameat2's RENAME_EXCHANGE, which only Linux has.
func exchange(a, b string) error { return errors.ErrUnsupported }
