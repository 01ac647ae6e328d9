package extauthz

import (
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/rill-authd/rill-authd/resolver"
)

// MetadataNamespace is the dynamic metadata namespace of the facts of an allowed check, for
// Envoy access logs (%DYNAMIC_METADATA(envoy.filters.http.ext_authz:subject)%).
const MetadataNamespace = "envoy.filters.http.ext_authz"

// grpcResponse is an outcome rendered as Envoy wants it. resp is shared by every check that needs
// no header removed, and no one mutates it; enc is resp already encoded, which the check
// server's codec sends as is.
type grpcResponse struct {
	resp    *authv3.CheckResponse
	enc     *encodedResponse
	headers []*corev3.HeaderValueOption
}

// Register adds the Authorization service to a gRPC server. Build that server with
// GRPCServerOptions for the fast codec; without it checks are still answered, only slower.
func (s *Server) Register(g *grpc.Server) { g.RegisterService(&serviceDesc, grpcServer{s}) }

// GRPCServerOptions are the options of a gRPC server that serves checks: the codec that sends
// memoized responses pre-encoded and decodes Envoy's messages without reflection.
func GRPCServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.ForceServerCodecV2(Codec{})}
}

// grpcServer keeps the generated interface's methods off Server's own API.
type grpcServer struct{ s *Server }

// Check implements envoy.service.auth.v3.Authorization.
func (g grpcServer) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return g.s.Check(ctx, req), nil
}

// serviceDesc is the generated Authorization service but for its handler, which may answer
// with an *encodedResponse (still a *CheckResponse to any other codec).
var serviceDesc = func() grpc.ServiceDesc {
	d := authv3.Authorization_ServiceDesc
	d.Methods = []grpc.MethodDesc{{MethodName: "Check", Handler: checkHandler}}
	return d
}()

func checkHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := new(authv3.CheckRequest)
	if err := dec(in); err != nil {
		return nil, err
	}
	s := srv.(grpcServer).s
	if interceptor == nil {
		return s.check(ctx, in), nil
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: authv3.Authorization_Check_FullMethodName}
	return interceptor(ctx, in, info, func(ctx context.Context, req any) (any, error) {
		return s.check(ctx, req.(*authv3.CheckRequest)), nil
	})
}

// Check decides an Envoy CheckRequest. Denials are responses, not errors, so Envoy sends our
// status, headers and body to the client.
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) *authv3.CheckResponse {
	switch r := s.check(ctx, req).(type) {
	case *encodedResponse:
		return r.CheckResponse
	default:
		return r.(*authv3.CheckResponse)
	}
}

// check is Check answering memoized outcomes with their encoded form.
func (s *Server) check(ctx context.Context, req *authv3.CheckRequest) proto.Message {
	start := time.Now()
	httpReq := req.GetAttributes().GetRequest().GetHttp()
	r := request{method: httpReq.GetMethod(), path: httpReq.GetPath(), ext: req.GetAttributes().GetContextExtensions(), id: httpReq.GetId()}
	reqHeaders := httpReq.GetHeaders()
	if reqHeaders == nil && httpReq.GetHeaderMap() != nil {
		reqHeaders = flatten(httpReq.GetHeaderMap()) // encode_raw_headers: true
	}
	r.authorization = reqHeaders["authorization"]
	r.where = resolver.Use{Addr: req.GetAttributes().GetSource().GetAddress().GetSocketAddress().GetAddress(), UserAgent: reqHeaders["user-agent"]}
	r.origin, r.referer = reqHeaders["origin"], reqHeaders["referer"]
	// The downstream peer as Envoy saw it; none (or not an IP: a pipe) is the zero Addr, which
	// a token bound to networks is refused for.
	if sa := req.GetAttributes().GetSource().GetAddress().GetSocketAddress(); sa != nil {
		r.addr, _ = netip.ParseAddr(sa.GetAddress())
	}
	if r.id == "" {
		r.id = reqHeaders["x-request-id"]
	}
	var span trace.Span
	if s.cfg.Tracer != nil {
		// Envoy's gRPC client puts its ext_authz span in the call's metadata; the request's own
		// headers carry the trace as Envoy's connection manager saw it. Either joins the trace;
		// the first is the closer parent.
		tp, ts := reqHeaders["traceparent"], reqHeaders["tracestate"]
		if v := metadata.ValueFromIncomingContext(ctx, "traceparent"); len(v) > 0 {
			tp, ts = v[0], ""
			if v := metadata.ValueFromIncomingContext(ctx, "tracestate"); len(v) > 0 {
				ts = v[0]
			}
		}
		ctx, span = s.startSpan(ctx, tp, ts)
	}
	o := s.evaluate(ctx, &r)
	defer func() {
		s.observe(&r, o, start)
		if span != nil {
			endSpan(span, &r, o)
		}
	}()
	g := renderGRPC(o)
	if o.verdict != allow {
		return g.enc
	}
	resp, headers := g.enc, g.headers
	if s.cfg.Exchange != nil {
		x, err := s.exchange(ctx, o)
		if err != nil {
			if s.logsDenial(unavailableOutcome.label, slog.LevelError) {
				s.log.Error("check failed: minting the runtime token failed", "request_id", r.id, "err", err)
			}
			o = unavailableOutcome
			return renderGRPC(unavailableOutcome).enc
		}
		xg := renderGRPCExchanged(g, x)
		resp, headers = xg.enc, xg.headers
	}
	remove := headersToRemove(o.decision, reqHeaders)
	if remove == nil {
		return resp
	}
	return &authv3.CheckResponse{
		Status:          resp.Status,
		DynamicMetadata: resp.DynamicMetadata,
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
			Headers: headers, HeadersToRemove: remove,
		}},
	}
}

