package token_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/rill-authd/rill-authd/internal/rillruntime"
	"github.com/rill-authd/rill-authd/token"
)

var updateSec = flag.Bool("update-sec", false, "rewrite testdata/sec from protojson")

const mvFilter = `{"cond":{"op":"OPERATION_AND","exprs":[{"cond":{"op":"OPERATION_EQ","exprs":[{"ident":"country"},{"val":"DK"}]}},` +
	`{"cond":{"op":5,"exprs":[{"ident":"revenue"},{"val":1000.0}]}},{"cond":{"op":"OPERATION_IN","exprs":[{"ident":"tier"},` +
	`{"val":["gold","platinum"]}]}}]}}`

// secCases are the rules Rill's issuer signs (admin/server/runtime_jwt.go, projects.go,
// deployment.go) and the shapes around them; the fixtures in testdata/sec are protojson's
// encoding of each (go test ./token -run SecFixtures -update-sec writes them from protojson).
var secCases = []struct {
	name string
	rule token.SecurityRule
}{
	{"deny_all", token.DenyAll()},
	{"transitive_explore", token.Transitive(token.ResourceName{Kind: token.KindExplore, Name: "sales_explore"})},
	{"transitive_canvas", token.Transitive(token.ResourceName{Kind: token.KindCanvas, Name: "exec <overview> & \"more\""})},
	{"transitive_unicode", token.Transitive(token.ResourceName{Kind: token.KindExplore, Name: "ventes_été\u2028\x7f\x01\t\\"})},
	{"transitive_empty_name", token.Transitive(token.ResourceName{Kind: token.KindExplore})},
	{"access_magic_legacy", token.SecurityRule{Access: &token.RuleAccess{RuleCondition: token.RuleCondition{
		Expression: "NOT ('{{.self.kind}}'='rill.runtime.v1.Theme' OR '{{.self.kind}}'='rill.runtime.v1.MetricsView' AND '{{ .self.name }}'='mv')"}}}},
	{"access_full", token.SecurityRule{Access: &token.RuleAccess{RuleCondition: token.RuleCondition{Expression: "true",
		Kinds: []string{token.KindMetricsView, token.KindExplore}, Resources: []token.ResourceName{{Kind: token.KindCanvas, Name: "c"}, {Name: "only-name"}}},
		Allow: true, Exclusive: true}}},
	{"row_filter_magic", token.SecurityRule{RowFilter: &token.RuleRowFilter{RuleCondition: token.RuleCondition{
		Resources: []token.ResourceName{{Kind: token.KindMetricsView, Name: "sales"}}}, Expression: json.RawMessage(mvFilter)}}},
	{"row_filter_all", token.SecurityRule{RowFilter: &token.RuleRowFilter{Expression: json.RawMessage(
		`{"cond":{"op":"OPERATION_NIN","exprs":[{"ident":"x"},{"val":{"z":1e21,"a":[true,null,0.0000001,-0,"<>"],"m":{}}}]}}`)}}},
	{"row_filter_sql_kinds", token.SecurityRule{RowFilter: &token.RuleRowFilter{RuleCondition: token.RuleCondition{Kinds: []string{token.KindMetricsView}},
		SQL: "tenant = '{{ .user.tenant }}'"}}},
	{"row_filter_subquery", token.SecurityRule{RowFilter: &token.RuleRowFilter{Expression: json.RawMessage(
		`{"subquery":{"dimension":"d","measures":["m1","m2"],"where":{"ident":"w"},"having":{"cond":{"op":"OPERATION_GT","exprs":[{"ident":"m1"},{"val":10}]}}}}`)}}},
	{"field_access_magic", token.SecurityRule{FieldAccess: &token.RuleFieldAccess{Allow: true, Exclusive: true, Fields: []string{"country", "revenue"}}}},
	{"field_access_full", token.SecurityRule{FieldAccess: &token.RuleFieldAccess{RuleCondition: token.RuleCondition{Expression: "c",
		Kinds: []string{"k"}, Resources: []token.ResourceName{{Kind: "k", Name: "n"}}}, Allow: false, Exclusive: true, AllFields: true}}},
	{"empty", token.SecurityRule{}},
}

