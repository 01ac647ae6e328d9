package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// CopyStoreCmd is `rill-authd copy-store`: it copies every record of one store into another,
// either being a Badger directory or a PostgreSQL URL, to move a deployment between engines.
type CopyStoreCmd struct {
	From                  string        `required:"" env:"-" placeholder:"DIR|URL" help:"The store to copy: a data directory (stop the daemon on it first) or a postgres:// URL."`
	To                    string        `required:"" env:"-" placeholder:"DIR|URL" help:"The store to copy into, empty: a data directory (created if missing) or a postgres:// URL."`
	FromEncryptionKeyFile string        `env:"-" type:"path" placeholder:"FILE" help:"The --encryption-key-file of the source."`
	ToEncryptionKeyFile   string        `env:"-" type:"path" placeholder:"FILE" help:"The --encryption-key-file the destination is to be used with: signing keys (and, for a directory, everything) are encrypted with it."`
	Force                 bool          `env:"-" help:"Replace everything in a destination that is not empty."`
	AuditRetention        time.Duration `help:"The daemon's --audit-retention: audit events older than this are not copied into a directory." default:"2160h"`
}

// storeAt is the StoreFlags of a --from or --to: a URL, or else a directory.
func storeAt(loc, keyFile string) StoreFlags {
	if strings.Contains(loc, "://") {
		return StoreFlags{Store: loc, EncryptionKeyFile: keyFile}
	}
	return StoreFlags{DataDir: loc, EncryptionKeyFile: keyFile}
}

// Run copies; it prints what it copied on stdout, progress on stderr.
func (c *CopyStoreCmd) Run(ctx context.Context, stderr io.Writer) error {
	return c.run(ctx, os.Stdout, stderr)
}

func (c *CopyStoreCmd) run(ctx context.Context, stdout, stderr io.Writer) error {
	from, to := storeAt(c.From, c.FromEncryptionKeyFile), storeAt(c.To, c.ToEncryptionKeyFile)
	if from.Where() == to.Where() {
		return fmt.Errorf("copy-store: --from and --to are both %s", from.Where())
	}
	start := time.Now()
	src, err := from.open(ctx, storeOptions{Existing: true})
	if err != nil {
		if strings.Contains(err.Error(), "directory lock") {
			return fmt.Errorf("copy-store: the source %s is in use: stop the daemon on it first: %w", from.Where(), err)
		}
		return fmt.Errorf("copy-store: open the source %s: %w", from.Where(), err)
	}
	defer src.Close()
	say(stderr, "reading %s", from.Where())
	snap, err := store.Dump(ctx, src)
	if err != nil {
		return fmt.Errorf("copy-store: read %s: %w", from.Where(), err)
	}
	// Every record is checked before the destination is even opened: one that the
	// destination cannot store is named, and nothing is written.
	if err := snap.Validate(); err != nil {
		return fmt.Errorf("copy-store: %s holds text no store may hold; nothing was written: %w", from.Where(), err)
	}
	dst, err := to.open(ctx, storeOptions{AuditRetention: c.AuditRetention})
	if err != nil {
		return fmt.Errorf("copy-store: open the destination %s: %w", to.Where(), err)
	}
	defer dst.Close()
	l, ok := dst.(store.Loader)
	if !ok {
		return fmt.Errorf("copy-store: the destination's engine (%T) cannot bulk-load", dst)
	}
	say(stderr, "writing %s", to.Where())
	if err := l.Load(ctx, snap, c.Force); err != nil {
		if errors.Is(err, store.ErrNotEmpty) {
			return fmt.Errorf("copy-store: %s is not empty: copy into an empty store, or pass --force to replace everything in it", to.Where())
		}
		return fmt.Errorf("copy-store: write %s: %w", to.Where(), err)
	}
	counts, err := dst.CountTokens(ctx)
	if err != nil {
		return fmt.Errorf("copy-store: check %s: %w", to.Where(), err)
	}
	if n := counts[token.User] + counts[token.Service] + counts[token.Magic]; n != uint64(len(snap.Tokens)) {
		return fmt.Errorf("copy-store: %s holds %d tokens after the copy, want %d", to.Where(), n, len(snap.Tokens))
	}
	say(stdout, "copied %s to %s in %s: %s", from.Where(), to.Where(), time.Since(start).Round(time.Millisecond), countsLine(snap.Counts()))
	return nil
}
