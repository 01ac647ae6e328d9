package badger

import (
	"context"
	"fmt"

	bdg "github.com/dgraph-io/badger/v4"
	"github.com/rill-authd/rill-authd/store"
)

func (s *DB) CreateOrg(ctx context.Context, o store.Org) error {
	if err := store.CheckFields("org "+o.Name, o); err != nil {
		return fmt.Errorf("create org: %w", err)
	}
	return s.write(ctx, func(w *wtxn) error {
		if ok, err := exists(w.Txn, pOrg+o.Name); err != nil || ok {
			return orConflict(err, "org %q", o.Name)
		}
		if err := putJSON(w.Txn, pOrg+o.Name, o); err != nil {
			return err
		}
		return w.change(store.ChangeOrg, store.OpPut, o.Name)
	})
}

func orConflict(err error, format string, args ...any) error {
	if err != nil {
		return err
	}
	return fmt.Errorf(format+": %w", append(args, store.ErrConflict)...)
}

func (s *DB) GetOrg(_ context.Context, name string) (store.Org, error) {
	return get[store.Org](s, pOrg+name, "org "+name)
}

func (s *DB) ListOrgs(context.Context) ([]store.Org, error) { return list[store.Org](s, pOrg) }

func (s *DB) CreateProject(ctx context.Context, p store.Project) error {
	if err := store.CheckFields("project "+store.ProjectKey(p.Org, p.Name), p); err != nil {
		return fmt.Errorf("create project: %w", err)
	}
	return s.write(ctx, func(w *wtxn) error {
		if ok, err := exists(w.Txn, pOrg+p.Org); err != nil || !ok {
			return orNotFound(err, "org %q", p.Org)
		}
		key := pProject + p.Org + "/" + p.Name
		if ok, err := exists(w.Txn, key); err != nil || ok {
			return orConflict(err, "project %q in org %q", p.Name, p.Org)
		}
		if err := putJSON(w.Txn, key, p); err != nil {
			return err
		}
		return w.change(store.ChangeProject, store.OpPut, p.Org+"/"+p.Name)
	})
}

func orNotFound(err error, format string, args ...any) error {
	if err != nil {
		return err
	}
	return fmt.Errorf(format+": %w", append(args, store.ErrNotFound)...)
}

func (s *DB) GetProject(_ context.Context, org, name string) (store.Project, error) {
	return get[store.Project](s, pProject+org+"/"+name, "project "+org+"/"+name)
}

func (s *DB) ListProjects(_ context.Context, org string) ([]store.Project, error) {
	return list[store.Project](s, pProject+org+"/")
}

// moveIndex points a unique index entry from oldKey to newKey (a rename or a new email),
// refusing a newKey that is taken; what names the record in that error.
func moveIndex(txn *bdg.Txn, oldKey, newKey, id, what string) error {
	if oldKey == newKey {
		return nil
	}
	if ok, err := exists(txn, newKey); err != nil || ok {
		return orConflict(err, "%s", what)
	}
	if err := txn.Delete([]byte(oldKey)); err != nil {
		return err
	}
	return txn.Set([]byte(newKey), []byte(id))
}
