// Package rillruntime holds what the runtime-side tests need of Rill's protos: the message types
// of the runtime JWT's sec claim, rill.runtime.v1.SecurityRule and what it refers to, built as
// protobuf descriptors from Rill's own definitions (rilldata/rill proto/rill/runtime/v1/
// resources.proto: ResourceName, SecurityRule, SecurityRuleAccess, SecurityRuleFieldAccess,
// SecurityRuleRowFilter, SecurityRuleTransitiveAccess; expression.proto: Expression, Condition,
// Operation up to OPERATION_NOT = 13), field names, numbers and declaration order as there. The
// Expression's subquery = 4 (Subquery: dimension, measures, where, having) is not in the versions
// of expression.proto read for this; it is here as Rill's web frontend builds subquery filters,
// so that a stored filter holding one reads the same on both sides. With them protojson reads and writes the rules exactly as the runtime's and the admin
// service's generated types do (protojson works from descriptors alone), so the tests compare our
// encoding with protojson's own and decode sec as the runtime does (runtime/server/auth/claims.go).
package rillruntime

import (
	"bytes"
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	_ "google.golang.org/protobuf/types/known/structpb" // registers google/protobuf/struct.proto
)

// field is one field of a message, in declaration order.
type field struct {
	name   string
	number int32
	typ    descriptorpb.FieldDescriptorProto_Type
	msg    string // type name of a message or enum field
	rep    bool
	oneof  *int32
}

func oneof(i int32) *int32 { return &i }

const (
	tString = descriptorpb.FieldDescriptorProto_TYPE_STRING
	tBool   = descriptorpb.FieldDescriptorProto_TYPE_BOOL
	tMsg    = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE
	tEnum   = descriptorpb.FieldDescriptorProto_TYPE_ENUM
)

func message(name string, oneofs []string, fields ...field) *descriptorpb.DescriptorProto {
	d := &descriptorpb.DescriptorProto{Name: proto.String(name)}
	for _, o := range oneofs {
		d.OneofDecl = append(d.OneofDecl, &descriptorpb.OneofDescriptorProto{Name: proto.String(o)})
	}
	for _, f := range fields {
		label := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL
		if f.rep {
			label = descriptorpb.FieldDescriptorProto_LABEL_REPEATED
		}
		fd := &descriptorpb.FieldDescriptorProto{Name: proto.String(f.name), Number: proto.Int32(f.number), Type: f.typ.Enum(),
			Label: label.Enum(), OneofIndex: f.oneof}
		if f.msg != "" {
			fd.TypeName = proto.String(f.msg)
		}
		d.Field = append(d.Field, fd)
	}
	return d
}

