package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	goyaml "gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/rill-authd/rill-authd/internal/testenv"
)

const chart = "helm/rill-authd"

// serviceMonitor is the part of the Prometheus Operator's ServiceMonitor (a CRD, no Go type in
// k8s.io/api) that the chart writes, decoded as strictly as the built-in kinds.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// rendered is a chart rendering, every object decoded into its type.
type rendered struct {
	configMaps map[string]*corev1.ConfigMap
	services   []*corev1.Service
	pods       []*corev1.PodTemplateSpec // of the StatefulSet or Deployment
	sts        *appsv1.StatefulSet
	deploy     *appsv1.Deployment
	pdb        *policyv1.PodDisruptionBudget
	hpa        *autoscalingv2.HorizontalPodAutoscaler
	netpol     *networkingv1.NetworkPolicy
	sm         *serviceMonitor
	kinds      []string
}

func helmBin(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("helm")
	if err != nil {
		testenv.Unavailable(t, "helm", "helm is not installed (GOBIN=/usr/local/bin go install helm.sh/helm/v4/cmd/helm@v4.3.2; .ci/run does)")
	}
	return bin
}

// decodeObject decodes one manifest strictly: an unknown or misspelt field, or a duplicate
// key, is an error.
func decodeObject(doc []byte, r *rendered) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	var obj any
	switch tm.APIVersion + " " + tm.Kind {
	case "v1 ConfigMap":
		obj = &corev1.ConfigMap{}
	case "v1 Service":
		obj = &corev1.Service{}
	case "v1 ServiceAccount":
		obj = &corev1.ServiceAccount{}
	case "apps/v1 StatefulSet":
		obj = &appsv1.StatefulSet{}
	case "apps/v1 Deployment":
		obj = &appsv1.Deployment{}
	case "policy/v1 PodDisruptionBudget":
		obj = &policyv1.PodDisruptionBudget{}
	case "autoscaling/v2 HorizontalPodAutoscaler":
		obj = &autoscalingv2.HorizontalPodAutoscaler{}
	case "networking.k8s.io/v1 NetworkPolicy":
		obj = &networkingv1.NetworkPolicy{}
	case "monitoring.coreos.com/v1 ServiceMonitor":
		obj = &serviceMonitor{}
	default:
		return fmt.Errorf("unexpected kind %s %s", tm.APIVersion, tm.Kind)
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return fmt.Errorf("%s: %w", tm.Kind, err)
	}
	r.kinds = append(r.kinds, tm.Kind)
	switch o := obj.(type) {
	case *corev1.ConfigMap:
		r.configMaps[o.Name] = o
	case *corev1.Service:
		r.services = append(r.services, o)
	case *appsv1.StatefulSet:
		r.sts, r.pods = o, append(r.pods, &o.Spec.Template)
	case *appsv1.Deployment:
		r.deploy, r.pods = o, append(r.pods, &o.Spec.Template)
	case *policyv1.PodDisruptionBudget:
		r.pdb = o
	case *autoscalingv2.HorizontalPodAutoscaler:
		r.hpa = o
	case *networkingv1.NetworkPolicy:
		r.netpol = o
	case *serviceMonitor:
		r.sm = o
	}
	return nil
}

// docs splits a multi-document YAML stream, dropping empty documents.
func docs(out []byte) [][]byte {
	var ds [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(out), -1) {
		if strings.TrimSpace(regexp.MustCompile(`(?m)^#.*$`).ReplaceAllString(d, "")) != "" {
			ds = append(ds, []byte(d))
		}
	}
	return ds
}

