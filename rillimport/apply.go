package rillimport

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// load writes the plan of an empty store with the store's bulk loader, if it has one: on
// PostgreSQL that is one transaction, so the first import, the large one, is all or nothing
// even for the replicas running on the database. A loaded store counts as bootstrapped (see
// store.Loader), so the daemon will not create a superuser of its own: load only when one of
// Rill's superusers has a live token to administer the store with. It reports whether it
// loaded; when it did not, apply writes record by record.
func (p *planned) load(ctx context.Context, st store.Store, snap *Snapshot) (bool, error) {
	l, ok := st.(store.Loader)
	if !ok || !p.empty || !administered(snap) {
		return false, nil
	}
	ls := store.Snapshot{Orgs: p.orgs, Projects: p.newProjects, Tokens: p.tokens}
	now := time.Now().UTC()
	for _, id := range p.imported {
		ls.Imported = append(ls.Imported, store.ImportedToken{ID: id, At: now})
	}
	for _, w := range p.users {
		ls.Users = append(ls.Users, w.u)
	}
	for _, w := range p.services {
		ls.Services = append(ls.Services, w.s)
	}
	err := l.Load(ctx, ls, false)
	if errors.Is(err, store.ErrNotEmpty) {
		return false, nil // signing keys or audit events of a daemon's start: write one by one
	}
	if err != nil {
		return false, fmt.Errorf("bulk load: %w", err)
	}
	return true, nil
}

// administered reports whether a Rill superuser has a live token.
func administered(snap *Snapshot) bool {
	super := map[string]bool{}
	for _, u := range snap.Users {
		super[u.ID] = u.Superuser
	}
	for _, t := range snap.Tokens {
		if t.Kind == token.User && super[t.OwnerID] {
			return true
		}
	}
	return false
}

// apply makes the planned writes.
func (p *planned) apply(ctx context.Context, st store.Store) error {
	for _, t := range p.pruneTokens {
		if err := st.DeleteToken(ctx, t.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("prune token %s: %w", t.ID, err)
		}
	}
	for _, s := range p.pruneServices {
		if _, err := st.DeleteService(ctx, s.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("prune service %s/%s: %w", s.Org, s.Name, err)
		}
	}
	for _, u := range p.pruneUsers {
		if _, err := st.DeleteUser(ctx, u.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("prune user %s: %w", u.Email, err)
		}
	}
	for _, o := range p.orgs {
		if err := st.CreateOrg(ctx, o); err != nil {
			return fmt.Errorf("create org %s: %w", o.Name, err)
		}
	}
	for _, pr := range p.newProjects {
		if err := st.CreateProject(ctx, pr); err != nil {
			return fmt.Errorf("create project %s/%s: %w", pr.Org, pr.Name, err)
		}
	}
	for _, pr := range p.projects {
		_, err := st.(ProjectUpdater).UpdateProject(ctx, pr.Org, pr.Name, func(old *store.Project) error {
			old.ID = pr.ID // Rill's: external users' runtime subjects derive from it
			old.RuntimeHost, old.InstanceID, old.RuntimeAudience, old.ProdBranch = pr.RuntimeHost, pr.InstanceID, pr.RuntimeAudience, pr.ProdBranch
			return nil
		})
		if err != nil {
			return fmt.Errorf("update project %s/%s: %w", pr.Org, pr.Name, err)
		}
	}
	for _, w := range p.users {
		if w.create {
			if err := st.CreateUser(ctx, w.u); err != nil {
				return fmt.Errorf("create user %s: %w", w.u.Email, err)
			}
			continue
		}
		_, err := st.UpdateUser(ctx, w.u.ID, func(old *store.User) error {
			created := old.CreatedAt
			*old = w.u
			old.CreatedAt, old.UpdatedAt = created, time.Now().UTC()
			return nil
		})
		if err != nil {
			return fmt.Errorf("update user %s: %w", w.u.Email, err)
		}
	}
	for _, w := range p.services {
		if w.create {
			if err := st.CreateService(ctx, w.s); err != nil {
				return fmt.Errorf("create service %s/%s: %w", w.s.Org, w.s.Name, err)
			}
			continue
		}
		_, err := st.UpdateService(ctx, w.s.ID, func(old *store.Service) error {
			created := old.CreatedAt
			*old = w.s
			old.CreatedAt, old.UpdatedAt = created, time.Now().UTC()
			return nil
		})
		if err != nil {
			return fmt.Errorf("update service %s/%s: %w", w.s.Org, w.s.Name, err)
		}
	}
	if len(p.tokens) > 0 {
		if err := st.ImportTokens(ctx, p.tokens); err != nil {
			return fmt.Errorf("create tokens: %w", err)
		}
	}
	return nil
}
