package signin_test

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/internal/testenv"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/signin"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/store/badger"
	"github.com/rill-authd/rill-authd/store/postgres"
	"github.com/rill-authd/rill-authd/token"
)

// engines opens a fresh store of each engine: Badger on disk in t.TempDir, and PostgreSQL
// when a server is at hand (.ci/pg.sh; a loud skip without one, a failure under CI).
var engines = []struct {
	name string
	open func(t *testing.T) store.Store
}{
	{"badger", func(t *testing.T) store.Store {
		db, err := badger.Open(badger.Options{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}},
	{"postgres", func(t *testing.T) store.Store {
		dbURL, _ := testenv.PostgresDB(t, "")
		db, err := postgres.Open(t.Context(), postgres.Options{URL: dbURL})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}},
}

// signIn is one sign-in of a scenario and what it must come to.
type signIn struct {
	id signin.Identity
	// refused: the reason's words, when the sign-in must be refused.
	refused string
	// roles and groups are the user's org roles and per-org groups after it (nil: none).
	roles  map[string]policy.Role
	groups map[string][]string
	// provision: words the user.provision event must hold; quiet: there must be none.
	provision []string
	quiet     bool
	// before runs ahead of the sign-in (an admin's change).
	before func(t *testing.T, st store.Store)
}

func okta(email string, groups ...string) signin.Identity {
	return signin.Identity{Provider: "okta", Subject: "sub-" + email, Email: email, EmailVerified: true, Groups: groups}
}

var acmeRules = store.SigninRules{
	Domains: []store.DomainRule{{Domain: "acme.io", OrgRole: policy.Viewer}},
	Groups: []store.GroupRule{
		{Group: "eng", OrgRole: policy.Editor, AttributeGroups: []string{"engineering"}},
		{Group: "data", OrgRole: policy.Viewer, AttributeGroups: []string{"analytics", "engineering"}},
		{Group: "platform-admins", OrgRole: policy.Admin},
	},
}

var globexRules = store.SigninRules{Groups: []store.GroupRule{{Group: "contractors", OrgRole: policy.Guest, AttributeGroups: []string{"external"}}}}

func TestAdmit(t *testing.T) {
	roles := func(kv ...string) map[string]policy.Role {
		m := map[string]policy.Role{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = policy.Role(kv[i+1])
		}
		return m
	}
	cases := []struct {
		name  string
		steps []signIn
	}{
		{"an existing user is that user, by email in any case", []signIn{
			{id: okta("Bob@Initech.Example"), roles: roles("initech", "admin"), groups: map[string][]string{"initech": {"founders"}}, quiet: true},
		}},
		{"an unverified email is refused, even an existing user's", []signIn{
			{id: signin.Identity{Provider: "okta", Email: "bob@initech.example"}, refused: "has not verified"},
			{id: signin.Identity{Provider: "okta", Email: "new@acme.io", Groups: []string{"eng"}}, refused: "has not verified"},
		}},
		{"no email is refused", []signIn{{id: signin.Identity{Provider: "okta", EmailVerified: true}, refused: "no email"}}},
		{"what only looks like an address at a whitelisted domain is refused", []signIn{
			{id: okta("eve@evil.example@acme.io"), refused: "not an email address rill-authd can use"},
			{id: okta("@acme.io"), refused: "not an email address rill-authd can use"},
			{id: okta("eve\x00@acme.io"), refused: "not an email address rill-authd can use"},
			{id: okta("eve smith@acme.io"), refused: "not an email address rill-authd can use"},
			{id: okta("eve\t@acme.io"), refused: "not an email address rill-authd can use"},
			{id: okta("\xffeve@acme.io"), refused: "not an email address rill-authd can use"},
			// Lower-cased, U+0130 is "i" (IDNA makes it "i̇": another domain): neither the
			// superuser root@initech.example nor a new address at acme.io.
			{id: okta("root@\u0130nitech.example"), refused: `the provider gave "root@\u0130nitech.example"`},
			{id: okta("eve@acme.\u0130o"), refused: "not an email address rill-authd can use"},
			{id: okta("eve@\u212Aacme.io"), refused: "not an email address rill-authd can use"},
		}},
		{"a new email no rule admits is refused", []signIn{
			{id: okta("eve@evil.example", "Eng", "engineering"), refused: "no org's sign-in rules admit"},
			{id: okta("eve@notacme.io"), refused: "no org's sign-in rules admit"},
		}},
		{"a new email at a whitelisted domain joins with the domain's role", []signIn{
			{id: okta("Ann@ACME.io"), roles: roles("acme", "viewer"), provision: []string{"created", "org acme: joined as viewer (domain acme.io)"}},
			{id: okta("ann@acme.io"), roles: roles("acme", "viewer"), quiet: true}, // nothing changed: no provision event
		}},
		{"a new email admitted by group: role and attribute groups, in every org that admits it", []signIn{
			{id: okta("carl@contractor.example", "contractors", "sales"), roles: roles("globex", "guest"),
				groups: map[string][]string{"globex": {"external"}}, provision: []string{"created", "org globex: joined as guest (groups)"}},
			{id: okta("dee@acme.io", "eng", "data", "contractors"), roles: roles("acme", "editor", "globex", "guest"),
				groups:    map[string][]string{"acme": {"analytics", "engineering"}, "globex": {"external"}},
				provision: []string{"created", "org acme: joined as editor (groups)", "org globex: joined as guest (groups)"}},
		}},
		{"a changed group mapping is the new role at the next sign-in", []signIn{
			{id: okta("fay@acme.io", "data"), roles: roles("acme", "viewer"), groups: map[string][]string{"acme": {"analytics", "engineering"}}},
			{id: okta("fay@acme.io", "eng"), roles: roles("acme", "editor"), groups: map[string][]string{"acme": {"engineering"}},
				provision: []string{"org acme: role viewer -> editor (groups)", "groups [analytics,engineering] -> [engineering]"}},
			{id: okta("fay@acme.io", "eng", "platform-admins"), roles: roles("acme", "admin"), groups: map[string][]string{"acme": {"engineering"}},
				provision: []string{"org acme: role editor -> admin (groups)"}},
			// Out of every group: the domain still admits her, as an ordinary viewer.
			{id: okta("fay@acme.io"), roles: roles("acme", "viewer"), provision: []string{"role admin -> viewer (domain acme.io; no group rule matches)", "groups engineering removed"}},
			// An ordinary member now: a group no longer changes her role.
			{id: okta("fay@acme.io", "eng"), roles: roles("acme", "viewer"), quiet: true},
		}},
		{"out of every group and not at a whitelisted domain: the rules' membership ends", []signIn{
			{id: okta("gus@contractor.example", "contractors"), roles: roles("globex", "guest"), groups: map[string][]string{"globex": {"external"}}},
			{id: okta("gus@contractor.example"), roles: roles(), provision: []string{"org globex: left (was guest; no group rule matches)"}},
			// Back in the group: back in the org.
			{id: okta("gus@contractor.example", "contractors"), roles: roles("globex", "guest"), groups: map[string][]string{"globex": {"external"}},
				provision: []string{"org globex: joined as guest (groups)"}},
		}},
		{"an existing user joins an org a group rule now admits them to; their own memberships stay", []signIn{
			{id: okta("bob@initech.example", "contractors"), roles: roles("initech", "admin", "globex", "guest"),
				groups: map[string][]string{"initech": {"founders"}, "globex": {"external"}}, provision: []string{"org globex: joined as guest (groups)"}},
		}},
		{"a membership an admin made is not the rules'", []signIn{
			{id: okta("hal@acme.io", "eng"), roles: roles("acme", "guest"), groups: map[string][]string{"acme": {"manual"}}, quiet: true,
				before: func(t *testing.T, st store.Store) {
					addUser(t, st, "hal@acme.io", func(u *store.User) {
						u.OrgRoles = map[string]policy.Role{"acme": policy.Guest}
						u.Orgs = map[string]store.UserOrg{"acme": {Groups: []string{"manual"}}}
					})
				}},
		}},
		{"a role an admin changed after the rules gave it is the admin's from then on", []signIn{
			{id: okta("ivy@acme.io", "eng"), roles: roles("acme", "editor"), groups: map[string][]string{"acme": {"engineering"}}},
			{id: okta("ivy@acme.io", "platform-admins"), roles: roles("acme", "guest"), groups: map[string][]string{"acme": {"engineering", "manual"}}, quiet: true,
				before: func(t *testing.T, st store.Store) {
					updateUser(t, st, "ivy@acme.io", func(u *store.User) {
						u.OrgRoles["acme"] = policy.Guest
						uo := u.Orgs["acme"]
						uo.Groups = append(uo.Groups, "manual")
						u.Orgs["acme"] = uo
					})
				}},
		}},
		{"a member an admin removed joins again while a group rule admits them", []signIn{
			{id: okta("lou@contractor.example", "contractors"), roles: roles("globex", "guest"), groups: map[string][]string{"globex": {"external"}}},
			{id: okta("lou@contractor.example", "contractors"), roles: roles("globex", "guest"), groups: map[string][]string{"globex": {"external"}},
				provision: []string{"org globex: joined as guest (groups)"},
				before: func(t *testing.T, st store.Store) {
					updateUser(t, st, "lou@contractor.example", func(u *store.User) { delete(u.OrgRoles, "globex") })
				}},
		}},
		{"attribute groups an admin added stay when the rules' change", []signIn{
			{id: okta("jo@acme.io", "data"), roles: roles("acme", "viewer"), groups: map[string][]string{"acme": {"analytics", "engineering"}}},
			{id: okta("jo@acme.io", "eng"), roles: roles("acme", "editor"), groups: map[string][]string{"acme": {"engineering", "manual"}},
				before: func(t *testing.T, st store.Store) {
					updateUser(t, st, "jo@acme.io", func(u *store.User) {
						uo := u.Orgs["acme"]
						uo.Groups = append(uo.Groups, "manual")
						u.Orgs["acme"] = uo
					})
				}},
		}},
		{"the highest role of every rule that matches", []signIn{
			{id: okta("kim@acme.io", "data", "eng"), roles: roles("acme", "editor"), groups: map[string][]string{"acme": {"analytics", "engineering"}}},
		}},
		{"a superuser signs in as themselves and stays one", []signIn{
			{id: okta("root@initech.example", "eng"), roles: roles("acme", "editor"), groups: map[string][]string{"acme": {"engineering"}}},
		}},
	}
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					st := e.open(t)
					seed(t, st)
					for i, s := range tc.steps {
						if s.before != nil {
							s.before(t, st)
						}
						mark := time.Now().UTC()
						u, err := signin.Admit(t.Context(), st, s.id)
						evs := audit(t, st, mark)
						if s.refused != "" {
							if !errors.Is(err, signin.ErrNotAdmitted) || !strings.Contains(err.Error(), s.refused) {
								t.Fatalf("step %d: Admit = %v, want refused (%s)", i, err, s.refused)
							}
							if us, _ := st.ListUsers(t.Context()); len(us) != 2 {
								t.Fatalf("step %d: a refused sign-in created the user", i)
							}
							if len(evs) != 1 || evs[0].Action != "user.signin" || !strings.HasPrefix(evs[0].Outcome, "denied: ") || evs[0].Detail != "provider okta" {
								t.Fatalf("step %d: audit of a refusal: %+v", i, evs)
							}
							continue
						}
						if err != nil {
							t.Fatalf("step %d: Admit: %v", i, err)
						}
						if u.Email != strings.ToLower(s.id.Email) {
							t.Fatalf("step %d: admitted as %s", i, u.Email)
						}
						stored, err := st.GetUser(t.Context(), u.ID)
						if err != nil {
							t.Fatal(err)
						}
						if !(len(stored.OrgRoles) == 0 && len(u.OrgRoles) == 0) && !reflect.DeepEqual(stored.OrgRoles, u.OrgRoles) {
							t.Fatalf("step %d: Admit returned roles %v, the store holds %v", i, u.OrgRoles, stored.OrgRoles)
						}
						if got := stored.OrgRoles; !(len(got) == 0 && len(s.roles) == 0) && !reflect.DeepEqual(got, s.roles) {
							t.Fatalf("step %d: roles %v, want %v", i, got, s.roles)
						}
						gotGroups := map[string][]string{}
						for org, uo := range stored.Orgs {
							if len(uo.Groups) > 0 {
								gotGroups[org] = slices.Sorted(slices.Values(uo.Groups))
							}
						}
						if !(len(gotGroups) == 0 && len(s.groups) == 0) && !reflect.DeepEqual(gotGroups, s.groups) {
							t.Fatalf("step %d: groups %v, want %v", i, gotGroups, s.groups)
						}
						if stored.Superuser != (stored.Email == "root@initech.example") {
							t.Fatalf("step %d: superuser %v", i, stored.Superuser)
						}
						if len(evs) == 0 || evs[0].Action != "user.signin" || evs[0].Outcome != "ok" || evs[0].Detail != "provider okta" || evs[0].Target != "user:"+u.Email {
							t.Fatalf("step %d: first audit event %+v, want user.signin", i, evs)
						}
						switch {
						case s.quiet && len(evs) != 1:
							t.Fatalf("step %d: audit %+v, want user.signin only", i, evs)
						case len(s.provision) > 0:
							if len(evs) != 2 || evs[1].Action != "user.provision" || !strings.HasPrefix(evs[1].Detail, "provider okta") {
								t.Fatalf("step %d: audit %+v, want user.signin and user.provision", i, evs)
							}
							for _, w := range s.provision {
								if !strings.Contains(evs[1].Detail, w) {
									t.Fatalf("step %d: user.provision %q lacks %q", i, evs[1].Detail, w)
								}
							}
							if created := strings.Contains(evs[1].Detail, "; created"); created != slices.Contains(s.provision, "created") {
								t.Fatalf("step %d: user.provision %q: created %v", i, evs[1].Detail, created)
							}
							if created := slices.Contains(s.provision, "created"); created && stored.CreatedBy != "signin:okta" {
								t.Fatalf("step %d: created by %q", i, stored.CreatedBy)
							}
						}
					}
				})
			}
		})
	}
}

