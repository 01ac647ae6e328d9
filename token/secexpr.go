package token

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"unicode/utf8"
)

// A magic token's row filter is stored (Rill: magic_auth_tokens.metrics_view_filter_jsons) as
// the protojson of a rill.runtime.v1.Expression, and Rill's issuer reads it with
// protojson.Unmarshal and writes it again with protojson.Marshal inside the rule
// (admin/server/runtime_jwt.go securityRulesFromMagicAuthToken). CanonicalExpression does both
// steps on the JSON alone, after Rill's proto/rill/runtime/v1/expression.proto:
//
//	Expression { oneof expression { string ident = 1; google.protobuf.Value val = 2;
//	             Condition cond = 3; Subquery subquery = 4; } }
//	Condition  { Operation op = 1; repeated Expression exprs = 2; }
//	Subquery   { string dimension = 1; repeated string measures = 2; Expression where = 3;
//	             Expression having = 4; }  (as Rill's frontend builds it; see internal/rillruntime)
//	Operation  OPERATION_UNSPECIFIED = 0 ... OPERATION_NLIKE = 12, OPERATION_NOT = 13
//
// What protojson refuses is refused (unknown or duplicate fields, two members of the oneof,
// an unknown operation name, a number out of range, invalid UTF-8, trailing data); null is an
// absent field (a null val is google.protobuf.Value's null); an operation given by number is
// written by name; a val is written as google.protobuf.Value is (numbers as float64 in
// encoding/json's format, object keys sorted).

// MaxExpressionDepth bounds the nesting of an expression we read.
const MaxExpressionDepth = 64

var operations = []string{"OPERATION_UNSPECIFIED", "OPERATION_EQ", "OPERATION_NEQ", "OPERATION_LT", "OPERATION_LTE", "OPERATION_GT",
	"OPERATION_GTE", "OPERATION_OR", "OPERATION_AND", "OPERATION_IN", "OPERATION_NIN", "OPERATION_LIKE", "OPERATION_NLIKE", "OPERATION_NOT"}

// CanonicalExpression returns what protojson.Marshal writes for the rill.runtime.v1.Expression
// protojson.Unmarshal reads from raw, or why protojson would refuse raw.
func CanonicalExpression(raw []byte) ([]byte, error) {
	if !utf8.Valid(raw) {
		return nil, fmt.Errorf("expression: %w", errInvalidUTF8)
	}
	if err := checkSurrogates(raw); err != nil {
		return nil, fmt.Errorf("expression: %w", err)
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	p := &exprParser{d: d}
	v, err := p.value(0)
	if err != nil {
		return nil, fmt.Errorf("expression: %w", err)
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("expression: data after the JSON value")
	}
	e := &enc{b: make([]byte, 0, len(raw)), first: true}
	if err := writeExpression(e, v); err != nil {
		return nil, fmt.Errorf("expression: %w", err)
	}
	if e.err != nil {
		return nil, fmt.Errorf("expression: %w", e.err)
	}
	return e.b, nil
}

// jsonValue is a parsed JSON value: nil, bool, json.Number, string, []jsonValue, or *jsonObject.
type jsonValue any

type jsonObject struct {
	keys []string
	vals []jsonValue
}

type exprParser struct{ d *json.Decoder }

func (p *exprParser) value(depth int) (jsonValue, error) {
	if depth > 3*MaxExpressionDepth {
		return nil, errors.New("nested too deep")
	}
	t, err := p.d.Token()
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	switch t := t.(type) {
	case json.Delim:
		switch t {
		case '{':
			o := &jsonObject{}
			seen := map[string]bool{} // not a scan of o.keys: that is quadratic in the keys
			for p.d.More() {
				k, err := p.d.Token()
				if err != nil {
					return nil, fmt.Errorf("invalid JSON: %w", err)
				}
				key := k.(string)
				if seen[key] {
					return nil, fmt.Errorf("duplicate field %q", key)
				}
				seen[key] = true
				v, err := p.value(depth + 1)
				if err != nil {
					return nil, err
				}
				o.keys, o.vals = append(o.keys, key), append(o.vals, v)
			}
			_, err := p.d.Token()
			return o, err
		case '[':
			var a []jsonValue
			for p.d.More() {
				v, err := p.value(depth + 1)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			_, err := p.d.Token()
			if a == nil {
				a = []jsonValue{}
			}
			return a, err
		}
		return nil, fmt.Errorf("invalid JSON: unexpected %v", t)
	default:
		return t, nil
	}
}

// fields walks the members of an object as protojson does for a message: each name must be one
// of names, at most once; a null value is skipped unless keepNull names it.
func fields(v jsonValue, what string, names []string, keepNull string, fn func(name string, v jsonValue) error) error {
	o, ok := v.(*jsonObject)
	if !ok {
		return fmt.Errorf("%s: want an object, got %s", what, kindOf(v))
	}
	for i, k := range o.keys {
		if !slices.Contains(names, k) {
			return fmt.Errorf("%s: unknown field %q", what, k)
		}
		if o.vals[i] == nil && k != keepNull {
			continue
		}
		if err := fn(k, o.vals[i]); err != nil {
			return err
		}
	}
	return nil
}

func kindOf(v jsonValue) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case []jsonValue:
		return "an array"
	}
	return "an object"
}

// expression members, in declaration order.
var exprFields = []string{"ident", "val", "cond", "subquery"}

func writeExpression(e *enc, v jsonValue) error { return writeExpr(e, v, 0) }

