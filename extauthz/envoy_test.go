package extauthz_test

import (
	"encoding/json"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	upstreamsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"gopkg.in/yaml.v3"

	"github.com/rill-authd/rill-authd/extauthz"
	"github.com/rill-authd/rill-authd/internal/testenv"
)

// TestEnvoyYAML parses the repo's envoy.yaml into go-control-plane's Bootstrap, resolves every
// typed config, validates them all, and checks the parts rill-authd depends on.
func TestEnvoyYAML(t *testing.T) {
	raw, err := os.ReadFile("../envoy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("envoy.yaml is not YAML: %v", err)
	}
	js, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var bs bootstrapv3.Bootstrap
	if err := (protojson.UnmarshalOptions{}).Unmarshal(js, &bs); err != nil {
		t.Fatalf("envoy.yaml is not a v3 Bootstrap: %v", err)
	}
	testenv.ValidateEnvoy(t, "bootstrap", bs.ProtoReflect())

	var hcm hcmv3.HttpConnectionManager
	listeners := bs.GetStaticResources().GetListeners()
	if len(listeners) != 1 {
		t.Fatalf("want 1 listener, got %d", len(listeners))
	}
	if err := listeners[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(&hcm); err != nil {
		t.Fatal(err)
	}
	// A path must name the same target to Envoy's routes, to the check and to the runtime.
	if !hcm.GetNormalizePath().GetValue() || !hcm.GetMergeSlashes() ||
		hcm.GetPathWithEscapedSlashesAction() != hcmv3.HttpConnectionManager_REJECT_REQUEST {
		t.Errorf("the connection manager must set normalize_path, merge_slashes and path_with_escaped_slashes_action: REJECT_REQUEST; got %v, %v, %v",
			hcm.GetNormalizePath(), hcm.GetMergeSlashes(), hcm.GetPathWithEscapedSlashesAction())
	}
	filters := hcm.GetHttpFilters()
	if len(filters) < 2 || filters[0].GetName() != "envoy.filters.http.ext_authz" || filters[len(filters)-1].GetName() != "envoy.filters.http.router" {
		t.Fatalf("ext_authz must run first and the router last: %v", filters)
	}
	var ea extauthzv3.ExtAuthz
	if err := filters[0].GetTypedConfig().UnmarshalTo(&ea); err != nil {
		t.Fatal(err)
	}
	if ea.GetFailureModeAllow() {
		t.Error("failure_mode_allow must be false: an unreachable rill-authd must not open the door")
	}
	if ea.GetGrpcService().GetEnvoyGrpc().GetClusterName() != "rill_authd" || ea.GetGrpcService().GetTimeout().AsDuration() <= 0 {
		t.Errorf("ext_authz must call cluster rill_authd over gRPC with a timeout: %v", ea.GetGrpcService())
	}
	clusters := map[string]*clusterv3.Cluster{}
	for _, c := range bs.GetStaticResources().GetClusters() {
		clusters[c.GetName()] = c
	}
	if clusters["rill_authd"] == nil || clusters["rill_runtime"] == nil || clusters["rill_authd_unix"] == nil {
		t.Errorf("clusters %v: want rill_authd, rill_authd_unix and rill_runtime", slices.Sorted(maps.Keys(clusters)))
	}
	// The alternative over rill-authd's Unix socket (--grpc-addr unix:///...): a pipe address,
	// which Envoy takes only in a STATIC cluster, over HTTP/2 as gRPC needs.
	if c := clusters["rill_authd_unix"]; c != nil {
		pipe := c.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetPipe()
		var po upstreamsv3.HttpProtocolOptions
		if err := c.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].UnmarshalTo(&po); err != nil {
			t.Fatalf("rill_authd_unix: %v", err)
		}
		if !strings.HasPrefix(pipe.GetPath(), "/") || c.GetType() != clusterv3.Cluster_STATIC || po.GetExplicitHttpConfig().GetHttp2ProtocolOptions() == nil {
			t.Errorf("rill_authd_unix: want a STATIC cluster on a pipe at an absolute path over HTTP/2; got type %v, pipe %v, %v", c.GetType(), pipe, &po)
		}
	}

	routes := map[string]*routev3.Route{}
	for _, r := range hcm.GetRouteConfig().GetVirtualHosts()[0].GetRoutes() {
		routes[r.GetName()] = r
	}
	ext := func(name string) map[string]string {
		r := routes[name]
		if r == nil {
			t.Fatalf("no route %q", name)
		}
		var per extauthzv3.ExtAuthzPerRoute
		if err := r.GetTypedPerFilterConfig()["envoy.filters.http.ext_authz"].UnmarshalTo(&per); err != nil {
			t.Fatalf("route %s: %v", name, err)
		}
		return per.GetCheckSettings().GetContextExtensions()
	}
	if e := ext("runtime"); e["org"] == "" || e["project"] == "" || e["permission"] != "read_prod" {
		t.Errorf("runtime route context_extensions %v", e)
	}
	if e := ext("custom-api"); e["permission"] == "" {
		t.Errorf("custom-api route context_extensions %v", e)
	}
	re := routes["custom-api"].GetMatch().GetSafeRegex().GetRegex()
	if re == "" {
		t.Error("custom-api route must match /v1/organizations/{org}/projects/{project}/runtime/api/{name}")
	}
	// A route that skips the check must strip every identity header itself: no check removes
	// the client's forged copies there.
	for name, r := range routes {
		var per extauthzv3.ExtAuthzPerRoute
		if c := r.GetTypedPerFilterConfig()["envoy.filters.http.ext_authz"]; c == nil || c.UnmarshalTo(&per) != nil || !per.GetDisabled() {
			continue
		}
		for _, h := range []string{extauthz.HeaderKind, extauthz.HeaderSubject, extauthz.HeaderOrg, extauthz.HeaderProject, extauthz.HeaderOrgRole,
			extauthz.HeaderProjectRole, extauthz.HeaderPermissions, extauthz.HeaderAttributes, extauthz.HeaderTokenID} {
			if !slices.Contains(r.GetRequestHeadersToRemove(), h) {
				t.Errorf("route %s skips ext_authz but lets a client's %s through", name, h)
			}
		}
	}
	// The metadata keys the access log reads are the ones Check emits.
	if extauthz.MetadataNamespace != "envoy.filters.http.ext_authz" {
		t.Errorf("metadata namespace %q", extauthz.MetadataNamespace)
	}
}
