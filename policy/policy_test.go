package policy

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestRoleTables(t *testing.T) {
	cases := []struct {
		name    string
		p       Principal
		org     string
		project string
		role    [2]Role
		has     []string
		hasNot  []string
	}{
		{"org admin holds every project permission", Principal{OrgRoles: map[string]Role{"acme": "admin"}}, "acme", "web",
			[2]Role{"admin", "admin"}, []string{"manage_org", "manage_project", "manage_prod", "read_prod"}, nil},
		{"org editor", Principal{OrgRoles: map[string]Role{"acme": "editor"}}, "acme", "",
			[2]Role{"editor", ""}, []string{"read_org", "read_projects", "create_projects", "read_org_members", "manage_org_members"},
			[]string{"manage_org", "manage_projects", "manage_org_admins", "read_prod"}},
		{"org viewer gets no project permission by itself", Principal{OrgRoles: map[string]Role{"acme": "viewer"}}, "acme", "web",
			[2]Role{"viewer", ""}, []string{"read_org", "read_projects"}, []string{"read_prod", "read_project"}},
		{"guest", Principal{OrgRoles: map[string]Role{"acme": "guest"}}, "acme", "", [2]Role{"guest", ""}, []string{"read_org"}, []string{"read_org_members"}},
		{"project viewer", Principal{ProjectRoles: map[string]Role{"acme/web": "viewer"}}, "acme", "web",
			[2]Role{"", "viewer"}, []string{"read_project", "read_prod", "read_dev", "create_reports", "create_alerts", "create_bookmarks"},
			[]string{"read_org", "manage_prod", "manage_dev", "read_project_members"}},
		{"project editor", Principal{ProjectRoles: map[string]Role{"acme/web": "editor"}}, "acme", "web",
			[2]Role{"", "editor"}, []string{"manage_dev", "read_prod", "manage_project_members", "create_magic_auth_tokens"},
			[]string{"manage_project", "manage_prod", "manage_provisioner_resources", "manage_project_admins", "manage_reports", "manage_alerts", "manage_bookmarks"}},
		{"project role elsewhere gives nothing", Principal{ProjectRoles: map[string]Role{"acme/web": "admin"}}, "acme", "api",
			[2]Role{"", ""}, nil, []string{"read_prod", "read_org"}},
		{"other org gives nothing", Principal{OrgRoles: map[string]Role{"acme": "admin"}}, "evil", "web",
			[2]Role{"", ""}, nil, []string{"read_prod", "read_org"}},
		{"superuser", Principal{Superuser: true}, "any", "thing", [2]Role{"admin", "admin"}, []string{"manage_org", "manage_prod"}, nil},
		{"limit caps an admin", Principal{OrgRoles: map[string]Role{"acme": "admin"}, Limit: ReadProd | ReadProject}, "acme", "web",
			[2]Role{"admin", "admin"}, []string{"read_prod", "read_project"}, []string{"manage_prod", "read_org"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := c.p.AccessTo(c.org, c.project)
			if a.OrgRole != c.role[0] || a.ProjectRole != c.role[1] {
				t.Fatalf("roles %q/%q, want %q", a.OrgRole, a.ProjectRole, c.role)
			}
			for _, n := range c.has {
				if p, _ := ParsePerm(n); !a.Perms.Has(p) {
					t.Errorf("missing %s in %s", n, a.Perms)
				}
			}
			for _, n := range c.hasNot {
				if p, _ := ParsePerm(n); a.Perms.Has(p) {
					t.Errorf("unexpected %s in %s", n, a.Perms)
				}
			}
		})
	}
}

func TestPermNames(t *testing.T) {
	for _, n := range names {
		p, err := ParsePerm(n)
		if err != nil || p.String() != n {
			t.Fatalf("%s: %v %v", n, p, err)
		}
	}
	if _, err := ParsePerm("read_everything"); err == nil {
		t.Fatal("unknown permission accepted")
	}
	if got := (ReadProd | ReadOrg).String(); got != "read_org,read_prod" {
		t.Fatalf("String = %q", got)
	}
	if strings.Count(Perm(allOrg|allProject).String(), ",") != len(names)-1 {
		t.Fatal("not every permission is named")
	}
}