func writeExpr(e *enc, v jsonValue, depth int) error {
	if depth > MaxExpressionDepth {
		return errors.New("nested too deep")
	}
	var set string
	var val jsonValue
	err := fields(v, "expression", exprFields, "val", func(name string, v jsonValue) error {
		if set != "" {
			return fmt.Errorf("expression: oneof expression is already set (%s, then %s)", set, name)
		}
		set, val = name, v
		return nil
	})
	if err != nil {
		return err
	}
	e.value()
	e.open()
	switch set {
	case "ident":
		s, ok := val.(string)
		if !ok {
			return fmt.Errorf("expression.ident: want a string, got %s", kindOf(val))
		}
		e.name("ident")
		e.quoted(s)
	case "val":
		e.name("val")
		if err := writeValue(e, val, depth+1); err != nil {
			return err
		}
	case "cond":
		e.name("cond")
		if err := writeCondition(e, val, depth+1); err != nil {
			return err
		}
	case "subquery":
		e.name("subquery")
		if err := writeSubquery(e, val, depth+1); err != nil {
			return err
		}
	}
	e.close()
	return nil
}

func writeCondition(e *enc, v jsonValue, depth int) error {
	var op int64
	var exprs []jsonValue
	err := fields(v, "condition", []string{"op", "exprs"}, "", func(name string, v jsonValue) error {
		if name == "op" {
			n, err := enumNumber(v)
			op = n
			return err
		}
		a, ok := v.([]jsonValue)
		if !ok {
			return fmt.Errorf("condition.exprs: want an array, got %s", kindOf(v))
		}
		exprs = a
		return nil
	})
	if err != nil {
		return err
	}
	e.value()
	e.open()
	if op != 0 {
		e.name("op")
		if op > 0 && op < int64(len(operations)) {
			e.quoted(operations[op])
		} else {
			e.value()
			e.b = strconv.AppendInt(e.b, op, 10)
			e.first = false
		}
	}
	if len(exprs) > 0 {
		e.name("exprs")
		e.value()
		e.b = append(e.b, '[')
		e.first = true
		for _, x := range exprs {
			if x == nil {
				return errors.New("condition.exprs: null in the list")
			}
			if err := writeExpr(e, x, depth+1); err != nil {
				return err
			}
		}
		e.b = append(e.b, ']')
		e.first = false
	}
	e.close()
	return nil
}

func enumNumber(v jsonValue) (int64, error) {
	switch v := v.(type) {
	case string:
		if i := slices.Index(operations, v); i >= 0 {
			return int64(i), nil
		}
		return 0, fmt.Errorf("condition.op: unknown operation %q", v)
	case json.Number:
		n, ok := protoInt32(string(v))
		if !ok {
			return 0, fmt.Errorf("condition.op: invalid enum number %s", v)
		}
		return n, nil
	}
	return 0, fmt.Errorf("condition.op: want a name or number, got %s", kindOf(v))
}

func writeSubquery(e *enc, v jsonValue, depth int) error {
	var dim string
	var measures []string
	var where, having jsonValue
	err := fields(v, "subquery", []string{"dimension", "measures", "where", "having"}, "", func(name string, v jsonValue) error {
		switch name {
		case "dimension":
			s, ok := v.(string)
			if !ok {
				return fmt.Errorf("subquery.dimension: want a string, got %s", kindOf(v))
			}
			dim = s
		case "measures":
			a, ok := v.([]jsonValue)
			if !ok {
				return fmt.Errorf("subquery.measures: want an array, got %s", kindOf(v))
			}
			for _, x := range a {
				s, ok := x.(string)
				if !ok {
					return fmt.Errorf("subquery.measures: want strings, got %s", kindOf(x))
				}
				measures = append(measures, s)
			}
		case "where":
			where = v
		case "having":
			having = v
		}
		return nil
	})
	if err != nil {
		return err
	}
	e.value()
	e.open()
	e.str("dimension", dim)
	e.strings("measures", measures)
	for _, x := range []struct {
		n string
		v jsonValue
	}{{"where", where}, {"having", having}} {
		if x.v != nil {
			e.name(x.n)
			if err := writeExpr(e, x.v, depth+1); err != nil {
				return err
			}
		}
	}
	e.close()
	return nil
}

// writeValue writes v as protojson writes a google.protobuf.Value.
func writeValue(e *enc, v jsonValue, depth int) error {
	if depth > 3*MaxExpressionDepth {
		return errors.New("nested too deep")
	}
	switch v := v.(type) {
	case nil:
		e.raw([]byte("null"))
	case bool:
		e.raw(strconv.AppendBool(nil, v))
	case string:
		e.quoted(v)
	case json.Number:
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			return fmt.Errorf("invalid number %s", v)
		}
		e.raw(appendProtoFloat(nil, f))
	case []jsonValue:
		e.value()
		e.b = append(e.b, '[')
		e.first = true
		for _, x := range v {
			if err := writeValue(e, x, depth+1); err != nil {
				return err
			}
		}
		e.b = append(e.b, ']')
		e.first = false
	case *jsonObject:
		idx := make([]int, len(v.keys))
		for i := range idx {
			idx[i] = i
		}
		slices.SortFunc(idx, func(a, b int) int {
			switch {
			case v.keys[a] < v.keys[b]:
				return -1
			case v.keys[a] > v.keys[b]:
				return 1
			}
			return 0
		})
		e.value()
		e.open()
		for _, i := range idx {
			e.name("")
			e.b = e.b[:len(e.b)-3] // name("") wrote `"":`; write the key escaped instead
			var err error
			e.b, err = appendProtoString(e.b, v.keys[i])
			if err != nil {
				return err
			}
			e.b = append(e.b, ':')
			if err := writeValue(e, v.vals[i], depth+1); err != nil {
				return err
			}
		}
		e.close()
	}
	return nil
}