// seed makes orgs acme (domain and group rules), globex (a group rule) and initech (none), and
// users bob (an initech admin with a group) and root (a superuser in no org).
func seed(t *testing.T, st store.Store) {
	t.Helper()
	c := t.Context()
	for _, o := range []string{"acme", "globex", "initech"} {
		if err := st.CreateOrg(c, store.Org{Name: o, CreatedAt: time.Now().UTC()}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.SetSigninRules(c, "acme", acmeRules); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SetSigninRules(c, "globex", globexRules); err != nil {
		t.Fatal(err)
	}
	addUser(t, st, "bob@initech.example", func(u *store.User) {
		u.OrgRoles = map[string]policy.Role{"initech": policy.Admin}
		u.Orgs = map[string]store.UserOrg{"initech": {Groups: []string{"founders"}}}
	})
	addUser(t, st, "root@initech.example", func(u *store.User) { u.Superuser = true })
}

func addUser(t *testing.T, st store.Store, email string, fn func(*store.User)) {
	t.Helper()
	now := time.Now().UTC()
	u := store.User{ID: token.NewID(), Email: email, CreatedAt: now, UpdatedAt: now}
	fn(&u)
	if err := st.CreateUser(t.Context(), u); err != nil {
		t.Fatal(err)
	}
}

func updateUser(t *testing.T, st store.Store, email string, fn func(*store.User)) {
	t.Helper()
	u, err := st.GetUserByEmail(t.Context(), email)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.UpdateUser(t.Context(), u.ID, func(u *store.User) error { fn(u); return nil }); err != nil {
		t.Fatal(err)
	}
}

func audit(t *testing.T, st store.Store, since time.Time) []store.AuditEvent {
	t.Helper()
	evs, err := st.ListAudit(t.Context(), store.AuditFilter{Since: since})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestAdmitAtOnce: sign-ins of one new email at the same moment (two tabs, two replicas) make
// one user, and every one of them is that user.
func TestAdmitAtOnce(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			st := e.open(t)
			seed(t, st)
			const n = 8
			ids := make(chan string, n)
			errs := make(chan error, n)
			for range n {
				go func() {
					u, err := signin.Admit(t.Context(), st, okta("new@acme.io", "eng"))
					ids <- u.ID
					errs <- err
				}()
			}
			seen := map[string]bool{}
			for range n {
				if err := <-errs; err != nil {
					t.Fatalf("Admit: %v", err)
				}
				seen[<-ids] = true
			}
			us, err := st.ListUsers(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if len(seen) != 1 || len(us) != 3 {
				t.Fatalf("%d ids admitted, %d users stored (want 1 new beside bob and root)", len(seen), len(us))
			}
			u, _ := st.GetUserByEmail(t.Context(), "new@acme.io")
			if u.OrgRoles["acme"] != policy.Editor || !seen[u.ID] {
				t.Fatalf("the user: %+v", u)
			}
		})
	}
}