func TestRoleAtMost(t *testing.T) {
	if !Viewer.AtMost(Admin) || !Editor.AtMost(Editor) || Admin.AtMost(Editor) || Viewer.AtMost("") {
		t.Fatal("role ranks wrong")
	}
	if !ValidOrgRole("guest") || ValidProjectRole("guest") || ValidOrgRole("owner") {
		t.Fatal("role validity wrong")
	}
}

func TestAttributes(t *testing.T) {
	u := Principal{Kind: KindUser, Name: "Bob", Email: "bob@acme.com",
		ProjectRoles: map[string]Role{"acme/web": "admin", "victim/db": "viewer"},
		Orgs: map[string]OrgData{
			"acme":   {Groups: []string{"sales"}, Attributes: map[string]any{"region": "eu", "email": "spoof@evil.com", "admin": true}},
			"victim": {Groups: []string{"board"}, Attributes: map[string]any{"secret": "VICTIM"}},
		},
		Attributes: map[string]any{"ignored": "a user's custom attributes are per org"}}
	got := u.AttributesFor(u.AccessTo("acme", "web"))
	want := map[string]any{"name": "Bob", "email": "bob@acme.com", "domain": "acme.com", "groups": []string{"sales"}, "admin": true, "region": "eu"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("user attributes %v, want %v", got, want)
	}
	got = u.AttributesFor(u.AccessTo("acme", "api"))
	if got["admin"] != false || got["email"] != "bob@acme.com" {
		t.Fatalf("custom attributes overrode standard ones: %v", got)
	}
	// Each org sees the groups and attributes it set, never another's.
	got = u.AttributesFor(u.AccessTo("victim", "db"))
	want = map[string]any{"name": "Bob", "email": "bob@acme.com", "domain": "acme.com", "groups": []string{"board"}, "admin": false, "secret": "VICTIM"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("user attributes in victim %v, want %v", got, want)
	}
	got = u.AttributesFor(u.AccessTo("third", "x"))
	want = map[string]any{"name": "Bob", "email": "bob@acme.com", "domain": "acme.com", "groups": []string{}, "admin": false}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("user attributes in an org that set none %v, want %v", got, want)
	}
	su := Principal{Kind: KindUser, Email: "root@x.io", Superuser: true, Orgs: u.Orgs}
	if got := su.AttributesFor(su.AccessTo("victim", "db")); got["secret"] != "VICTIM" || got["region"] != nil {
		t.Fatalf("superuser attributes in victim: %v", got)
	}
	s := Principal{Kind: KindService, Subject: "reporting", OrgRoles: map[string]Role{"acme": "admin"}, Attributes: map[string]any{"tier": "gold"}}
	got = s.AttributesFor(s.AccessTo("acme", "web"))
	want = map[string]any{"name": "reporting", "admin": true, "tier": "gold"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("service attributes %v, want %v", got, want)
	}
	if Domain("nobody") != "" || Domain("a@b@c.io") != "c.io" {
		t.Fatal("Domain")
	}
}

// TestRuntimePerms pins the runtime permissions of each project role on a prod deployment to
// what rilldata/rill's admin/server/runtime_jwt.go grants.
func TestRuntimePerms(t *testing.T) {
	for _, c := range []struct {
		role Role
		want []int
	}{
		{"", []int{}},
		{Viewer, []int{0x15, 0x17, 0x19, 0x1B}},
		{Editor, []int{0x15, 0x17, 0x19, 0x1B}},
		{Admin, []int{0x15, 0x17, 0x19, 0x1B, 0x1A, 0x20, 0x11}},
	} {
		if got := RuntimePerms(c.role.ProjectPerms()); !slices.Equal(got, c.want) {
			t.Errorf("%q: %#x, want %#x", c.role, got, c.want)
		}
	}
	if got := RuntimePerms(ReadProd | ManageProd); !slices.Equal(got, []int{0x15, 0x17, 0x19, 0x1B, 0x1A, 0x20}) {
		t.Errorf("manage_prod without manage_project: %#x", got)
	}
}
