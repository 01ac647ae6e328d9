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
	Prune           bool   `env:"-" help:"Also remove what an earlier import brought from Rill that Rill no longer has: revoke its tokens, delete its users and services (which revokes their tokens)."`
	DryRun          bool   `env:"-" help:"Say what the import would do, and write nothing."`
	SkipOrphans     bool   `env:"-" help:"Leave out the rows of Rill's database that refer to rows it does not have (a role binding whose user is gone, a token whose owner is), and list them, instead of refusing the whole import."`
}

// Run imports. The result (what changed, counts, what was left out) goes to stdout; progress
// and warnings to stderr.
func (c *ImportRillCmd) Run(ctx context.Context, stderr io.Writer) error {
	return c.run(ctx, os.Stdout, stderr)
}

func (c *ImportRillCmd) run(ctx context.Context, stdout, stderr io.Writer) error {
	if c.Store != "" && sameDatabase(c.Store, c.RillDatabaseURL) {
		return fmt.Errorf("import-rill: --store and --rill-database-url name the same database, %s: rill-authd's store needs a database of its own", c.Where())
	}
	// Read Rill first: an unreachable database or an unknown schema stops here, with the store
	// not even opened.
	snap, err := rillimport.Read(ctx, c.RillDatabaseURL)
	if err != nil {
		return fmt.Errorf("import-rill: %w", err)
	}
	say(stderr, "read Rill's admin database at %s: %s, %s, %s, %s, %s", snap.Source, plural(len(snap.Orgs), "org"),
		plural(len(snap.Projects), "project"), plural(len(snap.Users), "user"), plural(len(snap.Services), "service"),
		plural(len(snap.Tokens), "live token"))
	opts := rillimport.Options{Prune: c.Prune, DryRun: c.DryRun, SkipOrphans: c.SkipOrphans}
	if err := rillimport.Check(snap, opts); err != nil {
		return fmt.Errorf("import-rill: %w", err)
	}
	st, err := c.openStore(ctx)
	if err != nil {
		return fmt.Errorf("import-rill: %w", err)
	}
	defer st.Close()
	rep, err := rillimport.Import(ctx, st, snap, opts)
	if err != nil {
		return fmt.Errorf("import-rill: %w", err)
	}
	for _, a := range rep.Actions {
		// Every change of a dry run; otherwise what was revoked, which nobody should learn
		// only from a count.
		if c.DryRun {
			say(stdout, "would %s %s %s", a.Op, a.Kind, a.What)
		} else if a.Op == rillimport.OpPrune {
			say(stdout, "pruned %s %s", a.Kind, a.What)
		}
	}
	printReport(stdout, rep, c.DryRun)
	if rep.Loaded {
		say(stdout, "the store was empty: everything went in one bulk load (on PostgreSQL, one transaction); "+
			"it counts as bootstrapped, so the daemon creates no superuser of its own: Rill's superusers administer it with their tokens")
	}
	if snap.PublicURLsUnread != "" {
		say(stdout, "left out every public URL: %s", snap.PublicURLsUnread)
	}
	if snap.ExpiredTokens > 0 {
		say(stdout, "left out %s", plural(snap.ExpiredTokens, "expired token"))
	}
	if snap.RestrictedBindings > 0 {
		say(stdout, "%s limited to some resources, as in Rill (their runtime JWTs carry Rill's security rules)",
			plural(snap.RestrictedBindings, "project role binding"))
	}
	if n := len(rep.RevokedHere); n > 0 {
		say(stdout, "left out %s Rill still has that %s revoked here", plural(n, "token"), map[bool]string{true: "was", false: "were"}[n == 1])
	}
	if n := len(rep.Skipped); n > 0 {
		verb := "skipped"
		if c.DryRun {
			verb = "would skip"
		}
		for _, d := range rep.Skipped {
			say(stdout, "%s orphan %s", verb, d)
		}
		say(stdout, "%s %s (--skip-orphans)", verb, plural(n, "orphan row"))
	}
	if c.DryRun {
		say(stdout, "dry run: nothing was written")
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
		say(w, "%s %ss: %d created, %d updated, %d unchanged, %d pruned", verb, k, n.Created, n.Updated, n.Unchanged, n.Pruned)
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
