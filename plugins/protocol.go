// Package plugins is the boundary to attribute-source plugins: separate processes, run with
// hashicorp/go-plugin over gRPC, that add attributes (department, region, customer_id…) to a
// principal at check time. A plugin author imports this package and calls Serve; the daemon
// runs plugins through Host.
package plugins

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

// Handshake is the versioned handshake both sides must agree on; a binary that is not a
// rill-authd plugin (or speaks another version) is refused before any call.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "RILL_AUTHD_PLUGIN",
	MagicCookieValue: "attribute-source",
}

// pluginName is the one plugin a plugin process serves.
const pluginName = "attributes"

// Principal is who a check is about, as a plugin sees it.
type Principal struct {
	Kind        string         `json:"kind"` // user, service or ephemeral
	ID          string         `json:"id"`
	Subject     string         `json:"subject"` // email or service name
	Email       string         `json:"email,omitempty"`
	Org         string         `json:"org,omitempty"`
	Project     string         `json:"project,omitempty"`
	OrgRole     string         `json:"org_role,omitempty"`
	ProjectRole string         `json:"project_role,omitempty"`
	Groups      []string       `json:"groups,omitempty"`
	Attributes  map[string]any `json:"attributes,omitempty"` // what the principal has already
}

// Source is what a plugin implements: the attributes to add for a principal.
type Source interface {
	Attributes(ctx context.Context, p Principal) (map[string]any, error)
}

// Serve runs src as a plugin process. Call it from main; it returns when the daemon stops the
// plugin.
func Serve(src Source) {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         plugin.PluginSet{pluginName: &grpcPlugin{impl: src}},
		GRPCServer:      plugin.DefaultGRPCServer,
	})
}

// grpcPlugin carries Source over gRPC. The messages are google.protobuf.Struct, so the protocol
// needs no generated code of its own.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	impl Source
}

const methodAttributes = "/rillauthd.plugins.v1.AttributeSource/Attributes"

var serviceDesc = grpc.ServiceDesc{
	ServiceName: "rillauthd.plugins.v1.AttributeSource",
	HandlerType: (*Source)(nil),
	Methods:     []grpc.MethodDesc{{MethodName: "Attributes", Handler: attributesHandler}},
	Metadata:    "rill-authd plugins v1",
}

func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	s.RegisterService(&serviceDesc, p.impl)
	return nil
}

func (p *grpcPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, cc *grpc.ClientConn) (any, error) {
	return &grpcClient{cc: cc}, nil
}

func attributesHandler(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	in := new(structpb.Struct)
	if err := dec(in); err != nil {
		return nil, err
	}
	var p Principal
	if err := convert(in.AsMap(), &p); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "principal: %v", err)
	}
	attrs, err := srv.(Source).Attributes(ctx, p)
	if err != nil {
		return nil, status.Error(codes.Unknown, err.Error())
	}
	out, err := structpb.NewStruct(attrs)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "attributes are not JSON values: %v", err)
	}
	return out, nil
}

type grpcClient struct{ cc *grpc.ClientConn }

func (c *grpcClient) Attributes(ctx context.Context, p Principal) (map[string]any, error) {
	var m map[string]any
	if err := convert(p, &m); err != nil {
		return nil, err
	}
	in, err := structpb.NewStruct(m)
	if err != nil {
		return nil, fmt.Errorf("encode principal: %w", err)
	}
	out := new(structpb.Struct)
	if err := c.cc.Invoke(ctx, methodAttributes, in, out); err != nil {
		return nil, err
	}
	return out.AsMap(), nil
}

// convert moves a value between shapes through JSON.
func convert(from, to any) error {
	b, err := json.Marshal(from)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, to)
}