// toProto builds the rill.runtime.v1.SecurityRule r stands for, field by field; a row filter's
// expression is read with protojson.Unmarshal, as Rill's issuer reads a stored filter.
func toProto(t testing.TB, r token.SecurityRule) *dynamicpb.Message {
	t.Helper()
	m := rillruntime.New("SecurityRule")
	set := func(m *dynamicpb.Message, name string, v protoreflect.Value) {
		m.Set(m.Descriptor().Fields().ByName(protoreflect.Name(name)), v)
	}
	strs := func(m *dynamicpb.Message, name string, ss []string) {
		if len(ss) == 0 {
			return
		}
		l := m.NewField(m.Descriptor().Fields().ByName(protoreflect.Name(name))).List()
		for _, s := range ss {
			l.Append(protoreflect.ValueOfString(s))
		}
		set(m, name, protoreflect.ValueOfList(l))
	}
	rn := func(r token.ResourceName) *dynamicpb.Message {
		x := rillruntime.New("ResourceName")
		set(x, "kind", protoreflect.ValueOfString(r.Kind))
		set(x, "name", protoreflect.ValueOfString(r.Name))
		return x
	}
	cond := func(m *dynamicpb.Message, c token.RuleCondition) {
		set(m, "condition_expression", protoreflect.ValueOfString(c.Expression))
		strs(m, "condition_kinds", c.Kinds)
		if len(c.Resources) > 0 {
			l := m.NewField(m.Descriptor().Fields().ByName("condition_resources")).List()
			for _, r := range c.Resources {
				l.Append(protoreflect.ValueOfMessage(rn(r)))
			}
			set(m, "condition_resources", protoreflect.ValueOfList(l))
		}
	}
	b := func(v bool) protoreflect.Value { return protoreflect.ValueOfBool(v) }
	switch {
	case r.Access != nil:
		a := rillruntime.New("SecurityRuleAccess")
		cond(a, r.Access.RuleCondition)
		set(a, "allow", b(r.Access.Allow))
		set(a, "exclusive", b(r.Access.Exclusive))
		set(m, "access", protoreflect.ValueOfMessage(a))
	case r.FieldAccess != nil:
		a := rillruntime.New("SecurityRuleFieldAccess")
		cond(a, r.FieldAccess.RuleCondition)
		set(a, "allow", b(r.FieldAccess.Allow))
		set(a, "exclusive", b(r.FieldAccess.Exclusive))
		strs(a, "fields", r.FieldAccess.Fields)
		set(a, "all_fields", b(r.FieldAccess.AllFields))
		set(m, "field_access", protoreflect.ValueOfMessage(a))
	case r.RowFilter != nil:
		a := rillruntime.New("SecurityRuleRowFilter")
		cond(a, r.RowFilter.RuleCondition)
		set(a, "sql", protoreflect.ValueOfString(r.RowFilter.SQL))
		if len(r.RowFilter.Expression) > 0 {
			x := rillruntime.New("Expression")
			if err := protojson.Unmarshal(r.RowFilter.Expression, x); err != nil {
				t.Fatalf("protojson refuses the expression %s: %v", r.RowFilter.Expression, err)
			}
			set(a, "expression", protoreflect.ValueOfMessage(x))
		}
		set(m, "row_filter", protoreflect.ValueOfMessage(a))
	case r.TransitiveAccess != nil:
		a := rillruntime.New("SecurityRuleTransitiveAccess")
		set(a, "resource", protoreflect.ValueOfMessage(rn(*r.TransitiveAccess)))
		set(m, "transitive_access", protoreflect.ValueOfMessage(a))
	}
	return m
}

func protojsonOf(t testing.TB, r token.SecurityRule) []byte {
	t.Helper()
	b, err := rillruntime.Marshal(toProto(t, r))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSecFixtures: our encoding of each rule is byte for byte the fixture, and the fixture is
// byte for byte what protojson writes for the same rill.runtime.v1.SecurityRule.
func TestSecFixtures(t *testing.T) {
	for _, c := range secCases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join("testdata", "sec", c.name+".json")
			want := protojsonOf(t, c.rule)
			if *updateSec {
				if err := os.WriteFile(path, append(want, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			fixture, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			fixture = bytes.TrimSuffix(fixture, []byte("\n"))
			if !bytes.Equal(fixture, want) {
				t.Errorf("fixture %s is not protojson's encoding:\n fixture  %s\n protojson %s", path, fixture, want)
			}
			got, err := token.EncodeRule(c.rule)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, fixture) {
				t.Errorf("our encoding differs from Rill's:\n ours    %s\n fixture %s", got, fixture)
			}
			// The runtime reads it back into the same rule.
			m, err := rillruntime.DecodeRule(got)
			if err != nil {
				t.Fatal(err)
			}
			if again, _ := rillruntime.Marshal(m); !bytes.Equal(again, fixture) {
				t.Errorf("decoded and encoded again: %s", again)
			}
		})
	}
}

