package extauthz

import (
	"fmt"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// encodedResponse is a memoized CheckResponse with its wire bytes. It is a proto message in its
// own right (the embedded one), so any codec can send it; Codec sends the bytes.
type encodedResponse struct {
	*authv3.CheckResponse
	wire []byte
}

func encode(r *authv3.CheckResponse) *encodedResponse {
	b, err := proto.Marshal(r)
	if err != nil { // unreachable for messages we build; fall back to encoding per request
		return &encodedResponse{CheckResponse: r}
	}
	return &encodedResponse{CheckResponse: r, wire: b}
}

// Codec is the gRPC codec of the check server: protobuf (name "proto", the wire format is
// unchanged), except that memoized responses are sent as the bytes encoded when the decision
// was made, so a repeated check costs no encoding.
type Codec struct{}

// Name is the content subtype the codec serves.
func (Codec) Name() string { return "proto" }

// Marshal encodes v.
func (Codec) Marshal(v any) (mem.BufferSlice, error) {
	var b []byte
	var err error
	switch m := v.(type) {
	case *encodedResponse:
		if m.wire != nil {
			return mem.BufferSlice{mem.SliceBuffer(m.wire)}, nil
		}
		b, err = proto.Marshal(m.CheckResponse)
	case proto.Message:
		b, err = proto.Marshal(m)
	default:
		return nil, fmt.Errorf("grpc codec: cannot encode %T", v)
	}
	if err != nil {
		return nil, fmt.Errorf("grpc codec: encode %T: %w", v, err)
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

// Unmarshal decodes data into v.
func (Codec) Unmarshal(data mem.BufferSlice, v any) error {
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("grpc codec: cannot decode into %T", v)
	}
	// proto.Unmarshal copies what it keeps: buf goes back to the pool.
	if err := proto.Unmarshal(buf.ReadOnlyData(), m); err != nil {
		return fmt.Errorf("grpc codec: decode %T: %w", v, err)
	}
	return nil
}
