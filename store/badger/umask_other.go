//go:build !unix

package badger

func restrictUmask() {}
