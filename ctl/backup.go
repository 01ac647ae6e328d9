package ctl

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// BackupCmd is `rillctl admin backup`.
type BackupCmd struct {
	Output string `short:"o" required:"" type:"path" placeholder:"FILE" help:"Write the backup to FILE (mode 0600: it holds the signing keys and token hashes, unencrypted)."`
	Force  bool   `help:"Replace FILE if it exists."`
}

// Run downloads the backup into a temporary file next to FILE and renames it into place once
// it is whole, so FILE is never a partial backup.
func (c *BackupCmd) Run(g *Globals) error {
	if !c.Force {
		if err := absent(c.Output); err != nil {
			return err
		}
	}
	cl, err := g.client()
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(c.Output), "."+filepath.Base(c.Output)+".*.partial")
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the temporary file's name means nothing to the user
		}
		return fmt.Errorf("backup: cannot write %s: %w", c.Output, err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	n, err := cl.Backup(g.ctx, tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("backup: %w (nothing written to %s)", err, c.Output)
	}
	if !c.Force {
		if err := absent(c.Output); err != nil { // made while we downloaded
			return err
		}
	}
	if err := os.Rename(tmp.Name(), c.Output); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if g.JSON {
		return g.printJSON(map[string]any{"file": c.Output, "bytes": n})
	}
	fmt.Fprintf(g.out, "Wrote backup to %s (%s).\n", c.Output, size(n))
	return nil
}

func absent(path string) error {
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%s exists: pass --force to replace it", path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}

// size prints a byte count the way people read it, with the exact count for small files.
func size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d bytes", n)
	}
	f, suffix := float64(n), ""
	for _, s := range []string{"KiB", "MiB", "GiB", "TiB"} {
		f, suffix = f/unit, s
		if f < unit {
			break
		}
	}
	return fmt.Sprintf("%.1f %s, %d bytes", f, suffix, n)
}
