package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

func (s *DB) CreateService(ctx context.Context, sv store.Service) error {
	if err := store.CheckFields("service "+sv.ID, sv); err != nil {
		return fmt.Errorf("create service: %w", err)
	}
	doc, err := json.Marshal(sv)
	if err != nil {
		return fmt.Errorf("encode service: %w", err)
	}
	return s.write(ctx, func(w *wtx) error {
		if ok, err := exists(ctx, w, "SELECT FROM orgs WHERE name = $1", sv.Org); err != nil || !ok {
			return notFoundOr(err, "org %q", sv.Org)
		}
		if ok, err := exists(ctx, w, "SELECT FROM services WHERE org = $1 AND name = $2", sv.Org, sv.Name); err != nil || ok {
			return conflictOr(err, "service %q in org %q", sv.Name, sv.Org)
		}
		if err := finishPurge(w, sv.ID); err != nil {
			return err
		}
		_, err := w.Exec(ctx, `INSERT INTO services (id, org, name, doc) VALUES ($1, $2, $3, $4)
			ON CONFLICT (id) DO UPDATE SET org = excluded.org, name = excluded.name, doc = excluded.doc`, sv.ID, sv.Org, sv.Name, doc)
		if err != nil {
			return err
		}
		w.change(store.ChangeService, store.OpPut, sv.ID)
		return nil
	})
}

func (s *DB) GetService(ctx context.Context, id string) (store.Service, error) {
	var sv store.Service
	if err := s.closedErr(); err != nil {
		return sv, err
	}
	if err := getDoc(ctx, s.pool, &sv, "SELECT doc FROM services WHERE id = $1", id); err != nil {
		return sv, fmt.Errorf("get service %s: %w", id, unavail(err))
	}
	return sv, nil
}

func (s *DB) GetServiceByName(ctx context.Context, org, name string) (store.Service, error) {
	var sv store.Service
	if err := s.closedErr(); err != nil {
		return sv, err
	}
	if err := getDoc(ctx, s.pool, &sv, "SELECT doc FROM services WHERE org = $1 AND name = $2", org, name); err != nil {
		return sv, fmt.Errorf("get service %q in org %q: %w", name, org, unavail(err))
	}
	return sv, nil
}

func (s *DB) ListServices(ctx context.Context, org string) ([]store.Service, error) {
	if err := s.closedErr(); err != nil {
		return nil, err
	}
	ss, err := listDocs[store.Service](ctx, s.pool, "SELECT doc FROM services WHERE org = $1 ORDER BY name COLLATE \"C\"", org)
	if err != nil {
		return nil, fmt.Errorf("list services of %s: %w", org, unavail(err))
	}
	return ss, nil
}

func (s *DB) UpdateService(ctx context.Context, id string, fn func(*store.Service) error) (store.Service, error) {
	var sv store.Service
	err := s.write(ctx, func(w *wtx) error {
		sv = store.Service{}
		if err := getDoc(ctx, w, &sv, "SELECT doc FROM services WHERE id = $1 FOR UPDATE", id); err != nil {
			return fmt.Errorf("service %s: %w", id, err)
		}
		org := sv.Org
		if err := fn(&sv); err != nil {
			return err
		}
		if err := store.CheckFields("service "+id, sv); err != nil {
			return err
		}
		sv.ID, sv.Org = id, org // neither may change
		if ok, err := exists(ctx, w, "SELECT FROM services WHERE org = $1 AND name = $2 AND id <> $3", org, sv.Name, id); err != nil || ok {
			return conflictOr(err, "service %q in org %q", sv.Name, org)
		}
		doc, err := json.Marshal(sv)
		if err != nil {
			return fmt.Errorf("encode service: %w", err)
		}
		if _, err := w.Exec(ctx, "UPDATE services SET name = $2, doc = $3 WHERE id = $1", id, sv.Name, doc); err != nil {
			return err
		}
		w.change(store.ChangeService, store.OpPut, id)
		return nil
	})
	if err != nil {
		return sv, fmt.Errorf("update service: %w", err)
	}
	return sv, nil
}

func (s *DB) DeleteService(ctx context.Context, id string) (int, error) {
	n, err := s.deleteOwner(ctx, token.Service, id, "DELETE FROM services WHERE id = $1", "service %s", nil)
	if err != nil {
		return n, fmt.Errorf("delete service: %w", err)
	}
	return n, nil
}
