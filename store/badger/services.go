package badger

import (
	"context"
	"fmt"

	bdg "github.com/dgraph-io/badger/v4"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

func (s *DB) CreateService(ctx context.Context, sv store.Service) error {
	if err := store.CheckFields("service "+sv.ID, sv); err != nil {
		return fmt.Errorf("create service: %w", err)
	}
	return s.write(ctx, func(w *wtxn) error {
		if ok, err := exists(w.Txn, pOrg+sv.Org); err != nil || !ok {
			return orNotFound(err, "org %q", sv.Org)
		}
		idx := pSvcName + sv.Org + "/" + sv.Name
		if ok, err := exists(w.Txn, idx); err != nil || ok {
			return orConflict(err, "service %q in org %q", sv.Name, sv.Org)
		}
		if err := w.Set([]byte(idx), []byte(sv.ID)); err != nil {
			return err
		}
		if err := putJSON(w.Txn, pService+sv.ID, sv); err != nil {
			return err
		}
		return w.change(store.ChangeService, store.OpPut, sv.ID)
	})
}

func (s *DB) GetService(_ context.Context, id string) (store.Service, error) {
	return get[store.Service](s, pService+id, "service "+id)
}

func (s *DB) GetServiceByName(_ context.Context, org, name string) (store.Service, error) {
	var sv store.Service
	err := s.view(func(txn *bdg.Txn) error {
		id, err := getString(txn, pSvcName+org+"/"+name)
		if err != nil {
			return err
		}
		return getJSON(txn, pService+id, &sv)
	})
	if err != nil {
		return sv, fmt.Errorf("get service %q in org %q: %w", name, org, err)
	}
	return sv, nil
}

func (s *DB) ListServices(_ context.Context, org string) ([]store.Service, error) {
	var out []store.Service
	err := s.view(func(txn *bdg.Txn) error {
		return scan(txn, pSvcName+org+"/", func(_, id []byte) error {
			var sv store.Service
			if err := getJSON(txn, pService+string(id), &sv); err != nil {
				return fmt.Errorf("service %s: %w", id, err)
			}
			out = append(out, sv)
			return nil
		})
	})
	return out, err
}

func (s *DB) UpdateService(ctx context.Context, id string, fn func(*store.Service) error) (store.Service, error) {
	var sv store.Service
	err := s.write(ctx, func(w *wtxn) error {
		sv = store.Service{}
		if err := getJSON(w.Txn, pService+id, &sv); err != nil {
			return fmt.Errorf("service %s: %w", id, err)
		}
		org, oldName := sv.Org, sv.Name
		if err := fn(&sv); err != nil {
			return err
		}
		if err := store.CheckFields("service "+id, sv); err != nil {
			return err
		}
		sv.ID, sv.Org = id, org // neither may change
		what := fmt.Sprintf("service %q in org %q", sv.Name, org)
		if err := moveIndex(w.Txn, pSvcName+org+"/"+oldName, pSvcName+org+"/"+sv.Name, id, what); err != nil {
			return err
		}
		if err := putJSON(w.Txn, pService+id, sv); err != nil {
			return err
		}
		return w.change(store.ChangeService, store.OpPut, id)
	})
	if err != nil {
		return sv, fmt.Errorf("update service: %w", err)
	}
	return sv, nil
}

func (s *DB) DeleteService(ctx context.Context, id string) (int, error) {
	n, err := s.deleteOwner(ctx, token.Service, id, func(txn *bdg.Txn) error {
		var sv store.Service
		if err := getJSON(txn, pService+id, &sv); err != nil {
			return fmt.Errorf("service %s: %w", id, err)
		}
		if err := txn.Delete([]byte(pSvcName + sv.Org + "/" + sv.Name)); err != nil {
			return err
		}
		return txn.Delete([]byte(pService + id))
	}, nil)
	if err != nil {
		return n, fmt.Errorf("delete service: %w", err)
	}
	return n, nil
}
