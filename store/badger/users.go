package badger

import (
	"context"
	"fmt"
	"strconv"

	bdg "github.com/dgraph-io/badger/v4"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

func (s *DB) CreateUser(ctx context.Context, u store.User) error {
	if err := store.CheckFields("user "+u.ID, u); err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	return s.write(ctx, func(w *wtxn) error {
		if ok, err := exists(w.Txn, pUserMail+u.Email); err != nil || ok {
			return orConflict(err, "user %q", u.Email)
		}
		if err := w.Set([]byte(pUserMail+u.Email), []byte(u.ID)); err != nil {
			return err
		}
		if err := putJSON(w.Txn, pUser+u.ID, u); err != nil {
			return err
		}
		return w.change(store.ChangeUser, store.OpPut, u.ID)
	})
}

func (s *DB) GetUser(_ context.Context, id string) (store.User, error) {
	return get[store.User](s, pUser+id, "user "+id)
}

func (s *DB) GetUserByEmail(_ context.Context, email string) (store.User, error) {
	var u store.User
	err := s.view(func(txn *bdg.Txn) error {
		id, err := getString(txn, pUserMail+email)
		if err != nil {
			return err
		}
		return getJSON(txn, pUser+id, &u)
	})
	if err != nil {
		return u, fmt.Errorf("get user %q: %w", email, err)
	}
	return u, nil
}

func (s *DB) ListUsers(context.Context) ([]store.User, error) { return list[store.User](s, pUser) }

func (s *DB) UpdateUser(ctx context.Context, id string, fn func(*store.User) error) (store.User, error) {
	var u store.User
	err := s.write(ctx, func(w *wtxn) error {
		u = store.User{}
		if err := getJSON(w.Txn, pUser+id, &u); err != nil {
			return fmt.Errorf("user %s: %w", id, err)
		}
		oldEmail := u.Email
		if err := fn(&u); err != nil {
			return err
		}
		if err := store.CheckFields("user "+id, u); err != nil {
			return err
		}
		u.ID = id
		if err := moveIndex(w.Txn, pUserMail+oldEmail, pUserMail+u.Email, id, "user "+strconv.Quote(u.Email)); err != nil {
			return err
		}
		if err := putJSON(w.Txn, pUser+id, u); err != nil {
			return err
		}
		return w.change(store.ChangeUser, store.OpPut, id)
	})
	if err != nil {
		return u, fmt.Errorf("update user: %w", err)
	}
	return u, nil
}

func (s *DB) DeleteUser(ctx context.Context, id string) (int, error) {
	n, err := s.deleteOwner(ctx, token.User, id, func(txn *bdg.Txn) error {
		var u store.User
		if err := getJSON(txn, pUser+id, &u); err != nil {
			return fmt.Errorf("user %s: %w", id, err)
		}
		if err := txn.Delete([]byte(pUserMail + u.Email)); err != nil {
			return err
		}
		return txn.Delete([]byte(pUser + id))
	}, func(w *wtxn) error { return deleteIssuedTokens(w, id) })
	if err != nil {
		return n, fmt.Errorf("delete user: %w", err)
	}
	return n, nil
}
