package policy

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/rill-authd/rill-authd/token"
)

var (
	exploreA = token.ResourceName{Kind: token.KindExplore, Name: "a"}
	canvasB  = token.ResourceName{Kind: token.KindCanvas, Name: "b"}
)

// TestMergeGrants is Rill's getResourceRestrictionsForUser: no binding is no limit, one
// unlimited binding lifts the limit, otherwise the union in order, each once.
func TestMergeGrants(t *testing.T) {
	for _, c := range []struct {
		name       string
		grants     []Grant
		restricted bool
		resources  []token.ResourceName
	}{
		{"no binding (an org admin without project rows)", nil, false, nil},
		{"one unlimited binding", []Grant{{}}, false, nil},
		{"limited to nothing", []Grant{{Restrict: true}}, true, nil},
		{"own limited, a group's not", []Grant{{Restrict: true, Resources: []token.ResourceName{exploreA}}, {Restrict: false}}, false, nil},
		{"union, in order, each once", []Grant{{Restrict: true, Resources: []token.ResourceName{canvasB, exploreA}},
			{Restrict: true, Resources: []token.ResourceName{exploreA}}, {Restrict: true}}, true, []token.ResourceName{canvasB, exploreA}},
	} {
		restricted, resources := MergeGrants(c.grants)
		if restricted != c.restricted || !reflect.DeepEqual(resources, c.resources) {
			t.Errorf("%s: %v %v, want %v %v", c.name, restricted, resources, c.restricted, c.resources)
		}
	}
}

// TestSecurityRules: Rill's securityRulesFromResources, and which principals get them.
func TestSecurityRules(t *testing.T) {
	enc := func(rules []token.SecurityRule) string {
		sec, err := token.EncodeSec(rules)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(sec)
		return string(b)
	}
	if got := enc(RulesFromResources(false, []token.ResourceName{exploreA})); got != "null" {
		t.Errorf("unrestricted: %s", got)
	}
	if got := enc(RulesFromResources(true, nil)); got != `[{"access":{}}]` {
		t.Errorf("restricted to nothing: %s", got)
	}
	// A resource without a kind or a name is skipped; with only such, Rill signs no rule at all.
	if got := enc(RulesFromResources(true, []token.ResourceName{{Name: "x"}, {Kind: token.KindExplore}})); got != "null" {
		t.Errorf("only nameless resources: %s", got)
	}
	if got := enc(RulesFromResources(true, []token.ResourceName{exploreA, {Name: "x"}})); got !=
		`[{"transitiveAccess":{"resource":{"kind":"rill.runtime.v1.Explore","name":"a"}}}]` {
		t.Errorf("one resource: %s", got)
	}

	p := &Principal{ProjectRoles: map[string]Role{"acme/web": Viewer}, Restrictions: map[string]Restriction{
		"acme/web": {Resources: []token.ResourceName{exploreA}}, "acme/gone": {}}}
	if got := enc(p.SecurityRules("acme", "web")); got == "null" {
		t.Error("a restricted role got no rules")
	}
	for _, c := range []struct{ org, project string }{{"acme", "gone"}, {"acme", "other"}, {"acme", ""}, {"beta", "web"}} {
		if got := p.SecurityRules(c.org, c.project); got != nil {
			t.Errorf("%s/%s: rules %v, want none (no role there, or no restriction)", c.org, c.project, got)
		}
	}
	// An ephemeral token's own sec is carried as it was signed.
	e := &Principal{Security: []json.RawMessage{json.RawMessage(`{"access":{}}`)}}
	if got, err := e.Sec("acme", "web"); err != nil || len(got) != 1 || string(got[0]) != `{"access":{}}` {
		t.Errorf("ephemeral sec: %s %v", got, err)
	}
}

// TestResourceLimit: only a restricted role on the project itself limits; OutsideLimit names
// the first resource a limit does not hold.
func TestResourceLimit(t *testing.T) {
	p := &Principal{ProjectRoles: map[string]Role{"acme/web": Editor, "acme/app": Viewer},
		Restrictions: map[string]Restriction{"acme/web": {Resources: []token.ResourceName{exploreA}}, "acme/gone": {}}}
	for _, c := range []struct {
		project string
		limited bool
		want    []token.ResourceName
	}{
		{"web", true, []token.ResourceName{exploreA}},
		{"app", false, nil},
		{"gone", false, nil}, // a restriction without the role it limits
		{"", false, nil},
	} {
		got, limited := p.ResourceLimit("acme", c.project)
		if limited != c.limited || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: %v %v, want %v %v", c.project, got, limited, c.want, c.limited)
		}
	}
	if _, limited := (*Principal)(nil).ResourceLimit("acme", "web"); limited {
		t.Error("no principal is limited")
	}
	for _, c := range []struct {
		name         string
		limit, asked []token.ResourceName
		outside      bool
	}{
		{"nothing asked", []token.ResourceName{exploreA}, nil, false},
		{"the same", []token.ResourceName{exploreA}, []token.ResourceName{exploreA}, false},
		{"another kind, same name", []token.ResourceName{exploreA}, []token.ResourceName{{Kind: token.KindCanvas, Name: "a"}}, true},
		{"one more", []token.ResourceName{exploreA}, []token.ResourceName{exploreA, canvasB}, true},
		{"limited to nothing", nil, []token.ResourceName{exploreA}, true},
	} {
		if _, outside := OutsideLimit(c.limit, c.asked); outside != c.outside {
			t.Errorf("%s: outside %v, want %v", c.name, outside, c.outside)
		}
	}
}
