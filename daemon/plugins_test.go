package daemon_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	adminclient "github.com/rill-authd/rill-authd/adminapi/client"
	"github.com/rill-authd/rill-authd/internal/testenv"
)

// TestAttributePlugins runs the two example plugins, built from source, through the real
// daemon: their attributes reach x-rill-attributes, a file change shows up, a SIGKILLed plugin
// is restarted while checks follow on_error, a slow plugin costs no more than its timeout, and
// shutdown leaves no plugin process behind.
func TestAttributePlugins(t *testing.T) {
	dir := t.TempDir()
	attrsFile := filepath.Join(dir, "attrs.json")
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(attrsFile, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// "email" is reserved: the plugin must not be able to replace it.
	write(`{"admin@localhost": {"department": "sales", "email": "spoof@evil"}}`)
	var slow atomic.Bool
	crm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if slow.Load() {
			time.Sleep(2 * time.Second)
		}
		fmt.Fprint(w, `{"tier": "gold", "department": "crm-loses"}`)
	}))
	defer crm.Close()
	bin := filepath.Dir(testenv.Bin(t, "rill-authd"))
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`default_org: acme
default_project: web
plugins:
  - name: hr
    command: %s/plugins/jsonfile
    args: ["--file", %q]
    cache_ttl: 200ms
    on_error: skip
  - name: crm
    command: %s/plugins/http
    args: ["--url", %q, "--timeout", "5s"]
    timeout: 150ms
    cache_ttl: 200ms
    on_error: deny
`, bin, attrsFile, bin, crm.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	d := testenv.Start(t, filepath.Join(dir, "data"), "--config", cfg)

	// Every configured plugin's series exist from the start, at 0, before its first call.
	m0 := scrape(t, d.URL())
	for _, key := range []string{"rill_authd_plugin_calls_total{plugin=hr,result=ok}", "rill_authd_plugin_calls_total{plugin=hr,result=error}",
		"rill_authd_plugin_calls_total{plugin=crm,result=ok}", "rill_authd_plugin_calls_total{plugin=crm,result=error}",
		"rill_authd_plugin_call_duration_seconds_count{plugin=hr}", "rill_authd_plugin_call_duration_seconds_count{plugin=crm}"} {
		if v, ok := m0[key]; !ok || v != 0 {
			t.Errorf("at start %s = %v (present %v), want 0", key, v, ok)
		}
	}

	conn, err := grpc.NewClient(d.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := authv3.NewAuthorizationClient(conn)
	check := func() (int, map[string]any, time.Duration) {
		t.Helper()
		start := time.Now()
		resp, err := client.Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: "GET", Path: "/v1/instances/default/query", Headers: map[string]string{"authorization": "Bearer " + d.Token}}}}})
		took := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		if dr := resp.GetDeniedResponse(); dr != nil {
			return int(dr.GetStatus().GetCode()), nil, took
		}
		var attrs map[string]any
		for _, h := range resp.GetOkResponse().GetHeaders() {
			if h.GetHeader().GetKey() == "x-rill-attributes" {
				b, _ := base64.RawURLEncoding.DecodeString(h.GetHeader().GetValue())
				json.Unmarshal(b, &attrs)
			}
		}
		return 200, attrs, took
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s\n%s", what, d.Stderr())
			}
		}
	}

	code, attrs, _ := check()
	if code != 200 || attrs["department"] != "sales" || attrs["tier"] != "gold" || attrs["email"] != "admin@localhost" {
		t.Fatalf("plugin attributes: %d %v", code, attrs)
	}

	// A file change shows up once the cached result expires.
	write(`{"admin@localhost": {"department": "finance"}}`)
	waitFor("the new department", func() bool { _, a, _ := check(); return a["department"] == "finance" })

	// SIGKILL the jsonfile plugin: checks follow on_error=skip (200, without its attribute)
	// until it is back, restarted.
	api := adminclient.New(d.URL(), d.Token)
	status := func(name string) (pid int, restarts int64, healthy bool) {
		ps, err := api.PluginStatus(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if p.Name == name {
				return p.PID, p.Restarts, p.Healthy
			}
		}
		t.Fatalf("no plugin %s in %v", name, ps)
		return 0, 0, false
	}
	oldPID, _, healthy := status("hr")
	if oldPID == 0 || !healthy {
		t.Fatalf("hr plugin: pid %d healthy %v", oldPID, healthy)
	}
	if err := syscall.Kill(oldPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if code, _, _ := check(); code != 200 {
			t.Fatalf("with hr down (on_error skip) a check got %d", code)
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitFor("hr to be restarted", func() bool {
		pid, restarts, healthy := status("hr")
		return healthy && restarts >= 1 && pid != oldPID && pid != 0
	})
	waitFor("hr's attributes after the restart", func() bool { _, a, _ := check(); return a["department"] == "finance" })
	out, err := exec.Command(testenv.Bin(t, "rillctl"), "admin", "plugins", "--api-url", d.URL(), "--token", d.Token).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "hr") || !strings.Contains(string(out), "up") {
		t.Errorf("rillctl admin plugins: %v\n%s", err, out)
	}

	// A plugin slower than its timeout: on_error=deny answers 503 after the timeout, not after
	// the plugin's 2 s.
	slow.Store(true)
	time.Sleep(250 * time.Millisecond) // let the cached answer expire
	code, _, took := check()
	if code != 503 || took > time.Second {
		t.Errorf("slow plugin: status %d after %v (timeout 150ms)", code, took)
	}
	slow.Store(false)
	waitFor("crm to answer again", func() bool { c, _, _ := check(); return c == 200 })

	// Plugin calls are counted per plugin and result.
	m := scrape(t, d.URL())
	if m["rill_authd_plugin_calls_total{plugin=hr,result=ok}"] < 1 || m["rill_authd_plugin_calls_total{plugin=crm,result=error}"] < 1 ||
		m["rill_authd_plugin_call_duration_seconds_count{plugin=crm}"] < 2 {
		t.Errorf("plugin metrics: hr ok %v, crm error %v, crm timed %v", m["rill_authd_plugin_calls_total{plugin=hr,result=ok}"],
			m["rill_authd_plugin_calls_total{plugin=crm,result=error}"], m["rill_authd_plugin_call_duration_seconds_count{plugin=crm}"])
	}
	if m["rill_authd_checks_total{kind=user,reason=plugin,result=error}"] < 1 {
		t.Error("the plugin's 503 is not counted as reason=plugin")
	}

	// Shutdown stops every plugin process.
	hrPID, _, _ := status("hr")
	crmPID, _, _ := status("crm")
	d.Stop(t)
	for _, pid := range []int{hrPID, crmPID} {
		waitFor(fmt.Sprintf("plugin pid %d to be gone", pid), func() bool { return syscall.Kill(pid, 0) == syscall.ESRCH })
	}
}
