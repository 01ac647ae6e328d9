package token

import (
	"encoding/json"
	"fmt"
	"math/bits"
	"strconv"
	"unicode/utf8"
)

// The sec claim of a runtime JWT is a list of rill.runtime.v1.SecurityRule messages, each the
// protojson encoding Rill's issuer writes (rilldata/rill runtime/server/auth/jwt.go NewToken:
// protojson.Marshal of each rule, carried as a json.RawMessage; claims.go decodes each with
// protojson.Unmarshal). We cannot import Rill's generated types, so the types below are the
// messages of proto/rill/runtime/v1/resources.proto and EncodeRule writes what protojson writes
// for them: fields in declaration order under their lowerCamelCase JSON names, zero values
// (empty strings and lists, false, unset messages) left out, enums by name, strings escaped as
// protojson escapes them (only '"', '\\' and control characters; no HTML escaping), and none of
// the insignificant spaces protojson adds at random (internal/detrand), which encoding/json
// removes anyway when it writes the claim. internal/rillruntime proves it byte for byte against
// protojson itself, run on descriptors built from Rill's definitions.

// Resource kinds as the runtime names them (rilldata/rill runtime/resource_kinds.go).
const (
	KindExplore     = "rill.runtime.v1.Explore"
	KindCanvas      = "rill.runtime.v1.Canvas"
	KindMetricsView = "rill.runtime.v1.MetricsView"
	KindTheme       = "rill.runtime.v1.Theme"
)

// ResourceName is rill.runtime.v1.ResourceName (kind = 1, name = 2). In Rill's admin database
// (database.ResourceName, the resources JSONB of 0089.sql) the kind is stored as "type".
type ResourceName struct {
	Kind string `json:"type"`
	Name string `json:"name"`
}

// SecurityRule is rill.runtime.v1.SecurityRule: exactly one of its fields is set (the oneof
// rule: access = 1, field_access = 2, row_filter = 3, transitive_access = 4).
type SecurityRule struct {
	Access           *RuleAccess
	FieldAccess      *RuleFieldAccess
	RowFilter        *RuleRowFilter
	TransitiveAccess *ResourceName
}

// RuleCondition is the part every rule kind but transitive access shares (condition_expression,
// condition_kinds, condition_resources).
type RuleCondition struct {
	Expression string
	Kinds      []string
	Resources  []ResourceName
}

// RuleAccess is rill.runtime.v1.SecurityRuleAccess.
type RuleAccess struct {
	RuleCondition
	Allow, Exclusive bool
}

// RuleFieldAccess is rill.runtime.v1.SecurityRuleFieldAccess.
type RuleFieldAccess struct {
	RuleCondition
	Allow, Exclusive bool
	Fields           []string
	AllFields        bool
}

// RuleRowFilter is rill.runtime.v1.SecurityRuleRowFilter. Expression, when set, is a
// rill.runtime.v1.Expression in protojson (see CanonicalExpression): it is written as
// CanonicalExpression writes it.
type RuleRowFilter struct {
	RuleCondition
	SQL        string
	Expression json.RawMessage
}

// DenyAll is the rule Rill signs for a principal restricted to no resources: an access rule
// with allow false, written {"access":{}}.
func DenyAll() SecurityRule { return SecurityRule{Access: &RuleAccess{}} }

// Transitive is the rule giving access to one resource and what it needs.
func Transitive(r ResourceName) SecurityRule { return SecurityRule{TransitiveAccess: &r} }

// EncodeSec encodes rules as the elements of a sec claim; no rules is no claim (nil).
func EncodeSec(rules []SecurityRule) ([]json.RawMessage, error) {
	if len(rules) == 0 {
		return nil, nil
	}
	out := make([]json.RawMessage, len(rules))
	for i, r := range rules {
		b, err := EncodeRule(r)
		if err != nil {
			return nil, fmt.Errorf("security rule %d: %w", i, err)
		}
		out[i] = b
	}
	return out, nil
}