var files = func() *protoregistry.Files {
	rn := ".rill.runtime.v1.ResourceName"
	cond := func(kinds, resources int32) []field {
		return []field{{name: "condition_expression", number: 1, typ: tString},
			{name: "condition_kinds", number: kinds, typ: tString, rep: true},
			{name: "condition_resources", number: resources, typ: tMsg, msg: rn, rep: true}}
	}
	ops := []string{"OPERATION_UNSPECIFIED", "OPERATION_EQ", "OPERATION_NEQ", "OPERATION_LT", "OPERATION_LTE", "OPERATION_GT",
		"OPERATION_GTE", "OPERATION_OR", "OPERATION_AND", "OPERATION_IN", "OPERATION_NIN", "OPERATION_LIKE", "OPERATION_NLIKE", "OPERATION_NOT"}
	enum := &descriptorpb.EnumDescriptorProto{Name: proto.String("Operation")}
	for i, n := range ops {
		enum.Value = append(enum.Value, &descriptorpb.EnumValueDescriptorProto{Name: proto.String(n), Number: proto.Int32(int32(i))})
	}
	fdp := &descriptorpb.FileDescriptorProto{
		Name: proto.String("rill/runtime/v1/security.proto"), Package: proto.String("rill.runtime.v1"), Syntax: proto.String("proto3"),
		Dependency: []string{"google/protobuf/struct.proto"},
		EnumType:   []*descriptorpb.EnumDescriptorProto{enum},
		MessageType: []*descriptorpb.DescriptorProto{
			message("ResourceName", nil, field{name: "kind", number: 1, typ: tString}, field{name: "name", number: 2, typ: tString}),
			message("SecurityRule", []string{"rule"},
				field{name: "access", number: 1, typ: tMsg, msg: ".rill.runtime.v1.SecurityRuleAccess", oneof: oneof(0)},
				field{name: "field_access", number: 2, typ: tMsg, msg: ".rill.runtime.v1.SecurityRuleFieldAccess", oneof: oneof(0)},
				field{name: "row_filter", number: 3, typ: tMsg, msg: ".rill.runtime.v1.SecurityRuleRowFilter", oneof: oneof(0)},
				field{name: "transitive_access", number: 4, typ: tMsg, msg: ".rill.runtime.v1.SecurityRuleTransitiveAccess", oneof: oneof(0)}),
			message("SecurityRuleAccess", nil, append(cond(3, 4),
				field{name: "allow", number: 2, typ: tBool}, field{name: "exclusive", number: 5, typ: tBool})...),
			message("SecurityRuleFieldAccess", nil, append(cond(5, 6),
				field{name: "allow", number: 2, typ: tBool}, field{name: "exclusive", number: 7, typ: tBool},
				field{name: "fields", number: 3, typ: tString, rep: true}, field{name: "all_fields", number: 4, typ: tBool})...),
			message("SecurityRuleRowFilter", nil, append(cond(4, 5),
				field{name: "sql", number: 2, typ: tString}, field{name: "expression", number: 3, typ: tMsg, msg: ".rill.runtime.v1.Expression"})...),
			message("SecurityRuleTransitiveAccess", nil, field{name: "resource", number: 1, typ: tMsg, msg: rn}),
			message("Expression", []string{"expression"},
				field{name: "ident", number: 1, typ: tString, oneof: oneof(0)},
				field{name: "val", number: 2, typ: tMsg, msg: ".google.protobuf.Value", oneof: oneof(0)},
				field{name: "cond", number: 3, typ: tMsg, msg: ".rill.runtime.v1.Condition", oneof: oneof(0)},
				field{name: "subquery", number: 4, typ: tMsg, msg: ".rill.runtime.v1.Subquery", oneof: oneof(0)}),
			message("Condition", nil, field{name: "op", number: 1, typ: tEnum, msg: ".rill.runtime.v1.Operation"},
				field{name: "exprs", number: 2, typ: tMsg, msg: ".rill.runtime.v1.Expression", rep: true}),
			message("Subquery", nil, field{name: "dimension", number: 1, typ: tString},
				field{name: "measures", number: 2, typ: tString, rep: true},
				field{name: "where", number: 3, typ: tMsg, msg: ".rill.runtime.v1.Expression"},
				field{name: "having", number: 4, typ: tMsg, msg: ".rill.runtime.v1.Expression"}),
		},
	}
	fd, err := protodesc.NewFile(fdp, protoregistry.GlobalFiles)
	if err != nil {
		panic(fmt.Sprintf("rill runtime descriptors: %v", err))
	}
	var fs protoregistry.Files
	if err := fs.RegisterFile(fd); err != nil {
		panic(err)
	}
	return &fs
}()

// Descriptor returns the descriptor of rill.runtime.v1.<name>.
func Descriptor(name string) protoreflect.MessageDescriptor {
	d, err := files.FindDescriptorByName(protoreflect.FullName("rill.runtime.v1." + name))
	if err != nil {
		panic(err)
	}
	return d.(protoreflect.MessageDescriptor)
}

// New returns an empty rill.runtime.v1.<name>.
func New(name string) *dynamicpb.Message { return dynamicpb.NewMessage(Descriptor(name)) }

// DecodeRule reads one element of sec as the runtime does: protojson.Unmarshal into a
// rill.runtime.v1.SecurityRule (the runtime panics on an error; this returns it).
func DecodeRule(data []byte) (*dynamicpb.Message, error) {
	m := New("SecurityRule")
	if err := protojson.Unmarshal(data, m); err != nil {
		return nil, fmt.Errorf("sec rule %s: %w", data, err)
	}
	return m, nil
}

// DecodeSec decodes every element of a sec claim.
func DecodeSec(sec []json.RawMessage) ([]*dynamicpb.Message, error) {
	out := make([]*dynamicpb.Message, len(sec))
	for i, raw := range sec {
		m, err := DecodeRule(raw)
		if err != nil {
			return nil, err
		}
		out[i] = m
	}
	return out, nil
}

// Marshal is what Rill's issuer writes for m (protojson.Marshal, as runtime/server/auth/jwt.go
// NewToken does), with the insignificant whitespace protojson adds at random (internal/detrand:
// a space after some commas, the same for every call of one binary) removed, as encoding/json
// removes it when it puts the rule in the JWT (a json.RawMessage is compacted).
func Marshal(m proto.Message) ([]byte, error) {
	b, err := protojson.Marshal(m)
	if err != nil {
		return nil, err
	}
	return Compact(b)
}

// Compact removes insignificant whitespace, as encoding/json does to a json.RawMessage.
func Compact(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