// TestSecDenyAllAndTransitive pins the two rules of restricted roles literally, so a reader sees
// what Rill signs.
func TestSecDenyAllAndTransitive(t *testing.T) {
	sec, err := token.EncodeSec([]token.SecurityRule{token.DenyAll(), token.Transitive(token.ResourceName{Kind: token.KindExplore, Name: "e"})})
	if err != nil {
		t.Fatal(err)
	}
	if string(sec[0]) != `{"access":{}}` || string(sec[1]) != `{"transitiveAccess":{"resource":{"kind":"rill.runtime.v1.Explore","name":"e"}}}` {
		t.Errorf("sec = %s", sec)
	}
	if none, err := token.EncodeSec(nil); none != nil || err != nil {
		t.Errorf("no rules: %v %v, want no claim", none, err)
	}
	if _, err := token.EncodeRule(token.SecurityRule{Access: &token.RuleAccess{}, RowFilter: &token.RuleRowFilter{}}); err == nil {
		t.Error("a rule with two kinds was encoded")
	}
	if _, err := token.EncodeRule(token.Transitive(token.ResourceName{Kind: "k", Name: "bad\xff"})); err == nil {
		t.Error("invalid UTF-8 was encoded (protojson refuses it)")
	}
}

// TestSecRandomAgainstProtojson encodes random rules with awkward strings and random filter
// expressions both ways.
func TestSecRandomAgainstProtojson(t *testing.T) {
	rng := rand.New(rand.NewPCG(20, 26))
	alphabet := []string{"a", "Z", "0", " ", "<", ">", "&", "\"", "\\", "/", "\n", "\t", "\b", "\f", "\r", "\x00", "\x1f", "\x7f", "é", "\u2028", "\u2029", "😀", "'", "{{", "}}"}
	str := func() string {
		var sb strings.Builder
		for range rng.IntN(8) {
			sb.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		return sb.String()
	}
	strs := func() []string {
		var out []string
		for range rng.IntN(3) {
			out = append(out, str())
		}
		return out
	}
	res := func() []token.ResourceName {
		var out []token.ResourceName
		for range rng.IntN(3) {
			out = append(out, token.ResourceName{Kind: str(), Name: str()})
		}
		return out
	}
	cond := func() token.RuleCondition {
		return token.RuleCondition{Expression: str(), Kinds: strs(), Resources: res()}
	}
	for i := range 3000 {
		var r token.SecurityRule
		switch rng.IntN(4) {
		case 0:
			r.Access = &token.RuleAccess{RuleCondition: cond(), Allow: rng.IntN(2) == 0, Exclusive: rng.IntN(2) == 0}
		case 1:
			r.FieldAccess = &token.RuleFieldAccess{RuleCondition: cond(), Allow: rng.IntN(2) == 0, Exclusive: rng.IntN(2) == 0, Fields: strs(), AllFields: rng.IntN(2) == 0}
		case 2:
			r.RowFilter = &token.RuleRowFilter{RuleCondition: cond(), SQL: str()}
			if rng.IntN(4) > 0 {
				r.RowFilter.Expression = json.RawMessage(randomExpr(rng, str, 0))
			}
		case 3:
			r = token.Transitive(token.ResourceName{Kind: str(), Name: str()})
		}
		want := protojsonOf(t, r)
		got, err := token.EncodeRule(r)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("case %d: ours %s (%v)\nprotojson %s", i, got, err, want)
		}
	}
}

