package plugins_test

import (
	"context"

	"github.com/rill-authd/rill-authd/plugins"
)

// regions is a whole attribute-source plugin: build it as its own binary and list it under
// plugins: in rill-authd's config file.
type regions map[string]string

func (r regions) Attributes(_ context.Context, p plugins.Principal) (map[string]any, error) {
	if region, ok := r[p.Email]; ok {
		return map[string]any{"region": region}, nil
	}
	return map[string]any{}, nil
}

func ExampleServe() {
	// In the plugin's main:
	if false { // Serve blocks, talking to rill-authd; this example only shows the call
		plugins.Serve(regions{"bob@acme.com": "us-west"})
	}
	// Output:
}
