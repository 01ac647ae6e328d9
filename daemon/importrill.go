package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/rill-authd/rill-authd/rillimport"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/store/badger"
)

// ImportRillCmd is `rill-authd import-rill`: it brings the store in line with a Rill admin
// database, with the daemon stopped (Badger allows one process per store).
type ImportRillCmd struct {
	StoreFlags      `embed:""`
	RillDatabaseURL string `name:"rill-database-url" required:"" placeholder:"URL" help:"PostgreSQL URL of Rill's admin database (postgres://user:pass@host/db), read in one read-only transaction; the environment variable keeps its password off the command line."`
	Prune           bool   `env:"-" help:"Also revoke the users, services and tokens an earlier import brought from Rill that Rill no longer has."`
	DryRun          bool   `env:"-" help:"Say what the import would do, and write nothing."`
}

// Run imports, then says what it did for each kind of record.
func (c *ImportRillCmd) Run(ctx context.Context, stderr io.Writer) error {
	// Read Rill first: an unreachable database or an unknown schema stops here, with the store
	// not even opened.
	snap, err := rillimport.Read(ctx, c.RillDatabaseURL)
	if err != nil {
		return fmt.Errorf("import-rill: %w", err)
	}
	fmt.Fprintf(stderr, "rill-authd: read Rill's admin database at %s: %d orgs, %d projects, %d users, %d services, %d live tokens\n",
		snap.Source, len(snap.Orgs), len(snap.Projects), len(snap.Users), len(snap.Services), len(snap.Tokens))
	st, err := c.openStore()
	if err != nil {
		return fmt.Errorf("import-rill: %w", err)
	}
	defer st.Close()
	rep, err := rillimport.Import(ctx, st, snap, rillimport.Options{Prune: c.Prune, DryRun: c.DryRun})
	if err != nil {
		return fmt.Errorf("import-rill: %w", err)
	}
	for _, a := range rep.Actions {
		// Every change of a dry run; otherwise what was revoked, which nobody should learn
		// only from a count.
		if c.DryRun {
			fmt.Fprintf(stderr, "rill-authd: would %s %s %s\n", a.Op, a.Kind, a.What)
		} else if a.Op == rillimport.OpPrune {
			fmt.Fprintf(stderr, "rill-authd: pruned %s %s\n", a.Kind, a.What)
		}
	}
	printReport(stderr, rep, c.DryRun)
	if snap.ExpiredTokens > 0 {
		fmt.Fprintf(stderr, "rill-authd: left out %d expired tokens\n", snap.ExpiredTokens)
	}
	if snap.RestrictedBindings > 0 {
		fmt.Fprintf(stderr, "rill-authd: left out %d project role bindings limited to some resources (rill-authd cannot limit a role to resources; those members get no role on that project here)\n",
			snap.RestrictedBindings)
	}
	if n := len(rep.RevokedHere); n > 0 {
		fmt.Fprintf(stderr, "rill-authd: left out %d tokens Rill still has that were revoked here\n", n)
	}
	if c.DryRun {
		fmt.Fprintln(stderr, "rill-authd: dry run: nothing was written")
	}
	return nil
}

func printReport(w io.Writer, rep *rillimport.Report, dry bool) {
	verb := "imported"
	if dry {
		verb = "would import"
	}
	for _, k := range rillimport.Kinds {
		n := rep.Counts[k]
		fmt.Fprintf(w, "rill-authd: %s %ss: %d created, %d updated, %d unchanged, %d pruned\n", verb, k, n.Created, n.Updated, n.Unchanged, n.Pruned)
	}
}

// openStore opens the Badger store the flags name. A dry run on a directory that does not
// exist plans against an empty store in memory, so that it creates nothing.
func (c *ImportRillCmd) openStore() (store.Store, error) {
	o := badger.Options{Dir: c.DataDir}
	if c.DryRun {
		if _, err := os.Stat(c.DataDir); errors.Is(err, os.ErrNotExist) {
			return badger.Open(badger.Options{InMemory: true})
		}
	}
	if c.EncryptionKeyFile != "" {
		var err error
		if o.EncryptionKey, err = store.ReadKeyFile(c.EncryptionKeyFile); err != nil {
			return nil, err
		}
	}
	st, err := badger.Open(o)
	if err != nil && strings.Contains(err.Error(), "directory lock") {
		return nil, fmt.Errorf("%w (stop the daemon on this store first)", err)
	}
	return st, err
}
