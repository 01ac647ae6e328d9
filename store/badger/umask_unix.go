//go:build unix

package badger

import "syscall"

// restrictUmask keeps group and others out of every file this process creates from now on.
func restrictUmask() {
	old := syscall.Umask(0o077)
	syscall.Umask(old | 0o077)
}
