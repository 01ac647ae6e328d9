package extauthz_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"strings"
	"testing"
)

// TestDecisionImportsNoTransport keeps the decision free of transports: decide.go imports no
// gRPC, Envoy, protobuf or net/http package and names nothing the transport files declare, so
// the transports depend on the decision and never the other way round.
func TestDecisionImportsNoTransport(t *testing.T) {
	fset := token.NewFileSet()
	parse := func(name string) *ast.File {
		t.Helper()
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	decide := parse("decide.go")
	for _, imp := range decide.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		for _, banned := range []string{"net/http", "google.golang.org/grpc", "google.golang.org/genproto", "google.golang.org/protobuf", "github.com/envoyproxy/"} {
			if strings.HasPrefix(path, banned) {
				t.Errorf("decide.go imports %s", path)
			}
		}
	}
	transport := map[string]string{}
	for _, name := range []string{"grpc.go", "http.go", "codec.go"} {
		for _, d := range parse(name).Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil {
					transport[d.Name.Name] = name
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						transport[s.Name.Name] = name
					case *ast.ValueSpec:
						for _, n := range s.Names {
							transport[n.Name] = name
						}
					}
				}
			}
		}
	}
	ast.Inspect(decide, func(n ast.Node) bool {
		if id, ok := n.(*ast.Ident); ok {
			if file, ok := transport[id.Name]; ok {
				t.Errorf("decide.go:%d uses %s of %s", fset.Position(id.Pos()).Line, id.Name, file)
			}
		}
		return true
	})
}
