package ctl_test

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/internal/testenv"
)

// TestAllowNetworkCLI: the real rillctl against the real daemon (--trusted-proxy-hops 1):
// --allow-network on token issue, service create and service token issue binds the token (a
// bad CIDR is refused with the API's message and issues nothing); the bound token is refused
// 403 network_not_allowed by the admin API and by the HTTP check unless X-Forwarded-For's last
// entry is in its networks (an entry the client put before it changes nothing); token edit and
// service token edit change and clear the networks.
func TestAllowNetworkCLI(t *testing.T) { forEachStore(t, allowNetworkCLI) }

func allowNetworkCLI(t *testing.T, storeArgs ...string) {
	d := testenv.Start(t, "", append(storeArgs, "--trusted-proxy-hops", "1")...)
	root := cli{t: t, bin: testenv.Bin(t, "rillctl"), env: []string{"RILLCTL_API_URL=" + d.URL(), "RILLCTL_ORG=acme", "TZ=UTC"}}
	su := root.as(d.Token)
	su.ok("org", "create", "acme")

	var office apiv1.IssuedToken
	if err := json.Unmarshal([]byte(su.ok("token", "issue", "--display-name", "office", "--allow-network", "10.1.2.3/8", "--allow-network", "2001:DB8::/32", "--json")), &office); err != nil {
		t.Fatal(err)
	}
	if want := []string{"10.0.0.0/8", "2001:db8::/32"}; !slices.Equal(office.AllowedNetworks, want) {
		t.Errorf("issued networks %q, want %q", office.AllowedNetworks, want)
	}
	su.fails(`allowed_networks[0]: "10.0.0.300/8" is not a CIDR`, "token", "issue", "--display-name", "bad", "--allow-network", "10.0.0.300/8")
	if out := su.ok("token", "list", "--json"); strings.Contains(out, `"bad"`) {
		t.Errorf("a refused issue left a token: %s", out)
	}

	// The admin API: rillctl sends no X-Forwarded-For, so the client is unknown: refused.
	root.as(office.Token).fails("network_not_allowed", "whoami")

	// The HTTP check: the last X-Forwarded-For entry is the client.
	check := func(tok string, xff ...string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", d.URL()+"/ext_authz/v1/orgs/acme/anything", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		for _, x := range xff {
			req.Header.Add("X-Forwarded-For", x)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := check(office.Token, "10.9.9.9"); code != 200 {
		t.Errorf("from 10.9.9.9: %d %s, want 200", code, body)
	}
	if code, body := check(office.Token, "2001:db8::1"); code != 200 {
		t.Errorf("from 2001:db8::1: %d %s, want 200", code, body)
	}
	if code, body := check(office.Token, "10.9.9.9, 192.0.2.1"); code != 403 || !strings.Contains(body, "network_not_allowed") {
		t.Errorf("spoofed 10.9.9.9 before the proxy's 192.0.2.1: %d %s, want 403 network_not_allowed", code, body)
	}
	if code, body := check(office.Token); code != 403 {
		t.Errorf("no X-Forwarded-For: %d %s, want 403", code, body)
	}

	// token edit: --any-network frees it; the API takes it again.
	if out := su.ok("token", "edit", office.Prefix, "--allow-network", "192.0.2.0/24"); !strings.Contains(out, "only from 192.0.2.0/24") {
		t.Errorf("token edit printed %q", out)
	}
	if code, _ := check(office.Token, "10.9.9.9"); code != 403 {
		t.Errorf("after the edit, from 10.9.9.9: %d, want 403 (the cached allow was kept)", code)
	}
	su.fails("give --allow-network or --any-network, not both", "token", "edit", office.Prefix, "--any-network", "--allow-network", "10.0.0.0/8")
	if out := su.ok("token", "edit", office.Prefix, "--any-network"); !strings.Contains(out, "any network") {
		t.Errorf("token edit --any-network printed %q", out)
	}
	root.as(office.Token).ok("whoami")

	// Services: create and token issue take --allow-network; service token edit clears it.
	if out := su.ok("service", "create", "etl", "--org-role", "viewer", "--allow-network", "192.0.2.0/24"); !strings.Contains(out, "Access token: rill_svc_") {
		t.Errorf("service create printed %q", out)
	}
	out := su.ok("service", "token", "issue", "etl", "--allow-network", "198.51.100.7")
	tok := strings.TrimSpace(strings.TrimPrefix(out, "Issued token: "))
	if code, _ := check(tok, "198.51.100.7"); code != 200 {
		t.Errorf("service token from its address: %d", code)
	}
	if code, _ := check(tok, "198.51.100.8"); code != 403 {
		t.Errorf("service token from the next address: %d", code)
	}
	var list []apiv1.TokenInfo
	if err := json.Unmarshal([]byte(su.ok("service", "token", "list", "etl", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	bound := 0
	for _, ti := range list {
		if len(ti.AllowedNetworks) > 0 {
			bound++
		}
	}
	if len(list) != 2 || bound != 2 {
		t.Errorf("service token list: %+v, want two bound tokens", list)
	}
	su.ok("service", "token", "edit", "etl", tok[:19], "--any-network")
	if code, _ := check(tok, "198.51.100.8"); code != 200 {
		t.Errorf("service token after --any-network: %d", code)
	}
}
