package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/rill-authd/rill-authd/store/badger"
	"github.com/rill-authd/rill-authd/token"
)

// RestoreCmd is `rill-authd restore`: it loads a backup made by `rillctl admin backup` into an
// empty Badger store, with the daemon stopped.
type RestoreCmd struct {
	StoreFlags `embed:""`
	From       string `required:"" env:"-" type:"existingfile" placeholder:"FILE" help:"The backup to load (from rillctl admin backup -o FILE)."`
	Force      bool   `env:"-" help:"Replace everything in a store that is not empty with the backup."`
}

// Run restores the backup and says what the store now holds.
func (c *RestoreCmd) Run(_ context.Context, stderr io.Writer) error {
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
	st, err := badger.Restore(o, c.From, c.Force)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "rill-authd: restored %s into %s: %d orgs, %d users, %d user tokens, %d service tokens, %d signing keys (change feed at %d)\n",
		c.From, c.DataDir, st.Orgs, st.Users, st.Tokens[token.User], st.Tokens[token.Service], st.SigningKeys, st.LastSeq)
	fmt.Fprintln(stderr, "rill-authd: tokens revoked after this backup was made work again: revoke them again once the daemon is up")
	return nil
}