func template(t *testing.T, helm string, args ...string) rendered {
	t.Helper()
	out, err := exec.Command(helm, append([]string{"template", "authd", chart}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("helm template %v: %v\n%s", args, err, out)
	}
	r := rendered{configMaps: map[string]*corev1.ConfigMap{}}
	for _, d := range docs(out) {
		if err := decodeObject(d, &r); err != nil {
			t.Fatalf("helm template %v: %v\n%s", args, err, d)
		}
	}
	return r
}

// makefileVar reads `NAME ?= value` from the Makefile.
func makefileVar(t *testing.T, name string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testenv.ModuleRoot(), "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + name + `\s*\?=\s*(\S+)\s*$`).FindSubmatch(raw)
	if m == nil {
		t.Fatalf("Makefile has no %s ?=", name)
	}
	return string(m[1])
}

// TestHelmStrictDecoding: the decoder used on the chart refuses a misspelt field, so a typo in a
// template cannot pass unseen.
func TestHelmStrictDecoding(t *testing.T) {
	for _, doc := range []string{
		"apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {selectr: {a: b}}\n",
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {template: {spec: {containers: [{name: a, readinesProbe: {}}]}}}\n",
		"apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: x}\nspec: {endpoints: [{port: http, intervall: 1s}]}\n",
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\nmetadata: {name: y}\n",
		"apiVersion: v1\nkind: Secret\nmetadata: {name: x}\n",
	} {
		if err := decodeObject([]byte(doc), &rendered{configMaps: map[string]*corev1.ConfigMap{}}); err == nil {
			t.Errorf("accepted:\n%s", doc)
		}
	}
}

// TestHelmChart lints and renders deploy/helm/rill-authd with its defaults (sidecar) and the
// full values files of both shapes, decodes every object strictly into its k8s.io/api type,
// checks what both shapes promise (probes, security context, resources, the image of make
// image, the config file), validates the sidecar's Envoy config as envoy.yaml is validated, and
// starts the real daemon with each rendered config file and container args, probing the
// rendered probe paths and ports.
func TestHelmChart(t *testing.T) {
	helm := helmBin(t)
	for _, args := range [][]string{nil, {"-f", chart + "/ci/sidecar-values.yaml"}, {"-f", chart + "/ci/shared-values.yaml"}} {
		if out, err := exec.Command(helm, append([]string{"lint", "--strict", chart}, args...)...).CombinedOutput(); err != nil {
			t.Errorf("helm lint %v: %v\n%s", args, err, out)
		}
	}
	// A wrong mode, or shared without the URL's Secret, is refused with a message.
	for _, c := range []struct{ set, want string }{
		{"mode=shard", "mode must be sidecar or shared"},
		{"mode=shared", "postgres.urlSecret"},
	} {
		out, err := exec.Command(helm, "template", "authd", chart, "--set", c.set).CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("helm template --set %s: %v %s, want a failure naming %q", c.set, err, out, c.want)
		}
	}

	cases := []struct {
		name  string
		args  []string
		mode  string
		kinds []string
	}{
		{"default", nil, "sidecar", []string{"ConfigMap", "ConfigMap", "Service", "ServiceAccount", "StatefulSet"}},
		{"sidecar-full", []string{"-f", chart + "/ci/sidecar-values.yaml"}, "sidecar",
			[]string{"ConfigMap", "ConfigMap", "NetworkPolicy", "Service", "ServiceAccount", "ServiceMonitor", "StatefulSet"}},
		{"shared-full", []string{"-f", chart + "/ci/shared-values.yaml"}, "shared",
			[]string{"ConfigMap", "Deployment", "HorizontalPodAutoscaler", "NetworkPolicy", "PodDisruptionBudget", "Service", "ServiceAccount", "ServiceMonitor"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := template(t, helm, c.args...)
			slices.Sort(r.kinds)
			if !slices.Equal(r.kinds, c.kinds) {
				t.Errorf("kinds %v, want %v", r.kinds, c.kinds)
			}
			if len(r.pods) != 1 {
				t.Fatalf("%d pod templates", len(r.pods))
			}
			pod := &r.pods[0].Spec
			authd := checkPod(t, pod, c.mode)
			cfgFile := checkConfig(t, r, pod, authd)
			checkServices(t, r, pod, c.mode)
			if c.mode == "sidecar" {
				checkEnvoy(t, r, pod, authd)
			}
			if c.mode == "shared" {
				if r.pdb == nil || r.hpa == nil || r.deploy.Spec.Replicas != nil {
					t.Errorf("shared with autoscaling: want a PDB, an HPA and no fixed replicas (pdb %v hpa %v)", r.pdb != nil, r.hpa != nil)
				}
				if r.hpa != nil && (r.hpa.Spec.ScaleTargetRef.Kind != "Deployment" || r.hpa.Spec.ScaleTargetRef.Name != r.deploy.Name) {
					t.Errorf("HPA targets %v, not the Deployment %s", r.hpa.Spec.ScaleTargetRef, r.deploy.Name)
				}
			}
			runRendered(t, c.mode, authd, cfgFile)
		})
	}
}

