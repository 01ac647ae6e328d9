package storetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
)

// testSigninRules: an org's sign-in rules are kept in its record (read back, listed, dumped and
// loaded), are an org change in the feed, and an unknown org or bad rules change nothing; what
// the rules gave a user (UserOrg.Provisioned) round-trips in the user record.
func testSigninRules(t *testing.T, su suite) {
	s := su.fresh(t)
	c := t.Context()
	must(t, s.CreateOrg(c, store.Org{Name: "acme", CreatedAt: now()}))
	must(t, s.CreateOrg(c, store.Org{Name: "globex", CreatedAt: now()}))
	if o := val(s.GetOrg(c, "acme"))(t); !o.SigninRules.IsZero() {
		t.Fatalf("a new org has rules %+v, want none", o.SigninRules)
	}
	rec := record(t, s)
	r := store.SigninRules{
		Domains: []store.DomainRule{{Domain: "acme.io", OrgRole: policy.Viewer}, {Domain: "eu.acme.io", OrgRole: policy.Guest}},
		Groups: []store.GroupRule{{Group: "eng", OrgRole: policy.Editor, AttributeGroups: []string{"data", "engineering"}},
			{Group: "CN=Admins,OU=Groups", OrgRole: policy.Admin}},
	}
	if o := val(s.SetSigninRules(c, "acme", r))(t); !reflect.DeepEqual(o.SigninRules, r) || o.Name != "acme" {
		t.Fatalf("SetSigninRules returned %+v", o)
	}
	if got := val(s.GetOrg(c, "acme"))(t).SigninRules; !reflect.DeepEqual(got, r) {
		t.Errorf("GetOrg: rules %+v, want %+v", got, r)
	}
	if got := val(s.GetOrg(c, "globex"))(t).SigninRules; !got.IsZero() {
		t.Errorf("globex got acme's rules: %+v", got)
	}
	os := val(s.ListOrgs(c))(t)
	if len(os) != 2 || !reflect.DeepEqual(os[0].SigninRules, r) || !os[1].SigninRules.IsZero() {
		t.Errorf("ListOrgs: %+v", os)
	}
	if got := descs(rec.all()); len(got) != 1 || got[0] != put(store.ChangeOrg, "acme") {
		t.Errorf("feed: %v, want one org put of acme", got)
	}

	before := lastSeq(t, s)
	_, err := s.SetSigninRules(c, "nope", r)
	wantErr(t, "SetSigninRules of an unknown org", err, store.ErrNotFound)
	for _, bad := range []store.SigninRules{
		{Domains: []store.DomainRule{{Domain: "acme.io", OrgRole: "owner"}}},
		{Domains: []store.DomainRule{{Domain: "ann@acme.io", OrgRole: policy.Viewer}}},
		{Domains: []store.DomainRule{{Domain: "acme.io", OrgRole: policy.Viewer}, {Domain: "acme.io", OrgRole: policy.Editor}}},
		{Groups: []store.GroupRule{{Group: "", OrgRole: policy.Viewer}}},
		{Groups: []store.GroupRule{{Group: "eng", OrgRole: policy.Viewer, AttributeGroups: []string{"a\x00b"}}}},
	} {
		if _, err := s.SetSigninRules(c, "acme", bad); err == nil {
			t.Errorf("SetSigninRules took %+v", bad)
		}
	}
	if got := val(s.GetOrg(c, "acme"))(t).SigninRules; !reflect.DeepEqual(got, r) {
		t.Errorf("a refused SetSigninRules changed the rules to %+v", got)
	}
	if after := lastSeq(t, s); after != before {
		t.Errorf("refused writes moved the feed from %d to %d", before, after)
	}
	// Rules and a token policy are kept side by side: setting one keeps the other.
	p := store.TokenPolicy{RequireExpiry: true}
	val(s.SetTokenPolicy(c, "acme", p))(t)
	if o := val(s.GetOrg(c, "acme"))(t); !reflect.DeepEqual(o.SigninRules, r) || o.TokenPolicy != p {
		t.Errorf("after SetTokenPolicy: %+v", o)
	}
	if o := val(s.SetSigninRules(c, "acme", store.SigninRules{}))(t); !o.SigninRules.IsZero() || o.TokenPolicy != p {
		t.Errorf("cleared rules: %+v", o)
	}
	val(s.SetSigninRules(c, "acme", r))(t)

	// What the rules gave a user is part of the user record.
	u := newUser("ann@acme.io")
	at := now().Truncate(time.Microsecond)
	u.OrgRoles = map[string]policy.Role{"acme": policy.Editor}
	u.Orgs = map[string]store.UserOrg{"acme": {Groups: []string{"data", "manual"},
		Provisioned: &store.Provisioned{Role: policy.Editor, Groups: []string{"data"}, Provider: "okta", At: at}}}
	must(t, s.CreateUser(c, u))
	got := val(s.GetUser(c, u.ID))(t)
	if pv := got.Orgs["acme"].Provisioned; pv == nil || pv.Role != policy.Editor || pv.Provider != "okta" || !pv.At.Equal(at) || !reflect.DeepEqual(pv.Groups, []string{"data"}) {
		t.Errorf("provisioned after a round trip: %+v", pv)
	}
	if pv := got.Only("acme").Orgs["acme"].Provisioned; pv == nil || pv.Role != policy.Editor {
		t.Errorf("Only(acme) lost the provisioning record: %+v", pv)
	}

	// copy-store (Dump, Load) keeps them.
	dump := val(store.Dump(c, s))(t)
	must(t, dump.Validate())
	dst := su.fresh(t)
	l, ok := dst.(store.Loader)
	if !ok {
		return
	}
	must(t, l.Load(c, dump, false))
	if got := val(dst.GetOrg(c, "acme"))(t).SigninRules; !reflect.DeepEqual(got, r) {
		t.Errorf("after Dump and Load: rules %+v, want %+v", got, r)
	}
	if pv := val(dst.GetUser(c, u.ID))(t).Orgs["acme"].Provisioned; pv == nil || pv.Provider != "okta" {
		t.Errorf("after Dump and Load: provisioned %+v", pv)
	}
	// A snapshot holding rules no write would take is refused before it is loaded.
	dump.Orgs[0].SigninRules = store.SigninRules{Domains: []store.DomainRule{{Domain: "acme.io", OrgRole: "owner"}}}
	if err := dump.Validate(); err == nil {
		t.Error("Snapshot.Validate took an org whose rule has role owner")
	}
}
