package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/rill-authd/rill-authd/store"
)

// UpdateProject applies fn to the stored project in one transaction (an import moves a
// project to its new prod deployment). fn cannot change the project's org or name.
func (s *DB) UpdateProject(ctx context.Context, org, name string, fn func(*store.Project) error) (store.Project, error) {
	var p store.Project
	err := s.write(ctx, func(w *wtx) error {
		p = store.Project{}
		if err := getDoc(ctx, w, &p, "SELECT doc FROM projects WHERE org = $1 AND name = $2 FOR UPDATE", org, name); err != nil {
			return fmt.Errorf("project %s/%s: %w", org, name, err)
		}
		if err := fn(&p); err != nil {
			return err
		}
		if err := store.CheckFields("project "+store.ProjectKey(org, name), p); err != nil {
			return err
		}
		p.Org, p.Name = org, name
		doc, err := json.Marshal(p)
		if err != nil {
			return fmt.Errorf("encode project: %w", err)
		}
		if _, err := w.Exec(ctx, "UPDATE projects SET doc = $3 WHERE org = $1 AND name = $2", org, name, doc); err != nil {
			return err
		}
		w.change(store.ChangeProject, store.OpPut, org+"/"+name)
		return nil
	})
	if err != nil {
		return p, fmt.Errorf("update project: %w", err)
	}
	return p, nil
}
