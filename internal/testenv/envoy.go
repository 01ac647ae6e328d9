package testenv

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
)

// ValidateEnvoy runs protoc-gen-validate's ValidateAll on m and on every message packed in an
// Any inside it: Bootstrap's own ValidateAll does not look into typed configs. Every Envoy config
// we ship (envoy.yaml, the Helm chart's, the README's tracing block) is checked by this one walk.
// The caller imports the packages of the typed configs it expects, so that they resolve.
func ValidateEnvoy(t testing.TB, where string, m protoreflect.Message) {
	t.Helper()
	if v, ok := m.Interface().(interface{ ValidateAll() error }); ok {
		if err := v.ValidateAll(); err != nil {
			t.Errorf("%s: %v", where, err)
		}
	}
	if a, ok := m.Interface().(*anypb.Any); ok {
		inner, err := a.UnmarshalNew()
		if err != nil {
			t.Errorf("%s: typed config %s is not known: %v", where, a.GetTypeUrl(), err)
			return
		}
		ValidateEnvoy(t, where+"/"+string(proto.MessageName(inner)), inner.ProtoReflect())
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		name := where + "." + string(fd.Name())
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := 0; i < v.List().Len(); i++ {
				ValidateEnvoy(t, name, v.List().Get(i).Message())
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				ValidateEnvoy(t, name+"["+k.String()+"]", mv.Message())
				return true
			})
		case fd.Message() != nil && !fd.IsList() && !fd.IsMap():
			ValidateEnvoy(t, name, v.Message())
		}
		return true
	})
}
