package badger

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// The store holds token hashes and signing private keys: its directory is 0700 and every file
// in it 0600, whatever the directory was before. Badger creates its files 0666 (less the umask)
// and has no option for the mode, so restrictUmask makes the files it creates later (memtables,
// tables, value logs) 0600 too; it is process-wide, which is right for a process that holds
// these secrets.

// secureDir creates dir 0700, or tightens an existing one to 0700. A directory this process
// may not chmod (not its owner) is reported, not fatal: its files are 0600 all the same.
func secureDir(dir string) (warning string, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create data dir %q: %w", dir, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return "", fmt.Errorf("data dir: %w", err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("data dir %q is not a directory", dir)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Sprintf("data dir %s is mode %#o and could not be tightened to 0700 (%v): other users can list it", dir, perm, err), nil
		}
	}
	return "", nil
}

// secureFiles makes every regular file under dir 0600 (files left by an older version, or by
// a tool run under another umask). Badger runs while this walks: a file it deletes meanwhile
// (a flushed memtable) is skipped.
func secureFiles(dir string) error {
	return filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p != dir {
			return nil
		}
		if err != nil {
			return err
		}
		if !e.Type().IsRegular() {
			return nil
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if fi.Mode().Perm() != 0o600 {
			if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("make %s mode 0600: %w", p, err)
			}
		}
		return nil
	})
}
