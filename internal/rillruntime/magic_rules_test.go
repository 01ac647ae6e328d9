package rillruntime_test

import (
	"slices"
	"testing"

	"github.com/rill-authd/rill-authd/internal/rillruntime"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/token"
)

// TestMagicRulesAsRillWritesThem: policy.MagicRules (Rill's securityRulesFromMagicAuthToken)
// encoded by token.EncodeSec is, rule by rule, what protojson writes for the same messages
// (decoded as the runtime decodes them, marshalled again as Rill's issuer does), in Rill's order:
// the resource rules (deny-all without resources), the row filters (by metrics view; "*" on
// every one), then the field access.
func TestMagicRulesAsRillWritesThem(t *testing.T) {
	eq := `{"cond":{"op":"OPERATION_EQ","exprs":[{"ident":"country"},{"val":"DK"}]}}`
	for _, c := range []struct {
		name      string
		resources []token.ResourceName
		filters   map[string]string
		fields    []string
		want      []string // each rule's oneof field
	}{
		{"nothing", nil, nil, nil, []string{"access"}},
		{"resources only", []token.ResourceName{{Kind: token.KindExplore, Name: "a"}, {Kind: token.KindCanvas, Name: "b"}}, nil, nil,
			[]string{"transitive_access:rill.runtime.v1.Explore/a", "transitive_access:rill.runtime.v1.Canvas/b"}},
		{"filters and fields, no resources", nil, map[string]string{"z_mv": eq, "*": eq, "a_mv": `{"cond":{"op":9,"exprs":[{"ident":"t"},{"val":[1,2.5,"x",null,true]}]}}`},
			[]string{"f1", "f\"2"}, []string{"access", "row_filter", "row_filter", "row_filter", "field_access"}},
		{"all", []token.ResourceName{{Kind: token.KindExplore, Name: "sales"}}, map[string]string{"sales": eq}, []string{"country"},
			[]string{"transitive_access:rill.runtime.v1.Explore/sales", "row_filter", "field_access"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rules, err := policy.MagicRules(c.resources, c.filters, c.fields)
			if err != nil {
				t.Fatal(err)
			}
			sec, err := token.EncodeSec(rules)
			if err != nil {
				t.Fatal(err)
			}
			msgs, err := rillruntime.DecodeSec(sec)
			if err != nil {
				t.Fatalf("the runtime cannot read %s: %v", sec, err)
			}
			for i, m := range msgs {
				again, err := rillruntime.Marshal(m)
				if err != nil || string(again) != string(sec[i]) {
					t.Errorf("rule %d: we write %s, protojson %s (%v)", i, sec[i], again, err)
				}
			}
			if got := rulesOf(t, &jwtClaims{Security: sec}); !slices.Equal(got, c.want) {
				t.Errorf("rules %v, want %v", got, c.want)
			}
		})
	}
	// The row filters come by metrics view name, "*" (every metrics view) with no condition.
	rules, _ := policy.MagicRules(nil, map[string]string{"z_mv": eq, "*": eq, "a_mv": eq}, nil)
	sec, _ := token.EncodeSec(rules)
	want := []string{`{"access":{}}`, `{"rowFilter":{"expression":` + eq + `}}`,
		`{"rowFilter":{"conditionResources":[{"kind":"rill.runtime.v1.MetricsView","name":"a_mv"}],"expression":` + eq + `}}`,
		`{"rowFilter":{"conditionResources":[{"kind":"rill.runtime.v1.MetricsView","name":"z_mv"}],"expression":` + eq + `}}`}
	for i := range want {
		if string(sec[i]) != want[i] {
			t.Errorf("sec[%d] = %s, want %s", i, sec[i], want[i])
		}
	}
	// What Rill refuses: an empty metrics view name, a filter protojson cannot read.
	if _, err := policy.MagicRules(nil, map[string]string{"": eq}, nil); err == nil {
		t.Error("an empty metrics view name was taken")
	}
	if _, err := policy.MagicRules(nil, map[string]string{"mv": `{"cond":{"op":"OPERATION_NOPE"}}`}, nil); err == nil {
		t.Error("an unknown operation was taken")
	}
}
