package rillimport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// Options says how Import brings a store in line with a snapshot.
type Options struct {
	// Prune revokes what an earlier import brought from Rill and Rill no longer has: its
	// tokens, services and users (deleting a user or service revokes all of its tokens).
	Prune bool
	// DryRun plans and reports, and writes nothing.
	DryRun bool
}

// Record kinds, in the order Report lists them.
const (
	KindOrg     = "org"
	KindProject = "project"
	KindUser    = "user"
	KindService = "service"
	KindToken   = "token"
)

// Kinds lists the record kinds in report order.
var Kinds = []string{KindOrg, KindProject, KindUser, KindService, KindToken}

// Ops of an Action.
const (
	OpCreate = "create"
	OpUpdate = "update"
	OpPrune  = "prune"
)

// Counts is what an import did (or would do) to one kind of record.
type Counts struct{ Created, Updated, Unchanged, Pruned int }

// Action is one record an import changes.
type Action struct {
	Kind, Op string
	// What names the record (ids and names, never secrets).
	What string
}

// Report says what Import did, or with DryRun would do.
type Report struct {
	Counts  map[string]*Counts
	Actions []Action
	// RevokedHere lists Rill's tokens that were revoked in rill-authd since an earlier import:
	// they are not brought back.
	RevokedHere []token.ID
	// Loaded says the store was empty and took everything in one bulk load (store.Loader).
	Loaded bool
}

// ProjectUpdater is the store method Import needs when a project's prod deployment changed
// (both engines have it; store.Store has no project update).
type ProjectUpdater interface {
	UpdateProject(ctx context.Context, org, name string, fn func(*store.Project) error) (store.Project, error)
}

// Import brings st in line with snap. Everything is checked against the store before the first
// write, so that no write fails for a reason the store could have told beforehand (a taken
// email, service name or token id). An empty store takes it all in one bulk load when it can
// (see load: on PostgreSQL, one transaction). Otherwise the writes go one by one in an order in
// which each one's prerequisites are already there: prunes, orgs, projects, users, services,
// then tokens; one can still fail for I/O, and running the import again then finishes the job,
// since it is idempotent.
func Import(ctx context.Context, st store.Store, snap *Snapshot, opts Options) (*Report, error) {
	p, err := plan(ctx, st, snap, opts)
	if err != nil {
		return nil, err
	}
	if opts.DryRun {
		return p.report, nil
	}
	loaded, err := p.load(ctx, st, snap)
	if err == nil && !loaded {
		err = p.apply(ctx, st)
	}
	if err != nil {
		_ = st.AppendAudit(context.WithoutCancel(ctx), store.AuditEvent{Time: time.Now().UTC(), Actor: CreatedBy,
			Action: "rill.import", Target: snap.Source, Outcome: "failed", Detail: err.Error()})
		return nil, fmt.Errorf("%w; run the import again to finish (it is idempotent)", err)
	}
	p.report.Loaded = loaded
	err = st.AppendAudit(ctx, store.AuditEvent{Time: time.Now().UTC(), Actor: CreatedBy, Action: "rill.import",
		Target: snap.Source, Outcome: "ok", Detail: p.report.Summary()})
	if err != nil {
		return p.report, fmt.Errorf("import done, but its audit event was not written: %w", err)
	}
	return p.report, nil
}

// Summary is the counts in one line, for the audit log.
func (r *Report) Summary() string {
	var parts []string
	for _, k := range Kinds {
		c := r.Counts[k]
		parts = append(parts, fmt.Sprintf("%s %d/%d/%d/%d", k, c.Created, c.Updated, c.Unchanged, c.Pruned))
	}
	return "created/updated/unchanged/pruned: " + strings.Join(parts, ", ")
}

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
func plan(ctx context.Context, st store.Store, snap *Snapshot, opts Options) (*planned, error) {
	p := &planned{report: &Report{Counts: map[string]*Counts{}}}
	for _, k := range Kinds {
		p.report.Counts[k] = &Counts{}
	}
	var problems []string
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
		return nil, fmt.Errorf("the store cannot take this import as it is; nothing was written:\n  %s", strings.Join(problems, "\n  "))
	}
	return p, nil
}