// randomExpr writes a random Expression in the many spellings protojson accepts: operations by
// name or number, nulls, numbers in any form, nested values.
func randomExpr(rng *rand.Rand, str func() string, depth int) string {
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	var val func(d int) string
	val = func(d int) string {
		switch rng.IntN(8) {
		case 0:
			return "null"
		case 1:
			return []string{"true", "false"}[rng.IntN(2)]
		case 2:
			return q(str())
		case 3:
			return []string{"0", "-0", "1", "1.0", "1e3", "1E-7", "0.000001", "123456789012345678901234", "-1.5e-300", "3.14159", "1e21", "9007199254740993"}[rng.IntN(12)]
		case 4:
			if d < 3 {
				return "[" + val(d+1) + "," + val(d+1) + "]"
			}
		case 5:
			if d < 3 {
				return `{"b":` + val(d+1) + `,"a":` + val(d+1) + `,` + q(str()+"k") + `:` + val(d+1) + `}`
			}
		}
		return fmt.Sprint(rng.IntN(100))
	}
	if depth > 3 {
		return `{"ident":` + q(str()) + `}`
	}
	switch rng.IntN(6) {
	case 0:
		return `{"ident":` + q(str()) + `}`
	case 1:
		return `{"val":` + val(0) + `}`
	case 2:
		return `{}`
	case 3:
		return `{"subquery":{"dimension":` + q(str()) + `,"measures":["m",` + q(str()) + `],"having":` + randomExpr(rng, str, depth+1) + `,"where":null}}`
	}
	op := []string{`"OPERATION_EQ"`, `"OPERATION_AND"`, `"OPERATION_UNSPECIFIED"`, `7`, `0`, `13`, `42`, `null`, `"OPERATION_NOT"`}[rng.IntN(9)]
	var exprs []string
	for range rng.IntN(3) {
		exprs = append(exprs, randomExpr(rng, str, depth+1))
	}
	return "{ \"cond\" :\n {\"exprs\":[" + strings.Join(exprs, " , ") + "] ,\"op\":" + op + "}\t}"
}

// TestCanonicalExpressionRefusesWhatProtojsonRefuses: bad filters fail on both sides.
func TestCanonicalExpressionRefusesWhatProtojsonRefuses(t *testing.T) {
	for _, bad := range []string{
		``, `[]`, `"x"`, `{"ident":1}`, `{"ident":"a","val":1}`, `{"unknown":1}`, `{"ident":"a","ident":"b"}`,
		`{"cond":{"op":"OPERATION_NOPE"}}`, `{"cond":{"op":1.5}}`, `{"cond":{"exprs":[null]}}`, `{"cond":{"exprs":{}}}`,
		`{"val":1e400}`, `{"val":{"a":1,"a":2}}`, `{"ident":"a"} x`, `{"ident":"a"`, "{\"ident\":\"\xff\"}",
		`{"subquery":{"measures":[1]}}`, `{"cond":{"op":"OPERATION_EQ","op":"OPERATION_EQ"}}`,
	} {
		x := rillruntime.New("Expression")
		perr := protojson.Unmarshal([]byte(bad), x)
		_, err := token.CanonicalExpression([]byte(bad))
		if perr == nil || err == nil {
			t.Errorf("%q: protojson %v, ours %v; want both to refuse", bad, perr, err)
		}
	}
	deep := strings.Repeat(`{"cond":{"exprs":[`, 200) + `{}` + strings.Repeat(`]}}`, 200)
	if _, err := token.CanonicalExpression([]byte(deep)); err == nil {
		t.Error("an expression nested 200 deep was taken")
	}
}

// FuzzCanonicalExpression: whatever a stored filter holds, CanonicalExpression never panics,
// takes what protojson takes and writes exactly what protojson writes for it.
func FuzzCanonicalExpression(f *testing.F) {
	for _, s := range []string{mvFilter, `{}`, `{"val":null}`, `{"ident":"a\u00e9\ud83d\ude00"}`, `{"cond":{"op":13,"exprs":[{"val":[1,{"b":2,"a":1}]}]}}`,
		`{"subquery":{"dimension":"d","where":{"ident":"x"}}}`, `{"val":1e-7}`, `{"cond":{"op":"OPERATION_LIKE","exprs":null}}`, `[`, `{"val":"\u0000<>&"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		ours, err := token.CanonicalExpression(raw)
		x := rillruntime.New("Expression")
		perr := protojson.Unmarshal(raw, x)
		if perr != nil {
			if err == nil {
				t.Fatalf("protojson refuses %q (%v), we took it as %s", raw, perr, ours)
			}
			return
		}
		if err != nil {
			t.Fatalf("protojson takes %q, we refuse it: %v", raw, err)
		}
		want, err := rillruntime.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ours, want) {
			t.Fatalf("%q:\n ours      %s\n protojson %s", raw, ours, want)
		}
	})
}