// EncodeRule writes r as protojson.Marshal writes the same rill.runtime.v1.SecurityRule.
func EncodeRule(r SecurityRule) ([]byte, error) {
	set := 0
	for _, p := range []bool{r.Access != nil, r.FieldAccess != nil, r.RowFilter != nil, r.TransitiveAccess != nil} {
		if p {
			set++
		}
	}
	if set > 1 {
		return nil, fmt.Errorf("a security rule holds one of access, field access, row filter, transitive access; this one %d", set)
	}
	e := &enc{b: make([]byte, 0, 96)}
	e.open()
	switch {
	case r.Access != nil:
		e.name("access")
		e.open()
		e.cond(r.Access.RuleCondition)
		e.boolean("allow", r.Access.Allow)
		e.boolean("exclusive", r.Access.Exclusive)
		e.close()
	case r.FieldAccess != nil:
		f := r.FieldAccess
		e.name("fieldAccess")
		e.open()
		e.cond(f.RuleCondition)
		e.boolean("allow", f.Allow)
		e.boolean("exclusive", f.Exclusive)
		e.strings("fields", f.Fields)
		e.boolean("allFields", f.AllFields)
		e.close()
	case r.RowFilter != nil:
		f := r.RowFilter
		e.name("rowFilter")
		e.open()
		e.cond(f.RuleCondition)
		e.str("sql", f.SQL)
		if len(f.Expression) > 0 {
			x, err := CanonicalExpression(f.Expression)
			if err != nil {
				return nil, err
			}
			e.name("expression")
			e.raw(x)
		}
		e.close()
	case r.TransitiveAccess != nil:
		e.name("transitiveAccess")
		e.open()
		e.name("resource")
		e.resource(*r.TransitiveAccess)
		e.close()
	}
	e.close()
	if e.err != nil {
		return nil, e.err
	}
	return e.b, nil
}

// enc appends compact protojson. Commas are put in by open/name/value as protojson's encoder
// does (internal/encoding/json: prepareNext).
type enc struct {
	b     []byte
	first bool // nothing written yet in the current object or array
	err   error
}

func (e *enc) sep() {
	if !e.first {
		e.b = append(e.b, ',')
	}
	e.first = false
}

func (e *enc) open()  { e.b = append(e.b, '{'); e.first = true }
func (e *enc) close() { e.b = append(e.b, '}'); e.first = false }

// name writes a field name; the value written next follows it with no comma.
func (e *enc) name(n string) {
	e.sep()
	e.b = append(e.b, '"')
	e.b = append(e.b, n...)
	e.b = append(e.b, '"', ':')
	e.first = true
}

func (e *enc) value() { e.sep() }

func (e *enc) raw(b []byte) { e.value(); e.b = append(e.b, b...); e.first = false }

func (e *enc) quoted(s string) {
	e.value()
	var err error
	e.b, err = appendProtoString(e.b, s)
	if err != nil && e.err == nil {
		e.err = err
	}
	e.first = false
}

func (e *enc) str(n, v string) {
	if v != "" {
		e.name(n)
		e.quoted(v)
	}
}

func (e *enc) boolean(n string, v bool) {
	if v {
		e.name(n)
		e.value()
		e.b = append(e.b, "true"...)
		e.first = false
	}
}

func (e *enc) strings(n string, vs []string) {
	if len(vs) == 0 {
		return
	}
	e.name(n)
	e.value()
	e.b = append(e.b, '[')
	e.first = true
	for _, v := range vs {
		e.quoted(v)
	}
	e.b = append(e.b, ']')
	e.first = false
}

func (e *enc) resource(r ResourceName) {
	e.value()
	e.open()
	e.str("kind", r.Kind)
	e.str("name", r.Name)
	e.close()
}

func (e *enc) cond(c RuleCondition) {
	e.str("conditionExpression", c.Expression)
	e.strings("conditionKinds", c.Kinds)
	if len(c.Resources) > 0 {
		e.name("conditionResources")
		e.value()
		e.b = append(e.b, '[')
		e.first = true
		for _, r := range c.Resources {
			e.resource(r)
		}
		e.b = append(e.b, ']')
		e.first = false
	}
}

// errInvalidUTF8 is protojson's refusal of a string that is not UTF-8.
var errInvalidUTF8 = fmt.Errorf("string field holds invalid UTF-8")

// appendProtoString quotes s as protojson does (google.golang.org/protobuf internal/encoding/
// json appendString): '"' and '\\' escaped, \b \f \n \r \t by letter, other control characters
// as \u00xx (lower-case hex), everything else (HTML characters, U+2028, DEL) as it is; invalid
// UTF-8 is an error.
func appendProtoString(out []byte, s string) ([]byte, error) {
	out = append(out, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				return out, errInvalidUTF8
			}
			out = append(out, s[i:i+n]...)
			i += n
			continue
		}
		switch {
		case c == '"' || c == '\\':
			out = append(out, '\\', c)
		case c == '\b':
			out = append(out, '\\', 'b')
		case c == '\f':
			out = append(out, '\\', 'f')
		case c == '\n':
			out = append(out, '\\', 'n')
		case c == '\r':
			out = append(out, '\\', 'r')
		case c == '\t':
			out = append(out, '\\', 't')
		case c < ' ':
			out = append(out, '\\', 'u')
			out = append(out, "0000"[1+(bits.Len32(uint32(c))-1)/4:]...)
			out = strconv.AppendUint(out, uint64(c), 16)
		default:
			out = append(out, c)
		}
		i++
	}
	return append(out, '"'), nil
}
