package store

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/policy"
)

func TestTokenExpired(t *testing.T) {
	now := time.Now()
	cases := []struct {
		exp  time.Time
		want bool
	}{{time.Time{}, false}, {now.Add(time.Second), false}, {now, true}, {now.Add(-time.Second), true}}
	for _, c := range cases {
		tk := Token{ExpiresAt: c.exp}
		if got := tk.Expired(now); got != c.want {
			t.Errorf("Expired(exp=%v) = %v", c.exp, got)
		}
	}
}

func TestUserOnly(t *testing.T) {
	u := User{ID: "u1", Email: "ceo@victim.com", OrgRoles: map[string]policy.Role{"acme": "viewer", "victim": "admin"},
		ProjectRoles: map[string]policy.Role{"acme/web": "viewer", "victim/vault": "admin", "acme-eu/web": "viewer"},
		Orgs:         map[string]UserOrg{"acme": {Groups: []string{"a"}}, "victim": {Groups: []string{"v"}, Attributes: map[string]any{"k": "v"}}}}
	got := u.Only("acme")
	want := User{ID: "u1", Email: "ceo@victim.com", OrgRoles: map[string]policy.Role{"acme": "viewer"},
		ProjectRoles: map[string]policy.Role{"acme/web": "viewer"}, Orgs: map[string]UserOrg{"acme": {Groups: []string{"a"}}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Only(acme) = %+v", got)
	}
	got.Orgs["acme"].Groups[0] = "changed"
	if u.Orgs["acme"].Groups[0] != "a" {
		t.Fatal("changing Only's result changed the user")
	}
	if none := u.Only("initech"); none.OrgRoles != nil || none.ProjectRoles != nil || none.Orgs != nil || u.Member("initech") || u.Member("") {
		t.Fatalf("Only of an org the user is not in: %+v", none)
	}
	if !u.Member("acme-eu") || !reflect.DeepEqual(u.MemberOrgs(), []string{"acme", "acme-eu", "victim"}) {
		t.Fatalf("MemberOrgs = %v", u.MemberOrgs())
	}
}

// A record with both shapes (not written by us, but possible by hand) keeps the per-org value.
func TestUserRecordNewShapeWins(t *testing.T) {
	var u User
	err := json.Unmarshal([]byte(`{"id":"u1","org_roles":{"acme":"viewer","victim":"viewer"},"orgs":{"acme":{"groups":["new"]}},"groups":["old"]}`), &u)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]UserOrg{"acme": {Groups: []string{"new"}}, "victim": {Groups: []string{"old"}}}
	if !reflect.DeepEqual(u.Orgs, want) {
		t.Fatalf("Orgs = %+v", u.Orgs)
	}
	if err := json.Unmarshal([]byte(`{"id":"u1","groups":"eng"}`), &u); err == nil {
		t.Fatal("a malformed old groups field was accepted")
	}
}
