package rillruntime

import (
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	_ "google.golang.org/protobuf/types/known/timestamppb" // registers google/protobuf/timestamp.proto
)

// The messages of Rill's admin API that its gateway answers and reads on the paths rill-authd
// shares with it (rilldata/rill proto/rill/admin/v1/api.proto at 04b7386: the public URL,
// iframe, credentials, service and token RPCs whose google.api.http paths are ours too), field
// names, numbers and types as there. protojson reads and writes JSON from descriptors alone,
// so these let the tests decode our answers exactly as a client generated from api.proto does
// (an unknown or mistyped field name is an error) and re-encode them as Rill's gateway does
// (grpc-gateway's default marshaler: lowerCamelCase, every field emitted), comparing the two.
//
// One field is not in that api.proto: metrics_view_filters, a map of metrics view name to
// rill.runtime.v1.Expression on MagicAuthToken and IssueMagicAuthTokenRequest, which later
// Rill has in place of the single filter (its web app's public URL table reads
// metricsViewFilters as {[metrics view]: V1Expression}; its magic_auth_tokens table holds
// metrics_view_filter_jsons). Its field number here (18, 12) is ours: JSON does not carry it.

const (
	tInt64  = descriptorpb.FieldDescriptorProto_TYPE_INT64
	tUint32 = descriptorpb.FieldDescriptorProto_TYPE_UINT32
)

const (
	ts   = ".google.protobuf.Timestamp"
	st   = ".google.protobuf.Struct"
	expr = ".rill.runtime.v1.Expression"
)

// mapEntry is the nested entry message protoc makes for a map<string, V> field.
func mapEntry(name string, value field) *descriptorpb.DescriptorProto {
	value.name, value.number = "value", 2
	d := message(name, nil, field{name: "key", number: 1, typ: tString}, value)
	d.Options = &descriptorpb.MessageOptions{MapEntry: proto.Bool(true)}
	return d
}

// withMap adds a map<string, value> field to d (its entry message nested, as protoc names it).
func withMap(d *descriptorpb.DescriptorProto, name, entry string, number int32, value field) *descriptorpb.DescriptorProto {
	d.NestedType = append(d.NestedType, mapEntry(entry, value))
	d.Field = append(d.Field, &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(number),
		Type: tMsg.Enum(), Label: descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum(),
		TypeName: proto.String("." + "rill.admin.v1." + d.GetName() + "." + entry)})
	return d
}

func str(name string, n int32) field { return field{name: name, number: n, typ: tString} }
func msg(name string, n int32, typ string) field {
	return field{name: name, number: n, typ: tMsg, msg: typ}
}

