package rillimport

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// Options says how Import brings a store in line with a snapshot.
type Options struct {
	// Prune revokes what an earlier import brought from Rill and Rill no longer has: its
	// tokens, services and users (deleting a user or service revokes all of its tokens).
	Prune bool
	// DryRun plans and reports, and writes nothing.
	DryRun bool
	// SkipOrphans leaves out the rows that refer to rows Rill's database does not have (see
	// Defect.Orphan) instead of refusing the import; Report.Skipped lists them.
	SkipOrphans bool
}

// Record kinds, in the order Report lists them.
const (
	KindOrg     = "org"
	KindProject = "project"
	KindUser    = "user"
	KindService = "service"
	KindToken   = "token"
)

// Kinds lists the record kinds in report order.
var Kinds = []string{KindOrg, KindProject, KindUser, KindService, KindToken}

// Ops of an Action.
const (
	OpCreate = "create"
	OpUpdate = "update"
	OpPrune  = "prune"
)

// Counts is what an import did (or would do) to one kind of record.
type Counts struct{ Created, Updated, Unchanged, Pruned int }

// Action is one record an import changes.
type Action struct {
	Kind, Op string
	// What names the record (ids and names, never secrets).
	What string
}

// Report says what Import did, or with DryRun would do.
type Report struct {
	Counts  map[string]*Counts
	Actions []Action
	// RevokedHere lists Rill's tokens that were revoked in rill-authd since an earlier import:
	// they are not brought back.
	RevokedHere []token.ID
	// Skipped lists the orphan rows SkipOrphans left out.
	Skipped []Defect
	// Loaded says the store was empty and took everything in one bulk load (store.Loader).
	Loaded bool
}

// ProjectUpdater is the store method Import needs when a project's prod deployment changed
// (both engines have it; store.Store has no project update).
type ProjectUpdater interface {
	UpdateProject(ctx context.Context, org, name string, fn func(*store.Project) error) (store.Project, error)
}

// Import brings st in line with snap. Everything is checked against the store before the first
// write, so that no write fails for a reason the store could have told beforehand (a taken
// email, service name or token id). An empty store takes it all in one bulk load when it can
// (see load: on PostgreSQL, one transaction). Otherwise the writes go one by one in an order in
// which each one's prerequisites are already there: prunes, orgs, projects, users, services,
// then tokens; one can still fail for I/O, and running the import again then finishes the job,
// since it is idempotent.
func Import(ctx context.Context, st store.Store, snap *Snapshot, opts Options) (*Report, error) {
	snap, skipped, problems := screen(snap, opts)
	p, err := plan(ctx, st, snap, opts, problems)
	if err != nil {
		return nil, err
	}
	p.report.Skipped = skipped
	if opts.DryRun {
		return p.report, nil
	}
	loaded, err := p.load(ctx, st, snap)
	if err == nil && !loaded {
		err = p.apply(ctx, st)
		if err == nil {
			err = p.markImported(ctx, st)
		}
	}
	if err != nil {
		_ = st.AppendAudit(context.WithoutCancel(ctx), store.AuditEvent{Time: time.Now().UTC(), Actor: CreatedBy,
			Action: "rill.import", Target: snap.Source, Outcome: "failed", Detail: err.Error()})
		return nil, fmt.Errorf("%w; run the import again to finish (it is idempotent)", err)
	}
	p.report.Loaded = loaded
	err = st.AppendAudit(ctx, store.AuditEvent{Time: time.Now().UTC(), Actor: CreatedBy, Action: "rill.import",
		Target: snap.Source, Outcome: "ok", Detail: p.report.Summary()})
	if err != nil {
		return p.report, fmt.Errorf("import done, but its audit event was not written: %w", err)
	}
	return p.report, nil
}

// Summary is the counts in one line, for the audit log.
func (r *Report) Summary() string {
	var parts []string
	for _, k := range Kinds {
		c := r.Counts[k]
		parts = append(parts, fmt.Sprintf("%s %d/%d/%d/%d", k, c.Created, c.Updated, c.Unchanged, c.Pruned))
	}
	sum := "created/updated/unchanged/pruned: " + strings.Join(parts, ", ")
	if len(r.Skipped) > 0 {
		sum += fmt.Sprintf("; skipped %d orphan rows", len(r.Skipped))
	}
	return sum
}
