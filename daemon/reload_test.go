package daemon_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/adminapi/client"
	"github.com/rill-authd/rill-authd/internal/testenv"
)

// TestReloadOnSIGHUP: a real daemon with a --config file. One edit raises the token cap, turns
// on debug logging and moves the gRPC listener: after SIGHUP the cap and the level apply (a
// token over the old cap is issued, an allowed check is logged at debug level), the listener
// is named as needing a restart and keeps serving where it was. A bad file then changes
// nothing (the cap stays, the reason is logged); the metrics count one reload of each outcome.
func TestReloadOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "rill-authd.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(conf, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	base := fmt.Sprintf("data_dir: %s\nhttp_addr: 127.0.0.1:0\n", filepath.Join(dir, "data"))
	write(base + "grpc_addr: 127.0.0.1:0\nmax_tokens_per_owner: 2\nlog_level: info\n")
	d := testenv.SpawnArgs(t, filepath.Join(dir, "data"), "--config", conf)
	d.WaitStarted(t)
	su := client.New(d.URL(), d.Token)
	ctx := context.Background()
	issue := func() error {
		_, err := su.IssueToken(ctx, apiv1.TokenRequest{DisplayName: "t"})
		return err
	}
	// The bootstrap token and one more: the cap of 2 is reached.
	if err := issue(); err != nil {
		t.Fatal(err)
	}
	if err := issue(); !isStatus(err, 409) {
		t.Fatalf("third token under a cap of 2: %v, want 409", err)
	}
	if n := strings.Count(d.Stderr(), `msg="check allowed"`); n != 0 {
		t.Fatalf("allowed checks logged at info level: %d", n)
	}
	hup := func(wait string) {
		t.Helper()
		if err := d.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		if !d.WaitFor(wait, 5*time.Second) {
			t.Fatalf("after SIGHUP no %q:\n%s", wait, d.Stderr())
		}
	}

	write(base + "grpc_addr: 127.0.0.1:1\nmax_tokens_per_owner: 4\nlog_level: debug\n")
	hup("config reload: these settings changed")
	logs := d.Stderr()
	if !strings.Contains(logs, `changed="log-level: \"info\" -> \"debug\"; max-tokens-per-owner: 2 -> 4"`) {
		t.Errorf("the reload's line does not list what changed:\n%s", logs)
	}
	if !strings.Contains(logs, `restart_needed=--grpc-addr`) {
		t.Errorf("the moved listener is not named as needing a restart:\n%s", logs)
	}
	if err := issue(); err != nil {
		t.Fatalf("a token under the reloaded cap of 4: %v", err)
	}
	if code := checkStatus(t, d, d.Token); code != 200 {
		t.Fatalf("check: %d", code)
	}
	if !d.WaitFor(`level=DEBUG msg="check allowed"`, 5*time.Second) {
		t.Errorf("the reloaded log level does not apply: no debug line for an allowed check:\n%s", d.Stderr())
	}
	conn := dialGRPC(t, d.GRPCAddr, nil)
	if _, err := grpcCheck(conn, d.Token); err != nil {
		t.Fatalf("the gRPC listener moved or stopped on a reload: %v", err)
	}

	// A bad file: nothing applies, the reason is logged, the daemon serves on.
	write(base + "grpc_addr: 127.0.0.1:1\nmax_tokens_per_owner: 100\nlog_levle: warn\n")
	hup("config reload failed; the previous configuration stays in force")
	if !strings.Contains(d.Stderr(), `unknown key \"log_levle\", did you mean \"log_level\"?`) {
		t.Errorf("the reason of the refusal is not logged:\n%s", d.Stderr())
	}
	if err := issue(); err != nil { // the 4th
		t.Fatal(err)
	}
	if err := issue(); !isStatus(err, 409) {
		t.Fatalf("a token past the cap of 4 after a refused reload (which asked for 100): %v, want 409", err)
	}
	write(base + "grpc_addr: 127.0.0.1:1\nmax_tokens_per_owner: -1\nlog_level: debug\n")
	hup("--max-tokens-per-owner: want 0 or more")

	for series, want := range map[string]float64{
		`rill_authd_config_reloads_total{outcome="ok"}`:    1,
		`rill_authd_config_reloads_total{outcome="error"}`: 2,
		`rill_authd_config_last_reload_successful`:         0,
	} {
		if got := metricValue(t, d, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if ts := metricValue(t, d, "rill_authd_config_last_reload_timestamp_seconds"); time.Since(time.Unix(int64(ts), 0)) > time.Minute {
		t.Errorf("rill_authd_config_last_reload_timestamp_seconds = %v, not the reload of a moment ago", ts)
	}
}

// TestReloadPlugins: SIGHUP adds, keeps and removes attribute-source plugins. A plugin added
// gives its attribute on the very next check (a decision memoized without it is made again);
// a plugin that cannot start refuses the reload and leaves the running one in service, same
// process; a plugin removed gives nothing on the next check and its process is stopped.
func TestReloadPlugins(t *testing.T) {
	dir := t.TempDir()
	attrsFile := filepath.Join(dir, "attrs.json")
	if err := os.WriteFile(attrsFile, []byte(`{"admin@localhost": {"department": "sales"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Dir(testenv.Bin(t, "rill-authd"))
	testenv.Bin(t, "plugins/jsonfile")
	conf := filepath.Join(dir, "config.yaml")
	hr := fmt.Sprintf("  - name: hr\n    command: %s/plugins/jsonfile\n    args: [\"--file\", %q]\n    cache_ttl: 1h\n", bin, attrsFile)
	write := func(plugins ...string) {
		t.Helper()
		s := "default_org: acme\ndefault_project: web\n"
		if len(plugins) > 0 {
			s += "plugins:\n" + strings.Join(plugins, "")
		}
		if err := os.WriteFile(conf, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write()
	d := testenv.Start(t, filepath.Join(dir, "data"), "--config", conf)
	conn := dialGRPC(t, d.GRPCAddr, nil)
	department := func() any {
		t.Helper()
		resp, err := authv3.NewAuthorizationClient(conn).Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: "GET", Path: "/v1/instances/default/query", Headers: map[string]string{"authorization": "Bearer " + d.Token}}}}})
		if err != nil || resp.GetOkResponse() == nil {
			t.Fatalf("check: %v %v", resp.GetStatus(), err)
		}
		var attrs map[string]any
		for _, h := range resp.GetOkResponse().GetHeaders() {
			if h.GetHeader().GetKey() == "x-rill-attributes" {
				b, _ := base64.RawURLEncoding.DecodeString(h.GetHeader().GetValue())
				json.Unmarshal(b, &attrs)
			}
		}
		return attrs["department"]
	}
	reloads := 0
	hup := func(want string) {
		t.Helper()
		reloads++
		if err := d.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		if !d.WaitFor(want, 10*time.Second) {
			t.Fatalf("reload %d: no %q:\n%s", reloads, want, d.Stderr())
		}
	}
	api := client.New(d.URL(), d.Token)
	pidOf := func(name string) int {
		t.Helper()
		ps, err := api.PluginStatus(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if p.Name == name {
				return p.PID
			}
		}
		return 0
	}

	if dep := department(); dep != nil {
		t.Fatalf("department %v without a plugin", dep)
	}
	write(hr)
	hup(`plugins: (none) -> [hr]`)
	if dep := department(); dep != "sales" {
		t.Fatalf("the next check after adding the plugin: department %v, want sales", dep)
	}
	pid := pidOf("hr")
	if pid == 0 {
		t.Fatal("hr has no process")
	}

	write(hr, "  - name: broken\n    command: "+filepath.Join(dir, "no-such-plugin")+"\n")
	hup("config reload failed")
	if !d.WaitFor("start plugin broken", time.Second) {
		t.Errorf("the failed plugin is not named:\n%s", d.Stderr())
	}
	if dep := department(); dep != "sales" || pidOf("hr") != pid || pidOf("broken") != 0 {
		t.Fatalf("after a refused reload: department %v, hr pid %d (was %d), broken pid %d", dep, pidOf("hr"), pid, pidOf("broken"))
	}

	write()
	hup(`plugins: [hr] -> (none)`)
	if dep := department(); dep != nil {
		t.Fatalf("the next check after removing the plugin: department %v", dep)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("the removed plugin's process %d still runs", pid)
	}
}
