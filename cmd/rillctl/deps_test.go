package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLinksNoServerCode keeps rillctl a small client: it links the admin API's wire types and
// client, not the daemon (store engines, gRPC, Envoy protos, metrics).
func TestLinksNoServerCode(t *testing.T) {
	// go test puts its own GOROOT/bin first in PATH, so this is the go that runs the test.
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}\t{{with .Module}}{{.Path}}\t{{.Main}}{{end}}", ".")
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list -deps: %v\n%s", err, stderr)
	}
	var module string
	var ours []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		path, mod, _ := strings.Cut(line, "\t")
		for _, bad := range []string{"badger", "google.golang.org/grpc", "go-control-plane", "prometheus"} {
			if strings.Contains(path, bad) {
				t.Errorf("rillctl links %s (%s is server code)", path, bad)
			}
		}
		if modPath, main, _ := strings.Cut(mod, "\t"); main == "true" {
			module = modPath
			ours = append(ours, path)
		}
	}
	if module == "" {
		t.Fatalf("go list found no package of the main module in:\n%s", out)
	}
	allowed := map[string]bool{}
	for _, p := range []string{"adminapi/apiv1", "adminapi/client", "ctl", "cmd/rillctl"} {
		allowed[module+"/"+p] = true
	}
	for _, p := range ours {
		if !allowed[p] {
			t.Errorf("rillctl links %s: of ours it may link only adminapi/apiv1, adminapi/client and ctl", p)
		}
	}
}
