package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
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

// Run copies, and says how many records of each kind it copied.
func (c *CopyStoreCmd) Run(ctx context.Context, stderr io.Writer) error {
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
	dst, err := to.open(ctx, storeOptions{AuditRetention: c.AuditRetention})
	if err != nil {
		return fmt.Errorf("copy-store: open the destination %s: %w", to.Where(), err)
	}
	defer dst.Close()
	l, ok := dst.(store.Loader)
	if !ok {
		return fmt.Errorf("copy-store: the destination's engine (%T) cannot bulk-load", dst)
	}
	snap, err := store.Dump(ctx, src)
	if err != nil {
		return fmt.Errorf("copy-store: read %s: %w", from.Where(), err)
	}
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
	if n := counts[token.User] + counts[token.Service]; n != uint64(len(snap.Tokens)) {
		return fmt.Errorf("copy-store: %s holds %d tokens after the copy, want %d", to.Where(), n, len(snap.Tokens))
	}
	var parts []string
	for _, kc := range snap.Counts() {
		parts = append(parts, fmt.Sprintf("%d %s", kc.N, kc.Kind))
	}
	fmt.Fprintf(stderr, "rill-authd: copied %s to %s in %s: %s\n", from.Where(), to.Where(),
		time.Since(start).Round(time.Millisecond), strings.Join(parts, ", "))
	return nil
}
