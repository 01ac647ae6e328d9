package rillimport

import (
	"context"
	"fmt"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

type planned struct {
	report *Report
	// empty says the store held no org, user or service.
	empty bool

	pruneTokens   []store.Token
	pruneServices []store.Service
	pruneUsers    []store.User
	orgs          []store.Org
	newProjects   []store.Project
	projects      []store.Project // changed
	// Users and services to create or update, in an order in which no write takes an email
	// or name that is still held.
	users    []userWrite
	services []serviceWrite
	tokens   []store.Token
	// imported are the ids of Rill's tokens to record in the store's import ledger once the
	// writes are done: those created, those already here, and those revoked here.
	imported []token.ID
}

type userWrite struct {
	u      store.User
	create bool
}

type serviceWrite struct {
	s      store.Service
	create bool
}

func (p *planned) act(kind, op, what string) {
	c := p.report.Counts[kind]
	switch op {
	case OpCreate:
		c.Created++
	case OpUpdate:
		c.Updated++
	case OpPrune:
		c.Pruned++
	}
	p.report.Actions = append(p.report.Actions, Action{Kind: kind, Op: op, What: what})
}

// plan compares snap with the store and decides every write, refusing (before anything is
// written) what the store could not take.
func plan(ctx context.Context, st store.Store, snap *Snapshot, opts Options, problems []string) (*planned, error) {
	p := &planned{report: &Report{Counts: map[string]*Counts{}}}
	for _, k := range Kinds {
		p.report.Counts[k] = &Counts{}
	}
	problem := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	// What the store holds.
	orgs, err := st.ListOrgs(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the store: %w", err)
	}
	haveOrg := map[string]bool{}
	haveProject := map[string]store.Project{}
	haveService := map[string]store.Service{}
	for _, o := range orgs {
		haveOrg[o.Name] = true
		ps, err := st.ListProjects(ctx, o.Name)
		if err != nil {
			return nil, fmt.Errorf("read the store: %w", err)
		}
		for _, pr := range ps {
			haveProject[store.ProjectKey(pr.Org, pr.Name)] = pr
		}
		ss, err := st.ListServices(ctx, o.Name)
		if err != nil {
			return nil, fmt.Errorf("read the store: %w", err)
		}
		for _, s := range ss {
			haveService[s.ID] = s
		}
	}
	users, err := st.ListUsers(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the store: %w", err)
	}
	haveUser := map[string]store.User{}
	for _, u := range users {
		haveUser[u.ID] = u
	}
	p.empty = len(orgs) == 0 && len(users) == 0

	// Orgs and projects: Rill's are created; neither is ever pruned (the store cannot delete
	// them), and an org has nothing to update.
	for _, o := range snap.Orgs {
		if haveOrg[o.Name] {
			p.report.Counts[KindOrg].Unchanged++
			continue
		}
		p.orgs = append(p.orgs, o)
		p.act(KindOrg, OpCreate, o.Name)
	}
	for _, pr := range snap.Projects {
		key := store.ProjectKey(pr.Org, pr.Name)
		old, ok := haveProject[key]
		switch {
		case !ok:
			p.newProjects = append(p.newProjects, pr)
			p.act(KindProject, OpCreate, key)
		case sameRuntime(old, pr):
			p.report.Counts[KindProject].Unchanged++
		default:
			if _, ok := st.(ProjectUpdater); !ok {
				problem("project %s: its prod deployment changed in Rill, and this store cannot update a project", key)
			}
			p.projects = append(p.projects, pr)
			p.act(KindProject, OpUpdate, fmt.Sprintf("%s (runtime %s, instance %s)", key, pr.RuntimeHost, pr.InstanceID))
		}
	}

	// Users and services: created, updated or unchanged; with Prune, imported ones Rill no
	// longer has are deleted.
	inRill := map[string]bool{}
	for _, u := range snap.Users {
		inRill[u.ID] = true
	}
	for _, s := range snap.Services {
		inRill[s.ID] = true
	}
	var pruneUsers, pruneServices map[string]bool
	if opts.Prune {
		pruneUsers, pruneServices = map[string]bool{}, map[string]bool{}
		for _, u := range users {
			if u.CreatedBy == CreatedBy && !inRill[u.ID] {
				pruneUsers[u.ID] = true
				p.pruneUsers = append(p.pruneUsers, u)
				p.act(KindUser, OpPrune, fmt.Sprintf("%s (id %s)", u.Email, u.ID))
			}
		}
		for _, s := range sortedServices(haveService) {
			if s.CreatedBy == CreatedBy && !inRill[s.ID] {
				pruneServices[s.ID] = true
				p.pruneServices = append(p.pruneServices, s)
				p.act(KindService, OpPrune, fmt.Sprintf("%s/%s (id %s)", s.Org, s.Name, s.ID))
			}
		}
	}

	rillOrgs := map[string]bool{}
	for _, o := range snap.Orgs {
		rillOrgs[o.Name] = true
	}
	var userWrites []userWrite
	for _, u := range snap.Users {
		old, ok := haveUser[u.ID]
		if !ok {
			userWrites = append(userWrites, userWrite{u, true})
			continue
		}
		u = keepLocalOrgs(u, old, rillOrgs)
		if sameUser(old, u) {
			p.report.Counts[KindUser].Unchanged++
			continue
		}
		userWrites = append(userWrites, userWrite{u, false})
	}
	// Emails are unique: order the writes so that each email is free when it is taken, and
	// refuse one that an unimported user (or a cycle of renames) holds.
	emailOf := map[string]string{} // email -> user id, as the store will be
	for _, u := range users {
		if !pruneUsers[u.ID] {
			emailOf[u.Email] = u.ID
		}
	}
	ordered, stuck := orderWrites(userWrites,
		func(w userWrite) bool { id, held := emailOf[w.u.Email]; return !held || id == w.u.ID },
		func(w userWrite) {
			if old, ok := haveUser[w.u.ID]; ok && emailOf[old.Email] == w.u.ID {
				delete(emailOf, old.Email)
			}
			emailOf[w.u.Email] = w.u.ID
		})
	for _, w := range stuck {
		holder := haveUser[emailOf[w.u.Email]]
		why := "a user rill-authd created itself (not imported from Rill)"
		if holder.CreatedBy == CreatedBy {
			why = "a user imported from Rill earlier whose email Rill has since given to another user"
			if !opts.Prune && !inRill[holder.ID] {
				why += " (it is gone from Rill: --prune would delete it)"
			}
		}
		problem("user %s (Rill id %s): the store already has that email as user %s, %s", w.u.Email, w.u.ID, holder.ID, why)
	}
	for _, w := range ordered {
		p.users = append(p.users, w)
		if w.create {
			p.act(KindUser, OpCreate, fmt.Sprintf("%s (id %s)", w.u.Email, w.u.ID))
		} else {
			p.act(KindUser, OpUpdate, fmt.Sprintf("%s (id %s)", w.u.Email, w.u.ID))
		}
	}

	var serviceWrites []serviceWrite
	for _, s := range snap.Services {
		old, ok := haveService[s.ID]
		switch {
		case !ok:
			serviceWrites = append(serviceWrites, serviceWrite{s, true})
		case sameService(old, s):
			p.report.Counts[KindService].Unchanged++
		default:
			serviceWrites = append(serviceWrites, serviceWrite{s, false})
		}
	}
	nameOf := map[string]string{} // org/name -> service id, as the store will be
	for _, s := range haveService {
		if !pruneServices[s.ID] {
			nameOf[s.Org+"/"+s.Name] = s.ID
		}
	}
	orderedS, stuckS := orderWrites(serviceWrites,
		func(w serviceWrite) bool { id, held := nameOf[w.s.Org+"/"+w.s.Name]; return !held || id == w.s.ID },
		func(w serviceWrite) {
			if old, ok := haveService[w.s.ID]; ok && nameOf[old.Org+"/"+old.Name] == w.s.ID {
				delete(nameOf, old.Org+"/"+old.Name)
			}
			nameOf[w.s.Org+"/"+w.s.Name] = w.s.ID
		})
	for _, w := range stuckS {
		holder := haveService[nameOf[w.s.Org+"/"+w.s.Name]]
		why := "created in rill-authd (not imported from Rill)"
		if holder.CreatedBy == CreatedBy {
			why = "imported from Rill earlier"
			if !opts.Prune && !inRill[holder.ID] {
				why += " and gone from Rill since (--prune would delete it)"
			}
		}
		problem("service %s/%s (Rill id %s): the store already has a service of that name, id %s, %s", w.s.Org, w.s.Name, w.s.ID, holder.ID, why)
	}
	for _, w := range orderedS {
		if old, ok := haveService[w.s.ID]; ok && old.Org != w.s.Org {
			problem("service %s (id %s): in org %s in the store but %s in Rill; a service cannot move", w.s.Name, w.s.ID, old.Org, w.s.Org)
			continue
		}
		p.services = append(p.services, w)
		if w.create {
			p.act(KindService, OpCreate, fmt.Sprintf("%s/%s (id %s)", w.s.Org, w.s.Name, w.s.ID))
		} else {
			p.act(KindService, OpUpdate, fmt.Sprintf("%s/%s (id %s)", w.s.Org, w.s.Name, w.s.ID))
		}
	}

	if err := p.planTokens(ctx, st, snap, opts, users, haveService, pruneUsers, pruneServices, problem); err != nil {
		return nil, err
	}
	if len(problems) > 0 {
		return nil, problemsError(problems)
	}
	return p, nil
}