// checkPod checks the security context, resources, probes and image of every container, and
// returns the rill-authd container.
func checkPod(t *testing.T, pod *corev1.PodSpec, mode string) *corev1.Container {
	t.Helper()
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != 65532 ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v: want runAsNonRoot, runAsUser 65532 (the image's user), seccomp RuntimeDefault", psc)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the pod mounts a service account token it does not need")
	}
	want := map[string]bool{"rill-authd": true, "envoy": mode == "sidecar"}
	var authd *corev1.Container
	for i := range pod.Containers {
		c := &pod.Containers[i]
		if !want[c.Name] {
			t.Errorf("unexpected container %s in %s mode", c.Name, mode)
		}
		delete(want, c.Name)
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
			len(sc.Capabilities.Add) != 0 || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault ||
			(sc.Privileged != nil && *sc.Privileged) {
			t.Errorf("container %s securityContext %+v", c.Name, sc)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("container %s resources %+v: want cpu and memory requests and a memory limit", c.Name, c.Resources)
		}
		if c.LivenessProbe == nil || c.ReadinessProbe == nil {
			t.Errorf("container %s has no liveness or readiness probe", c.Name)
		}
		if c.Name == "rill-authd" {
			authd = c
		}
	}
	for name, missing := range want {
		if missing {
			t.Errorf("no %s container", name)
		}
	}
	if authd == nil {
		t.FailNow()
	}
	// The image is the one `make image` tags.
	if repo, tag := makefileVar(t, "IMAGE"), "latest"; authd.Image != repo+":"+tag {
		t.Errorf("image %s, want %s:%s (make image's IMAGE and its :latest tag)", authd.Image, repo, tag)
	}
	port := func(name string) int32 {
		for _, p := range authd.Ports {
			if p.Name == name {
				return p.ContainerPort
			}
		}
		t.Fatalf("rill-authd has no port %s", name)
		return 0
	}
	if p := authd.LivenessProbe.HTTPGet; p == nil || p.Path != "/healthz" || p.Port.String() != "http" {
		t.Errorf("liveness %+v: want GET /healthz on http", authd.LivenessProbe)
	}
	if p := authd.ReadinessProbe.HTTPGet; p == nil || p.Path != "/readyz" || p.Port.String() != "http" {
		t.Errorf("readiness %+v: want GET /readyz on http", authd.ReadinessProbe)
	}
	if p := authd.StartupProbe; p == nil || p.GRPC == nil || p.GRPC.Port != port("grpc") {
		t.Errorf("startup %+v: want gRPC health on the grpc port %d", authd.StartupProbe, port("grpc"))
	}
	return authd
}

// checkConfig finds the --config file the container is given, in the ConfigMap mounted at its
// directory, and returns its text.
func checkConfig(t *testing.T, r rendered, pod *corev1.PodSpec, authd *corev1.Container) string {
	t.Helper()
	i := slices.Index(authd.Args, "--config")
	if i < 0 || i+1 >= len(authd.Args) {
		t.Fatalf("args %q: no --config", authd.Args)
	}
	path := authd.Args[i+1]
	var vol string
	for _, m := range authd.VolumeMounts {
		if m.MountPath == filepath.Dir(path) {
			vol = m.Name
		}
	}
	for _, v := range pod.Volumes {
		if v.Name == vol && v.ConfigMap != nil {
			cm := r.configMaps[v.ConfigMap.Name]
			if cm == nil {
				t.Fatalf("volume %s names ConfigMap %s, which the chart does not render", vol, v.ConfigMap.Name)
			}
			text, ok := cm.Data[filepath.Base(path)]
			if !ok {
				t.Fatalf("ConfigMap %s has no %s", cm.Name, filepath.Base(path))
			}
			return text
		}
	}
	t.Fatalf("--config %s is on no ConfigMap volume", path)
	return ""
}

