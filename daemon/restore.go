package daemon

import (
	"context"
	"errors"
	"io"
	"os"

	"github.com/rill-authd/rill-authd/store/badger"
)

// RestoreCmd is `rill-authd restore`: it loads a backup made by `rillctl admin backup` into an
// empty Badger store, with the daemon stopped.
type RestoreCmd struct {
	StoreFlags `embed:""`
	From       string `required:"" env:"-" type:"existingfile" placeholder:"FILE" help:"The backup to load (from rillctl admin backup -o FILE). Every record in it is checked before the store is touched."`
	Force      bool   `env:"-" help:"Replace everything in a store that is not empty with the backup. The new store is built beside the old one and swapped in only once it opens, so a bad backup or a crash never loses the old one."`
}

// Run restores the backup; it prints what the store now holds on stdout, warnings on stderr.
func (c *RestoreCmd) Run(ctx context.Context, stderr io.Writer) error {
	return c.run(ctx, os.Stdout, stderr)
}

func (c *RestoreCmd) run(_ context.Context, stdout, stderr io.Writer) error {
	if IsPostgresURL(c.Store) {
		return errors.New("restore loads a backup into the embedded store in --data-dir; for a PostgreSQL store use pg_dump and pg_restore, " +
			"or restore into a directory and copy it over with rill-authd copy-store")
	}
	if err := c.check(); err != nil {
		return err
	}
	o, err := c.badgerOptions(storeOptions{})
	if err != nil {
		return err
	}
	say(stderr, "checking %s", c.From)
	st, err := badger.Restore(o, c.From, c.Force)
	if err != nil {
		return err
	}
	say(stdout, "restored %s into %s: %s (change feed at %d)", c.From, c.DataDir, countsLine(st.Counts), st.LastSeq)
	say(stderr, "warning: tokens revoked after this backup was made work again: revoke them again once the daemon is up")
	return nil
}
