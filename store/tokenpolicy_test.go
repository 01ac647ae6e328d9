package store

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/token"
)

// TestTokenPolicyCheck: what a policy refuses, and in which words; Beyond agrees with Check
// for a token issued now.
func TestTokenPolicyCheck(t *testing.T) {
	p := TokenPolicy{MaxUserTokenTTLMinutes: 60 * 24, MaxMagicTokenTTLMinutes: 90}
	req := TokenPolicy{RequireExpiry: true}
	for _, tc := range []struct {
		name string
		p    TokenPolicy
		k    token.Kind
		ttl  time.Duration
		want string // "" : allowed
	}{
		{"within", p, token.User, time.Hour, ""},
		{"at the limit", p, token.User, 24 * time.Hour, ""},
		{"beyond", p, token.User, 25 * time.Hour, "org x: user tokens may live at most 1 day (1440 minutes), not 25 hours"},
		{"never expires", p, token.User, 0, "org x: user tokens must expire within 1 day (1440 minutes)"},
		{"another kind's limit", p, token.Service, 0, ""},
		{"minutes", p, token.Magic, 91 * time.Minute, "public URLs may live at most 90 minutes, not 91 minutes"},
		{"seconds", p, token.Magic, 90*time.Minute + time.Second, "not 1h30m1s"},
		{"expiry required", req, token.Service, 0, "org x: service tokens must expire; give a ttl"},
		{"expiry required, any ttl", req, token.Service, 100 * 365 * 24 * time.Hour, ""},
		{"no policy", TokenPolicy{}, token.User, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Check(tc.k, tc.ttl, "org x")
			if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Check: %v, want %q", err, tc.want)
			}
			now := time.Now()
			var exp time.Time
			if tc.ttl > 0 {
				exp = now.Add(tc.ttl)
			}
			if beyond := tc.p.Beyond(tc.k, now, exp); beyond != (err != nil) {
				t.Errorf("Beyond = %v, but Check says %v", beyond, err)
			}
		})
	}
	for _, bad := range []TokenPolicy{{MaxUserTokenTTLMinutes: -1}, {MaxServiceTokenTTLMinutes: MaxPolicyMinutes + 1}, {MaxMagicTokenTTLMinutes: -5}} {
		if bad.Validate() == nil {
			t.Errorf("Validate took %+v", bad)
		}
	}
	if err := (TokenPolicy{MaxUserTokenTTLMinutes: MaxPolicyMinutes}).Validate(); err != nil {
		t.Errorf("Validate refused the largest limit: %v", err)
	}
}

// TestMemberOrgs: the orgs of a user's org roles and project roles, once each, sorted.
func TestMemberOrgs(t *testing.T) {
	u := User{OrgRoles: map[string]policy.Role{"b": "viewer", "a": "admin"}, ProjectRoles: map[string]policy.Role{"c/web": "viewer", "a/web": "admin"}}
	if got := MemberOrgs(u); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("MemberOrgs = %v", got)
	}
	if got := MemberOrgs(User{}); len(got) != 0 {
		t.Errorf("a user in no org: %v", got)
	}
}
