package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

func (s *DB) CreateUser(ctx context.Context, u store.User) error {
	if err := store.CheckFields("user "+u.ID, u); err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	doc, err := json.Marshal(u)
	if err != nil {
		return fmt.Errorf("encode user: %w", err)
	}
	return s.write(ctx, func(w *wtx) error {
		if ok, err := exists(ctx, w, "SELECT FROM users WHERE email = $1", u.Email); err != nil || ok {
			return conflictOr(err, "user %q", u.Email)
		}
		if err := finishPurge(w, u.ID); err != nil {
			return err
		}
		// Badger overwrites a record whose id is taken under a new email; so does this.
		_, err := w.Exec(ctx, `INSERT INTO users (id, email, doc) VALUES ($1, $2, $3)
			ON CONFLICT (id) DO UPDATE SET email = excluded.email, doc = excluded.doc`, u.ID, u.Email, doc)
		if err != nil {
			return err
		}
		w.change(store.ChangeUser, store.OpPut, u.ID)
		return nil
	})
}

func (s *DB) GetUser(ctx context.Context, id string) (store.User, error) {
	var u store.User
	if err := s.closedErr(); err != nil {
		return u, err
	}
	if err := getDoc(ctx, s.pool, &u, "SELECT doc FROM users WHERE id = $1", id); err != nil {
		return u, fmt.Errorf("get user %s: %w", id, unavail(err))
	}
	return u, nil
}

func (s *DB) GetUserByEmail(ctx context.Context, email string) (store.User, error) {
	var u store.User
	if err := s.closedErr(); err != nil {
		return u, err
	}
	if err := getDoc(ctx, s.pool, &u, "SELECT doc FROM users WHERE email = $1", email); err != nil {
		return u, fmt.Errorf("get user %q: %w", email, unavail(err))
	}
	return u, nil
}

func (s *DB) ListUsers(ctx context.Context) ([]store.User, error) {
	if err := s.closedErr(); err != nil {
		return nil, err
	}
	us, err := listDocs[store.User](ctx, s.pool, "SELECT doc FROM users ORDER BY id COLLATE \"C\"")
	if err != nil {
		return nil, fmt.Errorf("list users: %w", unavail(err))
	}
	return us, nil
}

func (s *DB) UpdateUser(ctx context.Context, id string, fn func(*store.User) error) (store.User, error) {
	var u store.User
	err := s.write(ctx, func(w *wtx) error {
		u = store.User{}
		if err := getDoc(ctx, w, &u, "SELECT doc FROM users WHERE id = $1 FOR UPDATE", id); err != nil {
			return fmt.Errorf("user %s: %w", id, err)
		}
		if err := fn(&u); err != nil {
			return err
		}
		if err := store.CheckFields("user "+id, u); err != nil {
			return err
		}
		u.ID = id
		if ok, err := exists(ctx, w, "SELECT FROM users WHERE email = $1 AND id <> $2", u.Email, id); err != nil || ok {
			return conflictOr(err, "user %q", u.Email)
		}
		doc, err := json.Marshal(u)
		if err != nil {
			return fmt.Errorf("encode user: %w", err)
		}
		if _, err := w.Exec(ctx, "UPDATE users SET email = $2, doc = $3 WHERE id = $1", id, u.Email, doc); err != nil {
			return err
		}
		w.change(store.ChangeUser, store.OpPut, id)
		return nil
	})
	if err != nil {
		return u, fmt.Errorf("update user: %w", err)
	}
	return u, nil
}

func (s *DB) DeleteUser(ctx context.Context, id string) (int, error) {
	n, err := s.deleteOwner(ctx, token.User, id, "DELETE FROM users WHERE id = $1", "user %s", func(w *wtx) error {
		// The tokens the user issued to act as others go with the user (store.Token.IssuedBy):
		// few and short-lived, each revoked with its own change.
		_, err := deleteTokens(w, "issued_by = $1", "issuer deleted", id)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("delete user: %w", err)
	}
	return n, nil
}
