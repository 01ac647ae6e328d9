package apiv1_test

import (
	"go/build"
	"strings"
	"testing"
)

// TestImportsOnlyStdlib keeps apiv1 the contract a client can link without any server code.
func TestImportsOnlyStdlib(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatalf("read package apiv1: %v", err)
	}
	if len(pkg.Imports) == 0 {
		t.Fatal("apiv1 lists no imports: the check reads the wrong directory")
	}
	for _, imp := range pkg.Imports {
		// Standard library paths have no dot in their first element.
		if first, _, _ := strings.Cut(imp, "/"); strings.Contains(first, ".") {
			t.Errorf("apiv1 imports %s: it may import only the standard library", imp)
		}
	}
}
