package badger

import (
	"context"
	"fmt"

	"github.com/rill-authd/rill-authd/store"
)

// UpdateProject applies fn to the stored project in one transaction (an import moves a
// project to its new prod deployment). fn cannot change the project's org or name.
func (s *DB) UpdateProject(ctx context.Context, org, name string, fn func(*store.Project) error) (store.Project, error) {
	var p store.Project
	err := s.write(ctx, func(w *wtxn) error {
		p = store.Project{}
		key := pProject + org + "/" + name
		if err := getJSON(w.Txn, key, &p); err != nil {
			return fmt.Errorf("project %s/%s: %w", org, name, err)
		}
		if err := fn(&p); err != nil {
			return err
		}
		if err := store.CheckFields("project "+store.ProjectKey(org, name), p); err != nil {
			return err
		}
		p.Org, p.Name = org, name
		if err := putJSON(w.Txn, key, p); err != nil {
			return err
		}
		return w.change(store.ChangeProject, store.OpPut, org+"/"+name)
	})
	if err != nil {
		return p, fmt.Errorf("update project: %w", err)
	}
	return p, nil
}