func flatten(m *corev3.HeaderMap) map[string]string {
	out := make(map[string]string, len(m.GetHeaders()))
	for _, h := range m.GetHeaders() {
		v := h.GetValue()
		if v == "" {
			v = string(h.GetRawValue())
		}
		k := strings.ToLower(h.GetKey())
		if prev, ok := out[k]; ok {
			v = prev + "," + v
		}
		out[k] = v
	}
	return out
}

// renderGRPC is o as Envoy wants it, rendered on first use and kept with o, so a repeated
// check costs no building or encoding.
func renderGRPC(o *outcome) *grpcResponse {
	if g := o.grpc.Load(); g != nil {
		return g
	}
	o.grpc.CompareAndSwap(nil, newGRPCResponse(o.decision))
	return o.grpc.Load()
}

func newGRPCResponse(d *decision) *grpcResponse {
	g := &grpcResponse{}
	st := &status.Status{Code: int32(d.verdict)}
	if d.verdict == allow {
		g.headers = headerOptions(d.set)
		meta, err := structpb.NewStruct(d.meta)
		if err != nil {
			meta = nil // unreachable: meta is built from JSON values
		}
		g.resp = &authv3.CheckResponse{Status: st, DynamicMetadata: meta,
			HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{Headers: g.headers}}}
		g.enc = encode(g.resp)
		return g
	}
	st.Message = d.reason
	denied := &authv3.DeniedHttpResponse{Status: &typev3.HttpStatus{Code: typev3.StatusCode(d.verdict.status())}, Body: d.body,
		Headers: headerOptions(d.set)}
	g.resp = &authv3.CheckResponse{Status: st, HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: denied}}
	g.enc = encode(g.resp)
	return g
}

// renderGRPCExchanged is g with x's authorization added, rendered once per minted token.
func renderGRPCExchanged(g *grpcResponse, x *exchanged) *grpcResponse {
	if xg := x.grpc.Load(); xg != nil {
		return xg
	}
	xg := &grpcResponse{headers: append(append([]*corev3.HeaderValueOption{}, g.headers...), &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: "authorization", Value: x.bearer},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	})}
	xg.resp = &authv3.CheckResponse{Status: g.resp.Status, DynamicMetadata: g.resp.DynamicMetadata,
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{Headers: xg.headers}}}
	xg.enc = encode(xg.resp)
	x.grpc.CompareAndSwap(nil, xg)
	return x.grpc.Load()
}

// headerOptions are headers to set, overwriting what the request carries.
func headerOptions(hs []header) []*corev3.HeaderValueOption {
	var out []*corev3.HeaderValueOption
	for _, h := range hs {
		out = append(out, &corev3.HeaderValueOption{
			Header:       &corev3.HeaderValue{Key: h.name, Value: h.value},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		})
	}
	return out
}
