package rillimport

import (
	"fmt"
	"slices"
	"strings"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// Defect is a row of Rill's database that the import cannot take as it is, named by its table
// and id (or key columns) so that it can be found and fixed in Rill. Rill's foreign keys rule
// most of these out; a database restored in part, or edited by hand, has them.
type Defect struct {
	Table string
	// ID is the row's id, or its key columns for a table without one ("user_id=… org_id=…").
	ID      string
	Problem string
	// Orphan says the row refers to a row that does not exist (a binding whose user is gone, a
	// token whose owner is): --skip-orphans leaves it out. Any other defect stops the import.
	Orphan bool
}

func (d Defect) String() string {
	return fmt.Sprintf("%s row %s: %s", d.Table, d.ID, d.Problem)
}

// keyCols names a row of a table keyed by columns: "user_id=… org_id=…".
func keyCols(kv ...string) string {
	var parts []string
	for i := 0; i+1 < len(kv); i += 2 {
		parts = append(parts, kv[i]+"="+kv[i+1])
	}
	return strings.Join(parts, " ")
}

// orphan records a row that refers to one that does not exist. A row whose parent was itself
// set aside (gone) is left out without a report of its own: its parent's names the cause.
func (r *reader) orphan(table, id string, parents []string, format string, args ...any) {
	for _, p := range parents {
		if r.gone[p] {
			return
		}
	}
	r.snap.Defects = append(r.snap.Defects, Defect{Table: table, ID: id, Problem: fmt.Sprintf(format, args...), Orphan: true})
}

// setAside records a row the import cannot take, and marks its id gone so that the rows that
// refer to it are left out quietly.
func (r *reader) setAside(d Defect, id string) {
	r.gone[id] = true
	r.snap.Defects = append(r.snap.Defects, d)
}

// tokenTable is the Rill table a token of kind k was read from.
func tokenTable(t store.Token) string {
	switch t.Kind {
	case token.Service:
		return "service_auth_tokens"
	case token.Magic:
		return "magic_auth_tokens"
	}
	return "user_auth_tokens"
}

// screen checks the rows of snap before anything is planned: it adds the tokens whose owner
// Rill's database does not have to the defects, and returns snap without the orphans when
// opts.SkipOrphans (then listed in skipped), and a problem for every defect that stops the
// import.
func screen(snap *Snapshot, opts Options) (out *Snapshot, skipped []Defect, problems []string) {
	owners := map[string]bool{}
	for _, u := range snap.Users {
		owners[u.ID] = true
	}
	for _, s := range snap.Services {
		owners[s.ID] = true
	}
	for _, p := range snap.Projects { // the owners of magic tokens
		owners[store.MagicOwner(p.Org, p.Name)] = true
	}
	setAside := map[string]Defect{} // service id -> why it is not in snap
	for _, d := range snap.Defects {
		if d.Table == "service" {
			setAside[d.ID] = d
		}
	}
	defects := slices.Clone(snap.Defects)
	var tokens []store.Token
	for _, t := range snap.Tokens {
		if owners[t.OwnerID] {
			tokens = append(tokens, t)
			continue
		}
		d := Defect{Table: tokenTable(t), ID: t.ID.String(), Orphan: true,
			Problem: fmt.Sprintf("its owner, %s %s, does not exist", ownerWord(t.Kind), t.OwnerID)}
		if parent, ok := setAside[t.OwnerID]; ok {
			d.Problem = fmt.Sprintf("its service %s is left out (service row %s)", t.OwnerID, parent.ID)
			d.Orphan = parent.Orphan
		}
		defects = append(defects, d)
	}
	for _, d := range defects {
		switch {
		case d.Orphan && opts.SkipOrphans:
			skipped = append(skipped, d)
		case d.Orphan:
			problems = append(problems, d.String()+" (an orphan: --skip-orphans leaves such rows out)")
		default:
			problems = append(problems, d.String())
		}
	}
	c := *snap
	c.Tokens = tokens
	return &c, skipped, problems
}

func ownerWord(k token.Kind) string {
	switch k {
	case token.Service:
		return "service"
	case token.Magic:
		return "project"
	}
	return "user"
}

// Check refuses, before any store is opened, a snapshot with rows the import cannot take (see
// Defect): every one that opts does not let it skip is named. Import checks the same first.
func Check(snap *Snapshot, opts Options) error {
	if _, _, problems := screen(snap, opts); len(problems) > 0 {
		return problemsError(problems)
	}
	return nil
}

func problemsError(problems []string) error {
	return fmt.Errorf("the store cannot take this import as it is; nothing was written:\n  %s", strings.Join(problems, "\n  "))
}
