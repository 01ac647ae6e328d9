package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/rill-authd/rill-authd/store"
)

func (s *DB) CreateOrg(ctx context.Context, o store.Org) error {
	if err := store.CheckFields("org "+o.Name, o); err != nil {
		return fmt.Errorf("create org: %w", err)
	}
	doc, err := json.Marshal(o)
	if err != nil {
		return fmt.Errorf("encode org: %w", err)
	}
	return s.write(ctx, func(w *wtx) error {
		if ok, err := exists(ctx, w, "SELECT FROM orgs WHERE name = $1", o.Name); err != nil || ok {
			return conflictOr(err, "org %q", o.Name)
		}
		if _, err := w.Exec(ctx, "INSERT INTO orgs (name, doc) VALUES ($1, $2)", o.Name, doc); err != nil {
			return err
		}
		w.change(store.ChangeOrg, store.OpPut, o.Name)
		return nil
	})
}

// conflictOr returns err, or (err nil) a conflict naming the record.
func conflictOr(err error, format string, args ...any) error {
	if err != nil {
		return err
	}
	return orConflict(format, args...)
}

// notFoundOr returns err, or (err nil) a not-found naming the record.
func notFoundOr(err error, format string, args ...any) error {
	if err != nil {
		return err
	}
	return fmt.Errorf(format+": %w", append(args, store.ErrNotFound)...)
}

func (s *DB) GetOrg(ctx context.Context, name string) (store.Org, error) {
	var o store.Org
	if err := s.closedErr(); err != nil {
		return o, err
	}
	if err := getDoc(ctx, s.pool, &o, "SELECT doc FROM orgs WHERE name = $1", name); err != nil {
		return o, fmt.Errorf("get org %s: %w", name, unavail(err))
	}
	return o, nil
}

func (s *DB) ListOrgs(ctx context.Context) ([]store.Org, error) {
	if err := s.closedErr(); err != nil {
		return nil, err
	}
	os, err := listDocs[store.Org](ctx, s.pool, "SELECT doc FROM orgs ORDER BY name COLLATE \"C\"")
	if err != nil {
		return nil, fmt.Errorf("list orgs: %w", unavail(err))
	}
	return os, nil
}

func (s *DB) CreateProject(ctx context.Context, p store.Project) error {
	if err := store.CheckFields("project "+store.ProjectKey(p.Org, p.Name), p); err != nil {
		return fmt.Errorf("create project: %w", err)
	}
	doc, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode project: %w", err)
	}
	return s.write(ctx, func(w *wtx) error {
		if ok, err := exists(ctx, w, "SELECT FROM orgs WHERE name = $1", p.Org); err != nil || !ok {
			return notFoundOr(err, "org %q", p.Org)
		}
		if ok, err := exists(ctx, w, "SELECT FROM projects WHERE org = $1 AND name = $2", p.Org, p.Name); err != nil || ok {
			return conflictOr(err, "project %q in org %q", p.Name, p.Org)
		}
		if _, err := w.Exec(ctx, "INSERT INTO projects (org, name, doc) VALUES ($1, $2, $3)", p.Org, p.Name, doc); err != nil {
			return err
		}
		w.change(store.ChangeProject, store.OpPut, p.Org+"/"+p.Name)
		return nil
	})
}

func (s *DB) GetProject(ctx context.Context, org, name string) (store.Project, error) {
	var p store.Project
	if err := s.closedErr(); err != nil {
		return p, err
	}
	if err := getDoc(ctx, s.pool, &p, "SELECT doc FROM projects WHERE org = $1 AND name = $2", org, name); err != nil {
		return p, fmt.Errorf("get project %s/%s: %w", org, name, unavail(err))
	}
	return p, nil
}

func (s *DB) ListProjects(ctx context.Context, org string) ([]store.Project, error) {
	if err := s.closedErr(); err != nil {
		return nil, err
	}
	ps, err := listDocs[store.Project](ctx, s.pool, "SELECT doc FROM projects WHERE org = $1 ORDER BY name COLLATE \"C\"", org)
	if err != nil {
		return nil, fmt.Errorf("list projects of %s: %w", org, unavail(err))
	}
	return ps, nil
}