// checkServices checks that every Service, NetworkPolicy and ServiceMonitor port names a port
// of the pod.
func checkServices(t *testing.T, r rendered, pod *corev1.PodSpec, mode string) {
	t.Helper()
	ports := map[string]bool{}
	for _, c := range pod.Containers {
		for _, p := range c.Ports {
			ports[p.Name] = true
		}
	}
	if len(r.services) != 1 {
		t.Fatalf("%d Services", len(r.services))
	}
	svcPorts := map[string]bool{}
	for _, p := range r.services[0].Spec.Ports {
		svcPorts[p.Name] = true
		if !ports[p.TargetPort.String()] {
			t.Errorf("Service port %s targets %s, not a port of the pod", p.Name, p.TargetPort.String())
		}
	}
	exposed := map[string]string{"sidecar": "envoy", "shared": "grpc"}[mode]
	if !svcPorts[exposed] || !svcPorts["http"] {
		t.Errorf("Service ports %v: want %s and http", svcPorts, exposed)
	}
	if r.sts != nil && r.sts.Spec.ServiceName != r.services[0].Name {
		t.Errorf("StatefulSet serviceName %s, Service %s", r.sts.Spec.ServiceName, r.services[0].Name)
	}
	if np := r.netpol; np != nil {
		for _, in := range np.Spec.Ingress {
			if len(in.From) == 0 {
				t.Errorf("NetworkPolicy rule for %v has no from: it admits everyone", in.Ports)
			}
			for _, p := range in.Ports {
				if !ports[p.Port.String()] {
					t.Errorf("NetworkPolicy port %s is not a port of the pod", p.Port.String())
				}
			}
		}
	}
	if sm := r.sm; sm != nil {
		if len(sm.Spec.Endpoints) != 1 || !svcPorts[sm.Spec.Endpoints[0].Port] || sm.Spec.Endpoints[0].Path != "/metrics" {
			t.Errorf("ServiceMonitor endpoints %+v: want /metrics on a Service port", sm.Spec.Endpoints)
		}
	}
	sel := r.pods[0].Labels
	for k, v := range r.services[0].Spec.Selector {
		if sel[k] != v {
			t.Errorf("Service selects %s=%s, which the pods do not carry", k, v)
		}
	}
}