// planTokens decides which tokens to create and, with Prune, which to revoke. Tokens never
// change in Rill (it only records their use), so a token already here with other facts is a
// conflict, not an update.
func (p *planned) planTokens(ctx context.Context, st store.Store, snap *Snapshot, opts Options, users []store.User,
	services map[string]store.Service, pruneUsers, pruneServices map[string]bool, problem func(string, ...any)) error {
	// The tokens the store holds for every owner an import can touch.
	have := map[token.ID]store.Token{}
	owners := map[string]bool{}
	for _, u := range snap.Users {
		owners[u.ID] = true
	}
	for _, s := range snap.Services {
		owners[s.ID] = true
	}
	for _, u := range users {
		if u.CreatedBy == CreatedBy {
			owners[u.ID] = true
		}
	}
	for _, s := range services {
		if s.CreatedBy == CreatedBy {
			owners[s.ID] = true
		}
	}
	for _, owner := range slices.Sorted(maps.Keys(owners)) {
		ts, err := st.ListTokens(ctx, owner)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read the store: tokens of %s: %w", owner, err)
		}
		for _, t := range ts {
			have[t.ID] = t
		}
	}
	inRill := map[token.ID]bool{}
	for _, t := range snap.Tokens {
		inRill[t.ID] = true
		old, ok := have[t.ID]
		if !ok {
			got, err := st.GetToken(ctx, t.ID)
			switch {
			case errors.Is(err, store.ErrRevoked):
				p.report.RevokedHere = append(p.report.RevokedHere, t.ID)
				continue
			case errors.Is(err, store.ErrNotFound):
				p.tokens = append(p.tokens, t)
				p.act(KindToken, OpCreate, fmt.Sprintf("%s %s of %s", t.Kind, t.ID, t.OwnerID))
				continue
			case err != nil:
				return fmt.Errorf("read the store: token %s: %w", t.ID, err)
			}
			old = got
		}
		if old.Kind != t.Kind || old.OwnerID != t.OwnerID || !old.Hash.Equal(t.Hash) || !old.ExpiresAt.Equal(t.ExpiresAt) {
			problem("token %s: the store has it with another owner, secret or expiry than Rill (%s of %s here, %s of %s in Rill)",
				t.ID, old.Kind, old.OwnerID, t.Kind, t.OwnerID)
			continue
		}
		p.report.Counts[KindToken].Unchanged++
	}
	if !opts.Prune {
		return nil
	}
	for _, id := range slices.SortedFunc(maps.Keys(have), func(a, b token.ID) int { return bytes.Compare(a[:], b[:]) }) {
		t := have[id]
		switch {
		case pruneUsers[t.OwnerID] || pruneServices[t.OwnerID]:
			// Revoked with its owner, whoever issued it.
			p.act(KindToken, OpPrune, fmt.Sprintf("%s %s of %s (with its owner)", t.Kind, t.ID, t.OwnerID))
		case t.CreatedBy == CreatedBy && !inRill[t.ID]:
			p.pruneTokens = append(p.pruneTokens, t)
			p.act(KindToken, OpPrune, fmt.Sprintf("%s %s of %s", t.Kind, t.ID, t.OwnerID))
		}
	}
	return nil
}

// orderWrites orders ws so that each one's key is free (ready) when it runs, given what
// earlier ones free and take (done); it returns those it could not order.
func orderWrites[W any](ws []W, ready func(W) bool, done func(W)) (ordered, stuck []W) {
	for len(ws) > 0 {
		var rest []W
		for _, w := range ws {
			if ready(w) {
				done(w)
				ordered = append(ordered, w)
			} else {
				rest = append(rest, w)
			}
		}
		if len(rest) == len(ws) {
			return ordered, rest
		}
		ws = rest
	}
	return ordered, nil
}

func sortedServices(m map[string]store.Service) []store.Service {
	out := slices.Collect(maps.Values(m))
	sort.Slice(out, func(i, j int) bool { return out[i].Org+"/"+out[i].Name < out[j].Org+"/"+out[j].Name })
	return out
}

// sameRuntime reports whether a stored project already has the prod deployment Rill has.
func sameRuntime(a, b store.Project) bool {
	return a.RuntimeHost == b.RuntimeHost && a.InstanceID == b.InstanceID && a.RuntimeAudience == b.RuntimeAudience &&
		a.ProdBranch == b.ProdBranch
}

// keepLocalOrgs returns u (as Rill has it) with what old holds in orgs Rill does not have:
// Rill decides a user's roles, groups and attributes in its own orgs only, so an org created in
// rill-authd keeps what it gave an imported user.
func keepLocalOrgs(u, old store.User, rillOrgs map[string]bool) store.User {
	u.OrgRoles, u.ProjectRoles, u.Orgs = maps.Clone(u.OrgRoles), maps.Clone(u.ProjectRoles), maps.Clone(u.Orgs)
	for org, r := range old.OrgRoles {
		if !rillOrgs[org] {
			u.OrgRoles = put(u.OrgRoles, org, r)
		}
	}
	for key, r := range old.ProjectRoles {
		if org, _, _ := strings.Cut(key, "/"); !rillOrgs[org] {
			u.ProjectRoles = put(u.ProjectRoles, key, r)
		}
	}
	for org, s := range old.Orgs {
		if !rillOrgs[org] {
			u.Orgs = put(u.Orgs, org, s)
		}
	}
	return u
}

func put[V any](m map[string]V, k string, v V) map[string]V {
	if m == nil {
		m = map[string]V{}
	}
	m[k] = v
	return m
}

// sameUser compares what an import sets on a user; times are Rill's and not compared.
func sameUser(a, b store.User) bool {
	return a.Email == b.Email && a.DisplayName == b.DisplayName && a.Superuser == b.Superuser && a.CreatedBy == b.CreatedBy &&
		sameMap(a.OrgRoles, b.OrgRoles) && sameMap(a.ProjectRoles, b.ProjectRoles) &&
		maps.EqualFunc(a.Orgs, b.Orgs, func(x, y store.UserOrg) bool {
			return slices.Equal(x.Groups, y.Groups) && sameAny(x.Attributes, y.Attributes)
		})
}

func sameService(a, b store.Service) bool {
	return a.Name == b.Name && a.Org == b.Org && a.OrgRole == b.OrgRole && a.CreatedBy == b.CreatedBy &&
		sameMap(a.ProjectRoles, b.ProjectRoles) && sameAny(a.Attributes, b.Attributes)
}

// sameMap treats nil and empty alike, as a stored record does after a round trip.
func sameMap[V comparable](a, b map[string]V) bool { return maps.Equal(a, b) }

func sameAny(a, b map[string]any) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return reflect.DeepEqual(a, b)
}

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
