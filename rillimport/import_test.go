package rillimport_test

import (
	"cmp"
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/rillimport"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/store/badger"
	"github.com/rill-authd/rill-authd/store/postgres"
	"github.com/rill-authd/rill-authd/token"
)

func read(t *testing.T, db *rillDB) *rillimport.Snapshot {
	t.Helper()
	snap, err := rillimport.Read(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// TestReadMapsRillToOurModel reads the seeded database and checks every mapping: names, the
// prod deployment, roles direct and through groups (the highest wins), groups, per-org
// attributes, resource-limited bindings left out, services, and live tokens with Rill's hashes.
func TestReadMapsRillToOurModel(t *testing.T) {
	f := seed(t)
	snap := read(t, f.db)

	if got := names(snap.Orgs, func(o store.Org) string { return o.Name }); !slices.Equal(got, []string{"acme", "beta"}) {
		t.Errorf("orgs %v, want [acme beta] (lower case)", got)
	}
	projects := map[string]store.Project{}
	for _, p := range snap.Projects {
		projects[store.ProjectKey(p.Org, p.Name)] = p
	}
	web := projects["acme/web"]
	if web.RuntimeHost != "https://rt1.example.com" || web.InstanceID != "inst-web-1" || web.RuntimeAudience != "https://rt1.example.com" || web.ProdBranch != "main" {
		t.Errorf("acme/web runtime %+v", web)
	}
	if web.ID != f.db.id("project:Acme/web") { // external users' runtime subjects derive from Rill's id
		t.Errorf("acme/web id %q, want Rill's %q", web.ID, f.db.id("project:Acme/web"))
	}
	if h := projects["acme/hibernated"]; h.RuntimeHost != "" || h.InstanceID != "" || h.ProdBranch != "main" {
		t.Errorf("a project without a prod deployment: %+v", h)
	}
	if len(projects) != 3 {
		t.Errorf("projects %v", slices.Collect(maps.Keys(projects)))
	}

	users := map[string]store.User{}
	for _, u := range snap.Users {
		users[u.Email] = u
		seeded := cmp.Or(map[string]string{"carol@example.com": "Carol@Example.com"}[u.Email], u.Email)
		if u.CreatedBy != rillimport.CreatedBy || u.ID != f.db.id("user:"+seeded) {
			t.Errorf("user %s: id %s created_by %q", u.Email, u.ID, u.CreatedBy)
		}
	}
	org := func(groups []string, attrs map[string]any) store.UserOrg {
		return store.UserOrg{Groups: groups, Attributes: attrs}
	}
	want := map[string]store.User{
		"alice@acme.io": {OrgRoles: roles("acme", policy.Admin), Orgs: map[string]store.UserOrg{"acme": org([]string{"autogroup:members", "autogroup:users"}, nil)}},
		// viewer of the org, editor of web through the analysts group
		// on hibernated limited to the union of his binding's resources (none) and partners' (one)
		"bob@acme.io": {OrgRoles: roles("acme", policy.Viewer), ProjectRoles: roles("acme/web", policy.Editor, "acme/hibernated", policy.Viewer),
			Orgs:       map[string]store.UserOrg{"acme": org([]string{"analysts", "autogroup:members", "autogroup:users", "partners"}, nil)},
			Restricted: map[string]store.Restricted{"acme/hibernated": {Resources: []token.ResourceName{{Kind: token.KindExplore, Name: "partner_view"}}}}},
		// guest with a direct project role, and one limited to two resources
		"carol@example.com": {OrgRoles: roles("acme", policy.Guest), ProjectRoles: roles("acme/web", policy.Viewer, "acme/hibernated", policy.Editor),
			Restricted: map[string]store.Restricted{"acme/hibernated": {Resources: []token.ResourceName{
				{Kind: token.KindExplore, Name: "carol_dash"}, {Kind: token.KindCanvas, Name: "exec"}}}},
			Orgs: map[string]store.UserOrg{"acme": org([]string{"autogroup:guests", "autogroup:users"}, map[string]any{"tier": "gold", "seats": float64(3)})}},
		"dave@rilldata.com": {Superuser: true},
		// editor of beta through the ops group; acme's viewer with acme's attributes
		"erin@beta.io": {OrgRoles: roles("beta", policy.Editor, "acme", policy.Viewer), ProjectRoles: roles("acme/web", policy.Viewer, "acme/hibernated", policy.Viewer),
			Restricted: map[string]store.Restricted{"acme/hibernated": {Resources: nil}},
			Orgs:       map[string]store.UserOrg{"beta": org([]string{"ops"}, nil), "acme": org(nil, map[string]any{"region": "us"})}},
	}
	for email, w := range want {
		u, ok := users[email]
		if !ok {
			t.Errorf("user %s not read", email)
			continue
		}
		sameOrgs := maps.EqualFunc(u.Orgs, w.Orgs, func(a, b store.UserOrg) bool {
			return slices.Equal(a.Groups, b.Groups) && maps.EqualFunc(a.Attributes, b.Attributes, func(x, y any) bool { return x == y })
		})
		sameRestricted := maps.EqualFunc(u.Restricted, w.Restricted, func(a, b store.Restricted) bool { return slices.Equal(a.Resources, b.Resources) })
		if !sameRestricted {
			t.Errorf("user %s: restricted %v, want %v", email, u.Restricted, w.Restricted)
		}
		if !maps.Equal(u.OrgRoles, w.OrgRoles) || !maps.Equal(u.ProjectRoles, w.ProjectRoles) || !sameOrgs || u.Superuser != w.Superuser {
			t.Errorf("user %s:\n got org %v project %v orgs %v superuser %v\nwant org %v project %v orgs %v superuser %v",
				email, u.OrgRoles, u.ProjectRoles, u.Orgs, u.Superuser, w.OrgRoles, w.ProjectRoles, w.Orgs, w.Superuser)
		}
	}
	if len(users) != len(want) {
		t.Errorf("%d users read, want %d", len(users), len(want))
	}
	if snap.RestrictedBindings != 3 { // carol, erin and bob on hibernated
		t.Errorf("RestrictedBindings = %d, want 3", snap.RestrictedBindings)
	}

	svcs := map[string]store.Service{}
	for _, s := range snap.Services {
		svcs[s.Org+"/"+s.Name] = s
	}
	if s := svcs["acme/ci-bot"]; s.ID != f.db.id("service:Acme/ci-bot") || s.OrgRole != "" || !maps.Equal(s.ProjectRoles, roles("web", policy.Admin)) ||
		s.Attributes["team"] != "platform" || s.Attributes["level"] != float64(3) || s.CreatedBy != rillimport.CreatedBy {
		t.Errorf("service acme/ci-bot: %+v", s)
	}
	if s := svcs["beta/loader"]; s.OrgRole != policy.Admin || len(s.ProjectRoles) != 0 || len(s.Attributes) != 0 {
		t.Errorf("service beta/loader: %+v", s)
	}

	// Live tokens only, each under its UUID with Rill's hash; the representing one is bob's.
	tokens := map[token.ID]store.Token{}
	for _, tk := range snap.Tokens {
		tokens[tk.ID] = tk
	}
	live := map[rillToken]string{f.alice: f.db.id("user:alice@acme.io"), f.bob: f.db.id("user:bob@acme.io"),
		f.carol: f.db.id("user:Carol@Example.com"), f.rep: f.db.id("user:bob@acme.io"),
		f.erin: f.db.id("user:erin@beta.io"), f.dave: f.db.id("user:dave@rilldata.com"), f.bot: f.db.id("service:Acme/ci-bot"), f.loader: f.db.id("service:beta/loader")}
	for tk, owner := range live {
		got, ok := tokens[tk.ID]
		if !ok {
			t.Errorf("token %s not read", tk.ID)
			continue
		}
		// The representing token records the superuser who issued it; no other has an issuer.
		if want := map[bool]string{true: f.db.id("user:dave@rilldata.com")}[tk == f.rep]; got.IssuedBy != want {
			t.Errorf("token %s: issued by %q, want %q", tk.ID, got.IssuedBy, want)
		}
		kind := token.Kind(strings.Split(tk.Text, "_")[1])
		if got.Hash != token.Hash(tk.hash()) || got.OwnerID != owner || got.Kind != kind || got.Prefix != token.RillDisplay(kind, tk.ID) ||
			got.CreatedBy != rillimport.CreatedBy || !strings.HasPrefix(tk.Text, got.Prefix) {
			t.Errorf("token %s: %+v (owner want %s)", tk.ID, got, owner)
		}
	}
	if len(tokens) != len(live) || snap.ExpiredTokens != 2 {
		t.Errorf("%d live tokens read (want %d), %d expired (want 2)", len(tokens), len(live), snap.ExpiredTokens)
	}
	if len(f.alice.Text) >= len("rill_usr_")+54 {
		t.Errorf("alice's token %d long: its id starts with zero bytes, so it should be shorter", len(f.alice.Text))
	}
	if !tokens[f.bob.ID].ExpiresAt.After(time.Now()) || !tokens[f.alice.ID].ExpiresAt.IsZero() {
		t.Error("token expiry not read")
	}
}

func roles(kv ...any) map[string]policy.Role {
	m := map[string]policy.Role{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1].(policy.Role)
	}
	return m
}

func names[T any](xs []T, f func(T) string) []string {
	var out []string
	for _, x := range xs {
		out = append(out, f(x))
	}
	return out
}

// engines are the stores an import writes to: Badger in memory and PostgreSQL.
func engines(t *testing.T) map[string]func(t *testing.T) store.Store {
	return map[string]func(t *testing.T) store.Store{
		"badger": func(t *testing.T) store.Store {
			st, err := badger.Open(badger.Options{InMemory: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		},
		"postgres": func(t *testing.T) store.Store {
			st, err := postgres.Open(ctx, postgres.Options{URL: newDatabase(t), MaintainInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		},
	}
}

func counts(t *testing.T, rep *rillimport.Report, want map[string]rillimport.Counts) {
	t.Helper()
	for _, k := range rillimport.Kinds {
		if got := *rep.Counts[k]; got != want[k] {
			t.Errorf("%ss: %+v, want %+v", k, got, want[k])
		}
	}
}

// TestImportOnBothEngines imports the seed, re-imports it (nothing changes), changes Rill and
// re-imports (updates), then deletes from Rill and re-imports with and without Prune.
func TestImportOnBothEngines(t *testing.T) {
	for name, open := range engines(t) {
		t.Run(name, func(t *testing.T) {
			f := seed(t)
			st := open(t)
			rep, err := rillimport.Import(ctx, st, read(t, f.db), rillimport.Options{})
			if err != nil {
				t.Fatal(err)
			}
			counts(t, rep, map[string]rillimport.Counts{"org": {Created: 2}, "project": {Created: 3}, "user": {Created: 5},
				"service": {Created: 2}, "token": {Created: 8}})
			if !rep.Loaded {
				t.Error("the first import into an empty store was not one bulk load")
			}
			for tk := range map[rillToken]bool{f.alice: true, f.bot: true, f.rep: true} {
				got, err := st.GetToken(ctx, tk.ID)
				if err != nil || got.Hash != token.Hash(tk.hash()) {
					t.Errorf("token %s: %v, hash match %v", tk.ID, err, got.Hash == token.Hash(tk.hash()))
				}
			}

			// An org of rill-authd's own gives bob a role: Rill decides only in its orgs, so bob
			// is unchanged and keeps it.
			if err := st.CreateOrg(ctx, store.Org{Name: "local"}); err != nil {
				t.Fatal(err)
			}
			_, err = st.UpdateUser(ctx, f.db.id("user:bob@acme.io"), func(u *store.User) error {
				u.OrgRoles["local"] = policy.Editor
				u.Orgs["local"] = store.UserOrg{Groups: []string{"locals"}}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			rep, err = rillimport.Import(ctx, st, read(t, f.db), rillimport.Options{})
			if err != nil {
				t.Fatal(err)
			}
			counts(t, rep, map[string]rillimport.Counts{"org": {Unchanged: 2}, "project": {Unchanged: 3}, "user": {Unchanged: 5},
				"service": {Unchanged: 2}, "token": {Unchanged: 8}})

			// Rill redeploys web, moves bob's group to viewer, edits ci-bot's attributes.
			f.db.deploy("Acme", "web", "https://rt9.example.com", "inst-web-2", "release")
			f.db.exec("UPDATE usergroups_projects_roles SET project_role_id = (SELECT id FROM project_roles WHERE name = 'viewer')")
			f.db.exec(`UPDATE service SET attributes = '{"team": "data"}' WHERE name = 'ci-bot'`)
			rep, err = rillimport.Import(ctx, st, read(t, f.db), rillimport.Options{})
			if err != nil {
				t.Fatal(err)
			}
			counts(t, rep, map[string]rillimport.Counts{"org": {Unchanged: 2}, "project": {Updated: 1, Unchanged: 2},
				"user": {Updated: 1, Unchanged: 4}, "service": {Updated: 1, Unchanged: 1}, "token": {Unchanged: 8}})
			if p, _ := st.GetProject(ctx, "acme", "web"); p.RuntimeHost != "https://rt9.example.com" || p.InstanceID != "inst-web-2" || p.ProdBranch != "release" {
				t.Errorf("acme/web after the redeploy: %+v", p)
			}
			if u, _ := st.GetUser(ctx, f.db.id("user:bob@acme.io")); u.ProjectRoles["acme/web"] != policy.Viewer ||
				u.OrgRoles["local"] != policy.Editor || !slices.Equal(u.Orgs["local"].Groups, []string{"locals"}) {
				t.Errorf("bob after an update from Rill: role on web %q (want viewer), in local %q %v (kept)",
					u.ProjectRoles["acme/web"], u.OrgRoles["local"], u.Orgs["local"])
			}

			// Rill deletes carol (and with her, her tokens), the loader service and alice's token.
			f.db.exec("DELETE FROM users WHERE id = $1", f.db.id("user:Carol@Example.com"))
			f.db.exec("DELETE FROM service WHERE id = $1", f.db.id("service:beta/loader"))
			f.db.exec("DELETE FROM user_auth_tokens WHERE id = $1", f.alice.ID.String())
			rep, err = rillimport.Import(ctx, st, read(t, f.db), rillimport.Options{})
			if err != nil {
				t.Fatal(err)
			}
			counts(t, rep, map[string]rillimport.Counts{"org": {Unchanged: 2}, "project": {Unchanged: 3},
				"user": {Unchanged: 4}, "service": {Unchanged: 1}, "token": {Unchanged: 5}})
			if _, err := st.GetToken(ctx, f.alice.ID); err != nil {
				t.Errorf("without Prune, alice's token went: %v", err)
			}
			rep, err = rillimport.Import(ctx, st, read(t, f.db), rillimport.Options{Prune: true})
			if err != nil {
				t.Fatal(err)
			}
			counts(t, rep, map[string]rillimport.Counts{"org": {Unchanged: 2}, "project": {Unchanged: 3},
				"user": {Unchanged: 4, Pruned: 1}, "service": {Unchanged: 1, Pruned: 1}, "token": {Unchanged: 5, Pruned: 3}})
			for _, id := range []token.ID{f.alice.ID, f.carol.ID, f.loader.ID} {
				if _, err := st.GetToken(ctx, id); !errors.Is(err, store.ErrRevoked) {
					t.Errorf("token %s after the prune: %v, want revoked", id, err)
				}
			}
			if _, err := st.GetUser(ctx, f.db.id("user:Carol@Example.com")); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("carol after the prune: %v", err)
			}
		})
	}
}

// TestImportRefusesWhatTheStoreCannotTake: a user created in rill-authd holding an email Rill
// has, and a token revoked here, and the store untouched by the refusal.
func TestImportRefusesWhatTheStoreCannotTake(t *testing.T) {
	f := seed(t)
	st := engines(t)["badger"](t)
	mine := store.User{ID: token.NewID(), Email: "bob@acme.io", CreatedAt: time.Now()}
	if err := st.CreateUser(ctx, mine); err != nil {
		t.Fatal(err)
	}
	before, _ := st.LastSeq(ctx)
	_, err := rillimport.Import(ctx, st, read(t, f.db), rillimport.Options{})
	if err == nil || !strings.Contains(err.Error(), "bob@acme.io") || !strings.Contains(err.Error(), "nothing was written") {
		t.Fatalf("import over a user of the same email: %v", err)
	}
	if after, _ := st.LastSeq(ctx); after != before {
		t.Fatalf("a refused import wrote: feed %d -> %d", before, after)
	}

	// Once that user is gone, the import goes through; a token then revoked here stays
	// revoked on the next import.
	if _, err := st.DeleteUser(ctx, mine.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := rillimport.Import(ctx, st, read(t, f.db), rillimport.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteToken(ctx, f.bob.ID); err != nil {
		t.Fatal(err)
	}
	rep, err := rillimport.Import(ctx, st, read(t, f.db), rillimport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.RevokedHere, []token.ID{f.bob.ID}) || rep.Counts["token"].Created != 0 {
		t.Fatalf("a token revoked here: RevokedHere %v, created %d", rep.RevokedHere, rep.Counts["token"].Created)
	}
	if _, err := st.GetToken(ctx, f.bob.ID); !errors.Is(err, store.ErrRevoked) {
		t.Fatalf("bob's revoked token after a re-import: %v", err)
	}
}

// TestReadRefusesAnUnknownSchema names what is missing.
func TestReadRefusesAnUnknownSchema(t *testing.T) {
	db := newRillDB(t)
	db.exec("DROP TABLE usergroups_users")
	db.exec("ALTER TABLE deployments DROP COLUMN runtime_audience")
	_, err := rillimport.Read(ctx, db.URL)
	if !errors.Is(err, rillimport.ErrSchema) || !strings.Contains(err.Error(), "table usergroups_users") ||
		!strings.Contains(err.Error(), "column deployments.runtime_audience") {
		t.Fatalf("read a schema without usergroups_users and deployments.runtime_audience: %v", err)
	}
}

// TestReadBeforeMigration0090 reads a database whose projects still have prod_branch and
// prod_deployment_id.
func TestReadBeforeMigration0090(t *testing.T) {
	db := newRillDB(t)
	db.exec("ALTER TABLE projects RENAME COLUMN primary_branch TO prod_branch")
	db.exec("ALTER TABLE projects RENAME COLUMN primary_deployment_id TO prod_deployment_id")
	db.org("acme")
	pid := db.id("project:acme/web")
	db.exec("INSERT INTO projects (id, org_id, name, prod_branch) VALUES ($1, $2, 'web', 'main')", pid, db.id("org:acme"))
	did := newUUID().String()
	db.exec(`INSERT INTO deployments (id, project_id, environment, branch, runtime_host, runtime_instance_id, runtime_audience, status)
		VALUES ($1, $2, 'prod', 'main', 'https://rt', 'inst', '', 2)`, did, pid)
	db.exec("UPDATE projects SET prod_deployment_id = $1", did)
	snap := read(t, db)
	if len(snap.Projects) != 1 || snap.Projects[0].InstanceID != "inst" || snap.Projects[0].RuntimeAudience != "https://rt" {
		t.Fatalf("projects %+v (an empty runtime_audience is the host)", snap.Projects)
	}
}

// TestImportWithoutARillSuperuserToken: without a superuser token from Rill, an empty store is
// written record by record, not bulk-loaded, so that it stays unbootstrapped and the daemon
// creates its own superuser.
func TestImportWithoutARillSuperuserToken(t *testing.T) {
	f := seed(t)
	f.db.exec("DELETE FROM user_auth_tokens WHERE id = $1", f.dave.ID.String())
	st := engines(t)["badger"](t)
	rep, err := rillimport.Import(ctx, st, read(t, f.db), rillimport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Loaded || rep.Counts["token"].Created != 7 {
		t.Fatalf("loaded %v, %d tokens created", rep.Loaded, rep.Counts["token"].Created)
	}
	ran, err := st.Bootstrap(ctx, func(context.Context) error { return nil })
	if err != nil || !ran {
		t.Fatalf("the store counts as bootstrapped after a record-by-record import: %v %v", ran, err)
	}
}
