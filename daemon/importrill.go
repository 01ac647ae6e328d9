package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/rill-authd/rill-authd/rillimport"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/store/badger"
)

// ImportRillCmd is `rill-authd import-rill`: it brings the store in line with a Rill admin
// database. A Badger store allows one process, so the daemon on it must be stopped; a
// PostgreSQL store takes the import while its replicas run.
type ImportRillCmd struct {
	StoreFlags      `embed:""`
	RillDatabaseURL string `name:"rill-database-url" required:"" placeholder:"URL" help:"PostgreSQL URL of Rill's admin database (postgres://user:pass@host/db), read in one read-only transaction; the environment variable keeps its password off the command line."`
	Prune           bool   `env:"-" help:"Also revoke the users, services and tokens an earlier import brought from Rill that Rill no longer has."`
	DryRun          bool   `env:"-" help:"Say what the import would do, and write nothing."`
}

// Run imports, then says what it did for each kind of record.
func (c *ImportRillCmd) Run(ctx context.Context, stderr io.Writer) error {
	if c.Store != "" && sameDatabase(c.Store, c.RillDatabaseURL) {
		return fmt.Errorf("import-rill: --store and --rill-database-url name the same database, %s: rill-authd's store needs a database of its own", c.Where())
	}
	// Read Rill first: an unreachable database or an unknown schema stops here, with the store
	// not even opened.
	snap, err := rillimport.Read(ctx, c.RillDatabaseURL)
	if err != nil {
		return fmt.Errorf("import-rill: %w", err)
	}
	fmt.Fprintf(stderr, "rill-authd: read Rill's admin database at %s: %d orgs, %d projects, %d users, %d services, %d live tokens\n",
		snap.Source, len(snap.Orgs), len(snap.Projects), len(snap.Users), len(snap.Services), len(snap.Tokens))
	st, err := c.openStore(ctx)
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
	if rep.Loaded {
		fmt.Fprintln(stderr, "rill-authd: the store was empty: everything went in one bulk load (on PostgreSQL, one transaction); "+
			"it counts as bootstrapped, so the daemon creates no superuser of its own: Rill's superusers administer it with their tokens")
	}
	if snap.ExpiredTokens > 0 {
		fmt.Fprintf(stderr, "rill-authd: left out %d expired tokens\n", snap.ExpiredTokens)
	}
	if snap.RestrictedBindings > 0 {
		fmt.Fprintf(stderr, "rill-authd: %d users' project roles are limited to some resources, as in Rill (their runtime JWTs carry Rill's security rules)\n",
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

// openStore opens the store the flags name. A dry run on a data directory that does not exist
// plans against an empty store in memory, so that it creates nothing.
func (c *ImportRillCmd) openStore(ctx context.Context) (store.Store, error) {
	if c.DryRun && c.Store == "" && c.DataDir != "" {
		if _, err := os.Stat(c.DataDir); errors.Is(err, os.ErrNotExist) {
			return badger.Open(badger.Options{InMemory: true})
		}
	}
	st, err := c.StoreFlags.open(ctx, storeOptions{})
	if err != nil {
		if strings.Contains(err.Error(), "directory lock") {
			return nil, fmt.Errorf("the store %s is in use: stop the daemon on it first: %w", c.Where(), err)
		}
		return nil, fmt.Errorf("open the store %s: %w", c.Where(), err)
	}
	return st, nil
}

// sameDatabase reports whether two PostgreSQL URLs name the same database of the same server.
func sameDatabase(a, b string) bool {
	ca, errA := pgx.ParseConfig(a)
	cb, errB := pgx.ParseConfig(b)
	return errA == nil && errB == nil && ca.Host == cb.Host && ca.Port == cb.Port && ca.Database == cb.Database
}
