package store

import (
	"reflect"
	"strings"
	"testing"

	"github.com/rill-authd/rill-authd/policy"
)

func TestSigninRulesValidate(t *testing.T) {
	long := strings.Repeat("a", MaxGroupName+1)
	for _, tc := range []struct {
		name string
		r    SigninRules
		want string // "" when valid
	}{
		{"none", SigninRules{}, ""},
		{"domains and groups", SigninRules{Domains: []DomainRule{{"acme.io", policy.Viewer}, {"eu.acme-corp.io", policy.Admin}},
			Groups: []GroupRule{{"eng", policy.Editor, []string{"engineering"}}, {"CN=Admins,OU=Groups,DC=acme", policy.Guest, nil}}}, ""},
		{"an email for a domain", SigninRules{Domains: []DomainRule{{"ann@acme.io", policy.Viewer}}}, "holds an @"},
		{"no dot", SigninRules{Domains: []DomainRule{{"localhost", policy.Viewer}}}, "with a dot"},
		{"a wildcard", SigninRules{Domains: []DomainRule{{"*.acme.io", policy.Viewer}}}, "is not a domain name"},
		{"upper case", SigninRules{Domains: []DomainRule{{"Acme.io", policy.Viewer}}}, "lower case"},
		{"an empty label", SigninRules{Domains: []DomainRule{{"acme..io", policy.Viewer}}}, "is not a domain name"},
		{"a domain twice", SigninRules{Domains: []DomainRule{{"acme.io", policy.Viewer}, {"acme.io", policy.Admin}}}, "named twice"},
		{"an unknown domain role", SigninRules{Domains: []DomainRule{{"acme.io", "owner"}}}, `org_role "owner" is not an org role`},
		{"no domain role", SigninRules{Domains: []DomainRule{{"acme.io", ""}}}, "is not an org role"},
		{"an empty group", SigninRules{Groups: []GroupRule{{" ", policy.Viewer, nil}}}, "is empty"},
		{"a group twice", SigninRules{Groups: []GroupRule{{"eng", policy.Viewer, nil}, {"eng", policy.Editor, nil}}}, "named twice"},
		{"an unknown group role", SigninRules{Groups: []GroupRule{{"eng", "superuser", nil}}}, "is not an org role"},
		{"a long group", SigninRules{Groups: []GroupRule{{long, policy.Viewer, nil}}}, "longer than"},
		{"a control character", SigninRules{Groups: []GroupRule{{"eng", policy.Viewer, []string{"a\nb"}}}}, "control character"},
		{"a padded attribute group", SigninRules{Groups: []GroupRule{{"eng", policy.Viewer, []string{" data"}}}}, "starts or ends with a space"},
		{"too many domains", SigninRules{Domains: make([]DomainRule, MaxDomainRules+1)}, "at most"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.r.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestSigninRulesNormalize(t *testing.T) {
	got := SigninRules{Domains: []DomainRule{{" @Acme.IO. ", " Viewer"}},
		Groups: []GroupRule{{"Eng", "EDITOR", []string{"b", "a", "b"}}, {"ops", "guest", []string{}}}}.Normalize()
	want := SigninRules{Domains: []DomainRule{{"acme.io", policy.Viewer}},
		Groups: []GroupRule{{"Eng", policy.Editor, []string{"a", "b"}}, {"ops", policy.Guest, nil}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Normalize = %+v, want %+v (group names keep their case: providers' names are exact)", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestSigninRulesGrants(t *testing.T) {
	r := SigninRules{Domains: []DomainRule{{"acme.io", policy.Viewer}},
		Groups: []GroupRule{{"eng", policy.Editor, []string{"engineering"}}, {"data", policy.Viewer, []string{"analytics", "engineering"}}, {"admins", policy.Admin, nil}}}
	for _, tc := range []struct {
		name   string
		groups []string
		want   Grant
	}{
		{"no groups", nil, Grant{}},
		{"no rule's group", []string{"sales", "ENG"}, Grant{}},
		{"one", []string{"data"}, Grant{Role: policy.Viewer, ByGroup: true, Groups: []string{"analytics", "engineering"}}},
		{"the highest role, every rule's groups", []string{"data", "eng"}, Grant{Role: policy.Editor, ByGroup: true, Groups: []string{"analytics", "engineering"}}},
		{"a rule without groups", []string{"admins"}, Grant{Role: policy.Admin, ByGroup: true}},
	} {
		if got := r.GroupGrant(tc.groups); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: GroupGrant(%v) = %+v, want %+v", tc.name, tc.groups, got, tc.want)
		}
	}
	for domain, want := range map[string]policy.Role{"acme.io": policy.Viewer, "eu.acme.io": "", "evilacme.io": "", "": ""} {
		if got := r.DomainGrant(domain); got != want {
			t.Errorf("DomainGrant(%q) = %q, want %q", domain, got, want)
		}
	}
	for email, want := range map[string]string{"ann@Acme.IO": "acme.io", "a@b@c.io": "c.io", "nobody": ""} {
		if got := EmailDomain(email); got != want {
			t.Errorf("EmailDomain(%q) = %q, want %q", email, got, want)
		}
	}
}