var adminFiles = func() *protoregistry.Files {
	rn := ".rill.admin.v1.ResourceName"
	mat := ".rill.admin.v1.MagicAuthToken"
	forOneof := func(userID, email, attrs int32) []field {
		return []field{{name: "user_id", number: userID, typ: tString, oneof: oneof(0)},
			{name: "user_email", number: email, typ: tString, oneof: oneof(0)},
			{name: "attributes", number: attrs, typ: tMsg, msg: st, oneof: oneof(0)}}
	}
	runtimeAccess := []field{str("runtime_host", 1), str("instance_id", 2), str("access_token", 3), {name: "ttl_seconds", number: 4, typ: tUint32}}
	memberBase := []field{str("id", 1), str("name", 2), str("org_id", 3), str("org_name", 4)}
	fdp := &descriptorpb.FileDescriptorProto{
		Name: proto.String("rill/admin/v1/api.proto"), Package: proto.String("rill.admin.v1"), Syntax: proto.String("proto3"),
		Dependency: []string{"google/protobuf/timestamp.proto", "google/protobuf/struct.proto", "rill/runtime/v1/security.proto"},
		MessageType: []*descriptorpb.DescriptorProto{
			message("ResourceName", nil, str("type", 1), str("name", 2)),
			withMap(message("MagicAuthToken", nil, str("id", 1), str("project_id", 2), str("url", 13), str("token", 14),
				msg("created_on", 3, ts), msg("expires_on", 4, ts), msg("used_on", 5, ts),
				str("created_by_user_id", 6), str("created_by_user_email", 7), msg("attributes", 8, st),
				field{name: "resources", number: 17, typ: tMsg, msg: rn, rep: true},
				str("resource_type", 15), str("resource_name", 9), msg("filter", 10, expr),
				field{name: "fields", number: 11, typ: tString, rep: true}, str("state", 12), str("display_name", 16)),
				"metrics_view_filters", "MetricsViewFiltersEntry", 18, field{typ: tMsg, msg: expr}),
			withMap(message("IssueMagicAuthTokenRequest", nil, str("org", 1), str("project", 2), field{name: "ttl_minutes", number: 3, typ: tInt64},
				str("resource_type", 8), str("resource_name", 9), msg("filter", 5, expr),
				field{name: "fields", number: 6, typ: tString, rep: true}, str("state", 7), str("display_name", 10),
				field{name: "resources", number: 11, typ: tMsg, msg: rn, rep: true}),
				"metrics_view_filters", "MetricsViewFiltersEntry", 12, field{typ: tMsg, msg: expr}),
			message("IssueMagicAuthTokenResponse", nil, str("token", 1), str("url", 2)),
			message("ListMagicAuthTokensRequest", nil, str("org", 1), str("project", 2), field{name: "page_size", number: 3, typ: tUint32}, str("page_token", 4)),
			message("ListMagicAuthTokensResponse", nil, field{name: "tokens", number: 1, typ: tMsg, msg: mat, rep: true}, str("next_page_token", 2)),
			message("GetCurrentMagicAuthTokenResponse", nil, msg("token", 1, mat)),
			message("RevokeMagicAuthTokenResponse", nil),
			message("GetDeploymentCredentialsRequest", []string{"for"}, append([]field{str("org", 1), str("project", 2), str("branch", 3),
				{name: "ttl_seconds", number: 7, typ: tUint32}}, forOneof(4, 6, 5)...)...),
			message("GetDeploymentCredentialsResponse", nil, runtimeAccess...),
			withMap(message("GetIFrameRequest", []string{"for"}, append(append([]field{str("org", 1), str("project", 2), str("branch", 3),
				{name: "ttl_seconds", number: 6, typ: tUint32}}, forOneof(9, 10, 11)...),
				str("type", 14), str("kind", 4), str("resource", 5), str("theme", 12), field{name: "navigation", number: 13, typ: tBool},
				str("state", 7))...),
				"query", "QueryEntry", 8, field{typ: tString}),
			message("GetIFrameResponse", nil, str("iframe_src", 1), str("runtime_host", 2), str("instance_id", 3), str("access_token", 4),
				field{name: "ttl_seconds", number: 5, typ: tUint32}),
			message("Service", nil, append(append([]field{}, memberBase...), msg("attributes", 8, st), msg("created_on", 5, ts), msg("updated_on", 6, ts))...),
			message("OrganizationMemberService", nil, append(append([]field{}, memberBase...), str("role_name", 5),
				field{name: "has_project_roles", number: 7, typ: tBool}, msg("attributes", 8, st), msg("created_on", 9, ts), msg("updated_on", 10, ts))...),
			message("ProjectMemberService", nil, append(append([]field{}, memberBase...), str("org_role_name", 5), str("project_id", 6),
				str("project_name", 7), str("project_role_name", 8), msg("attributes", 9, st), msg("created_on", 10, ts), msg("updated_on", 11, ts))...),
			message("ListServicesResponse", nil, field{name: "services", number: 1, typ: tMsg, msg: ".rill.admin.v1.OrganizationMemberService", rep: true}),
			message("CreateServiceRequest", nil, str("name", 1), str("org", 2), str("org_role_name", 3), str("project", 4),
				str("project_role_name", 5), msg("attributes", 6, st)),
			message("CreateServiceResponse", nil, msg("service", 1, ".rill.admin.v1.Service")),
			message("GetServiceResponse", nil, msg("service", 1, ".rill.admin.v1.OrganizationMemberService"),
				field{name: "project_memberships", number: 2, typ: tMsg, msg: ".rill.admin.v1.ProjectMemberService", rep: true}),
			// new_name is `optional string` in api.proto; its JSON is a string either way.
			message("UpdateServiceRequest", nil, str("name", 1), str("org", 2), str("new_name", 3), msg("attributes", 4, st)),
			message("UpdateServiceResponse", nil, msg("service", 1, ".rill.admin.v1.Service")),
			message("DeleteServiceResponse", nil, msg("service", 1, ".rill.admin.v1.Service")),
			message("ServiceToken", nil, str("id", 1), str("prefix", 4), msg("created_on", 2, ts), msg("expires_on", 3, ts)),
			message("ListServiceAuthTokensResponse", nil, field{name: "tokens", number: 1, typ: tMsg, msg: ".rill.admin.v1.ServiceToken", rep: true}),
			message("IssueServiceAuthTokenResponse", nil, str("token", 1)),
			message("RevokeCurrentAuthTokenResponse", nil),
		},
	}
	fd, err := protodesc.NewFile(fdp, resolvers{files, protoregistry.GlobalFiles})
	if err != nil {
		panic(fmt.Sprintf("rill admin descriptors: %v", err))
	}
	var fs protoregistry.Files
	if err := fs.RegisterFile(fd); err != nil {
		panic(err)
	}
	return &fs
}()

// resolvers looks a file or descriptor up in each registry in turn.
type resolvers []*protoregistry.Files

func (rs resolvers) FindFileByPath(p string) (protoreflect.FileDescriptor, error) {
	for _, r := range rs {
		if fd, err := r.FindFileByPath(p); err == nil {
			return fd, nil
		}
	}
	return nil, protoregistry.NotFound
}

func (rs resolvers) FindDescriptorByName(n protoreflect.FullName) (protoreflect.Descriptor, error) {
	for _, r := range rs {
		if d, err := r.FindDescriptorByName(n); err == nil {
			return d, nil
		}
	}
	return nil, protoregistry.NotFound
}

// AdminDescriptor returns the descriptor of rill.admin.v1.<name>.
func AdminDescriptor(name string) protoreflect.MessageDescriptor {
	d, err := adminFiles.FindDescriptorByName(protoreflect.FullName("rill.admin.v1." + name))
	if err != nil {
		panic(err)
	}
	return d.(protoreflect.MessageDescriptor)
}

// NewAdmin returns an empty rill.admin.v1.<name>.
func NewAdmin(name string) *dynamicpb.Message { return dynamicpb.NewMessage(AdminDescriptor(name)) }