// checkEnvoy parses the sidecar's Envoy config from its ConfigMap into go-control-plane's
// Bootstrap, validates every typed config, and checks it carries envoy.yaml's ext_authz filter
// pointed at rill-authd on localhost in the same pod.
func checkEnvoy(t *testing.T, r rendered, pod *corev1.PodSpec, authd *corev1.Container) {
	t.Helper()
	var envoy *corev1.Container
	for i := range pod.Containers {
		if pod.Containers[i].Name == "envoy" {
			envoy = &pod.Containers[i]
		}
	}
	var cmName string
	for _, v := range pod.Volumes {
		if v.Name == "envoy-config" && v.ConfigMap != nil {
			cmName = v.ConfigMap.Name
		}
	}
	cm := r.configMaps[cmName]
	if cm == nil || !slices.Equal(envoy.Args, []string{"-c", "/etc/envoy/envoy.yaml"}) {
		t.Fatalf("Envoy's config: ConfigMap %q, args %q", cmName, envoy.Args)
	}
	got := envoyBootstrap(t, cm.Data["envoy.yaml"])
	raw, err := os.ReadFile(filepath.Join(testenv.ModuleRoot(), "envoy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ref := envoyBootstrap(t, string(raw))

	gotHCM, refHCM := hcm(t, got), hcm(t, ref)
	if !proto.Equal(gotHCM.GetHttpFilters()[0], refHCM.GetHttpFilters()[0]) {
		t.Errorf("the ext_authz filter differs from envoy.yaml's:\n got %v\nwant %v", gotHCM.GetHttpFilters()[0], refHCM.GetHttpFilters()[0])
	}
	var ea extauthzv3.ExtAuthz
	if err := gotHCM.GetHttpFilters()[0].GetTypedConfig().UnmarshalTo(&ea); err != nil || ea.GetFailureModeAllow() {
		t.Errorf("ext_authz must fail closed: %v", err)
	}
	if !gotHCM.GetNormalizePath().GetValue() || !gotHCM.GetMergeSlashes() || gotHCM.GetPathWithEscapedSlashesAction() != hcmv3.HttpConnectionManager_REJECT_REQUEST {
		t.Error("the connection manager lost envoy.yaml's path normalization")
	}
	// The routes are envoy.yaml's, but for the runtime route's target.
	gotRoutes, refRoutes := gotHCM.GetRouteConfig().GetVirtualHosts()[0].GetRoutes(), refHCM.GetRouteConfig().GetVirtualHosts()[0].GetRoutes()
	if len(gotRoutes) != len(refRoutes) {
		t.Fatalf("%d routes, envoy.yaml has %d", len(gotRoutes), len(refRoutes))
	}
	for i := range gotRoutes {
		if gotRoutes[i].GetName() != "runtime" && !proto.Equal(gotRoutes[i], refRoutes[i]) {
			t.Errorf("route %s differs from envoy.yaml's", gotRoutes[i].GetName())
		}
	}

	grpcPort := uint32(0)
	for _, p := range authd.Ports {
		if p.Name == "grpc" {
			grpcPort = uint32(p.ContainerPort)
		}
	}
	for _, c := range got.GetStaticResources().GetClusters() {
		if c.GetName() != "rill_authd" {
			continue
		}
		sa := c.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
		if sa.GetAddress() != "127.0.0.1" || sa.GetPortValue() != grpcPort {
			t.Errorf("rill_authd cluster at %s:%d, want 127.0.0.1:%d (rill-authd's grpc port, same pod)", sa.GetAddress(), sa.GetPortValue(), grpcPort)
		}
		if c.GetHealthChecks()[0].GetGrpcHealthCheck() == nil {
			t.Error("rill_authd cluster lost its gRPC health check")
		}
	}
	lport := got.GetStaticResources().GetListeners()[0].GetAddress().GetSocketAddress().GetPortValue()
	if len(envoy.Ports) != 1 || uint32(envoy.Ports[0].ContainerPort) != lport {
		t.Errorf("Envoy listens on %d, its container port is %v", lport, envoy.Ports)
	}
}

func envoyBootstrap(t *testing.T, text string) *bootstrapv3.Bootstrap {
	t.Helper()
	var doc any
	if err := goyaml.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatalf("Envoy config is not YAML: %v", err)
	}
	js, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var bs bootstrapv3.Bootstrap
	if err := protojson.Unmarshal(js, &bs); err != nil {
		t.Fatalf("Envoy config is not a v3 Bootstrap: %v", err)
	}
	testenv.ValidateEnvoy(t, "bootstrap", bs.ProtoReflect())
	return &bs
}

func hcm(t *testing.T, bs *bootstrapv3.Bootstrap) *hcmv3.HttpConnectionManager {
	t.Helper()
	var h hcmv3.HttpConnectionManager
	if err := bs.GetStaticResources().GetListeners()[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(&h); err != nil {
		t.Fatal(err)
	}
	return &h
}

// runRendered starts the real daemon with the container's args and env and the rendered config
// file (paths moved into temp dirs, listeners on loopback port 0 after checking their ports are
// the container's), then probes what the manifests probe: the startup probe's gRPC health on the
// grpc listener, liveness and readiness paths and /metrics on the http listener.
func runRendered(t *testing.T, mode string, authd *corev1.Container, cfgText string) {
	t.Helper()
	var cfg map[string]any
	if err := goyaml.Unmarshal([]byte(cfgText), &cfg); err != nil {
		t.Fatalf("config file: %v\n%s", err, cfgText)
	}
	ports := map[string]int32{}
	for _, p := range authd.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for key, port := range map[string]string{"grpc_addr": "grpc", "http_addr": "http"} {
		addr, _ := cfg[key].(string)
		_, p, _ := strings.Cut(addr, ":")
		if n, err := strconv.Atoi(p); err != nil || int32(n) != ports[port] {
			t.Errorf("config %s = %q, container port %s = %d", key, addr, port, ports[port])
		}
		cfg[key] = "127.0.0.1:0"
	}
	// Every path the config names is on a volume the container mounts writable.
	dir := t.TempDir()
	for _, key := range []string{"data_dir", "bootstrap_token_file"} {
		p, _ := cfg[key].(string)
		mounted := false
		for _, m := range authd.VolumeMounts {
			if !m.ReadOnly && (p == m.MountPath || strings.HasPrefix(p, m.MountPath+"/")) {
				mounted = true
			}
		}
		if !mounted {
			t.Errorf("config %s = %q is on no writable volume of the container (the root filesystem is read-only)", key, p)
		}
		cfg[key] = filepath.Join(dir, strings.TrimPrefix(p, "/"))
	}
	out, _ := goyaml.Marshal(cfg)
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, out, 0o600); err != nil {
		t.Fatal(err)
	}
	args := slices.Clone(authd.Args)
	args[slices.Index(args, "--config")+1] = cfgPath
	env := []string{}
	var preToken []byte // shared: the README's bootstrap of the database before helm install
	for _, e := range authd.Env {
		switch {
		case e.Name == "RILL_AUTHD_STORE" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			db, _ := testenv.PostgresDB(t, testenv.PostgresServer(t))
			env = append(env, e.Name+"="+db)
			tokFile := filepath.Join(t.TempDir(), "bootstrap-token")
			pre := start(t, exec.Command(testenv.Bin(t, "rill-authd"), "--store", db, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
				"--bootstrap-token-file", tokFile))
			pre.stop(t)
			var err error
			if preToken, err = os.ReadFile(tokFile); err != nil {
				t.Fatalf("bootstrapping the database before install: %v\n%s", err, pre.Stderr())
			}
		case e.ValueFrom == nil:
			env = append(env, e.Name+"="+e.Value)
		default:
			t.Fatalf("env %s: unexpected source %+v", e.Name, e.ValueFrom)
		}
	}
	if mode == "shared" && len(env) != 1 {
		t.Errorf("shared mode: env %q, want RILL_AUTHD_STORE from the Secret", env)
	}
	cmd := exec.Command(testenv.Bin(t, "rill-authd"), args...)
	cmd.Env = env
	p := start(t, cmd)

	tok, err := os.ReadFile(cfg["bootstrap_token_file"].(string))
	if preToken != nil {
		// The store was bootstrapped before: the pods write no token, the one kept works.
		if err == nil {
			t.Errorf("a pod wrote a bootstrap token into a store bootstrapped before install")
		}
		tok = preToken
	} else if err != nil {
		t.Fatalf("bootstrap token file: %v\n%s", err, p.Stderr())
	}
	if bytes.Contains([]byte(p.Stderr()), bytes.TrimSpace(tok)) {
		t.Error("the bootstrap token is in the log")
	}
	for _, path := range []string{authd.LivenessProbe.HTTPGet.Path, authd.ReadinessProbe.HTTPGet.Path, "/metrics"} {
		if code := get(t, "http://"+p.httpAddr+path); code != 200 {
			t.Errorf("GET %s: %d", path, code)
		}
	}
	conn, err := grpc.NewClient(p.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The kubelet's gRPC probe asks for the service named in the probe ("" when none).
	svc := ""
	if s := authd.StartupProbe.GRPC.Service; s != nil {
		svc = *s
	}
	if h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: svc}); err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("gRPC health (startup probe): %v %v", h, err)
	}
	exercise(t, p.grpcAddr, p.httpAddr, string(bytes.TrimSpace(tok)))
}
