package adminapi_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
)

// TestAllowedNetworksAPI: issue bodies of user tokens, service tokens (and service create) and
// public URLs take allowed_networks (and public URLs allowed_origins), stored canonical and
// shown by lists; a bad CIDR or origin is a 400 naming it and issues nothing; PATCH changes
// and clears them; the admin API refuses a bound token used from elsewhere (403
// network_not_allowed, not 401) and takes it once it is bound here.
func TestAllowedNetworksAPI(t *testing.T) {
	e := setup(t)
	issued := func(b []byte) apiv1.IssuedToken {
		t.Helper()
		var it apiv1.IssuedToken
		if err := json.Unmarshal(b, &it); err != nil {
			t.Fatal(err)
		}
		return it
	}
	code, _, b := e.call(t, "admin", "POST", "/v1/tokens", `{"display_name":"office","allowed_networks":["10.1.2.3/8","2001:DB8::1"]}`)
	if code != 201 {
		t.Fatalf("issue: %d %s", code, b)
	}
	office := issued(b)
	if want := []string{"10.0.0.0/8", "2001:db8::1/128"}; !slices.Equal(office.AllowedNetworks, want) {
		t.Errorf("issued allowed_networks %q, want %q", office.AllowedNetworks, want)
	}
	// Used from 127.0.0.1: refused, 403 and not 401.
	e.tokens["office"] = office.Token
	if code, apiErr, _ := e.call(t, "office", "GET", "/v1/tokens", ""); code != 403 || !strings.Contains(apiErr.Message, "network_not_allowed") {
		t.Errorf("a bound token from elsewhere on the API: %d %q, want 403 network_not_allowed", code, apiErr.Message)
	}
	// Introspection shows them.
	code, _, b = e.call(t, "admin", "POST", "/v1/introspect", `{"token":"`+office.Token+`"}`)
	var in apiv1.Introspection
	if code != 200 || json.Unmarshal(b, &in) != nil || !in.Active || !slices.Equal(in.AllowedNetworks, office.AllowedNetworks) {
		t.Errorf("introspection of a bound token: %d %s", code, b)
	}
	// Listed with its networks.
	listed := func() []apiv1.TokenInfo {
		t.Helper()
		code, _, b := e.call(t, "admin", "GET", "/v1/tokens", "")
		var list []apiv1.TokenInfo
		if code != 200 || json.Unmarshal(b, &list) != nil {
			t.Fatalf("list: %d %s", code, b)
		}
		return list
	}
	found := false
	for _, ti := range listed() {
		if ti.ID == office.ID {
			found = slices.Equal(ti.AllowedNetworks, office.AllowedNetworks)
		}
	}
	if !found {
		t.Errorf("the list does not show the token's networks: %+v", listed())
	}
	before := len(listed())
	for _, tc := range []struct{ body, says string }{
		{`{"display_name":"x","allowed_networks":["10.0.0.300/8"]}`, `allowed_networks[0]: "10.0.0.300/8" is not a CIDR`},
		{`{"display_name":"x","allowed_networks":["10.0.0.0/8","example.com"]}`, `allowed_networks[1]`},
		{`{"display_name":"x","allowed_networks":"10.0.0.0/8"}`, `allowed_networks`},
		{`{"display_name":"x","allowed_origins":["https://a.example"]}`, `allowed_origins`}, // not for user tokens
	} {
		if code, apiErr, _ := e.call(t, "admin", "POST", "/v1/tokens", tc.body); code != 400 || !strings.Contains(apiErr.Message, tc.says) {
			t.Errorf("issue %s: %d %q, want 400 saying %q", tc.body, code, apiErr.Message, tc.says)
		}
	}
	if len(listed()) != before {
		t.Error("a refused issue stored a token")
	}

	// PATCH: bound here, the token works; origins are not for user tokens; bad input changes nothing.
	for _, tc := range []struct {
		body string
		want int
	}{
		{`{"allowed_networks":["not a network"]}`, 400},
		{`{"allowed_origins":["https://a.example"]}`, 400},
		{`{}`, 400},
		{`{"allowed_networks":["127.0.0.0/8","::1"]}`, 200},
	} {
		if code, apiErr, _ := e.call(t, "admin", "PATCH", "/v1/tokens/"+office.ID, tc.body); code != tc.want {
			t.Errorf("PATCH %s: %d %q, want %d", tc.body, code, apiErr.Message, tc.want)
		}
	}
	if code, apiErr, _ := e.call(t, "office", "GET", "/v1/tokens", ""); code != 200 {
		t.Errorf("the token bound to 127.0.0.0/8 from 127.0.0.1: %d %q", code, apiErr.Message)
	}
	// Another user's token is not the caller's to change.
	if code, _, _ := e.call(t, "editor", "PATCH", "/v1/tokens/"+office.ID, `{"allowed_networks":[]}`); code != 404 && code != 403 {
		t.Errorf("PATCH of another user's token: %d, want 403 or 404", code)
	}

	// Service tokens: the body is optional; create and issue take networks; PATCH clears.
	if code, _, b := e.call(t, "admin", "POST", "/v1/orgs/acme/services/robot/tokens", ""); code != 201 {
		t.Errorf("issue a service token without a body: %d %s", code, b)
	}
	code, _, b = e.call(t, "admin", "POST", "/v1/orgs/acme/services/robot/tokens", `{"allowed_networks":["192.0.2.0/24"]}`)
	if code != 201 {
		t.Fatalf("issue a bound service token: %d %s", code, b)
	}
	st := issued(b)
	if !slices.Equal(st.AllowedNetworks, []string{"192.0.2.0/24"}) {
		t.Errorf("service token allowed_networks %q", st.AllowedNetworks)
	}
	if code, apiErr, _ := e.call(t, "admin", "POST", "/v1/orgs/acme/services/robot/tokens", `{"allowed_networks":["192.0.2.0/33"]}`); code != 400 || !strings.Contains(apiErr.Message, "192.0.2.0/33") {
		t.Errorf("bad service token network: %d %q", code, apiErr.Message)
	}
	code, _, b = e.call(t, "admin", "POST", "/v1/orgs/acme/services", `{"name":"fenced","org_role":"viewer","allowed_networks":["198.51.100.0/24"]}`)
	var created apiv1.ServiceCreated
	if code != 201 || json.Unmarshal(b, &created) != nil || !slices.Equal(created.Token.AllowedNetworks, []string{"198.51.100.0/24"}) {
		t.Errorf("service create with allowed_networks: %d %s", code, b)
	}
	if code, _, _ := e.call(t, "admin", "POST", "/v1/orgs/acme/services", `{"name":"fenced2","org_role":"viewer","allowed_networks":["x"]}`); code != 400 {
		t.Errorf("service create with a bad network: %d, want 400", code)
	}
	if code, _, _ := e.call(t, "admin", "GET", "/v1/orgs/acme/services/fenced2", ""); code != 404 {
		t.Errorf("a refused service create left the service: %d", code)
	}
	if code, _, b := e.call(t, "admin", "PATCH", "/v1/orgs/acme/services/robot/tokens/"+st.ID, `{"allowed_networks":[]}`); code != 200 || strings.Contains(string(b), "allowed_networks") || strings.Contains(string(b), "192.0.2") {
		t.Errorf("PATCH clearing a service token: %d %s", code, b)
	}
	if code, _, b := e.call(t, "viewer", "PATCH", "/v1/orgs/acme/services/robot/tokens/"+st.ID, `{"allowed_networks":["127.0.0.1"]}`); code != 403 {
		t.Errorf("a viewer's PATCH of a service token: %d %s", code, b)
	}

	// Public URLs: networks and origins; a bad origin is a 400; PATCH changes them.
	code, _, b = e.call(t, "admin", "POST", "/v1/orgs/acme/projects/web/tokens/magic",
		`{"resources":[{"type":"explore","name":"s"}],"allowed_origins":["https://Shop.example.com/"],"allowed_networks":["0.0.0.0/0"]}`)
	var mt apiv1.IssuedMagicToken
	if code != 201 || json.Unmarshal(b, &mt) != nil || !slices.Equal(mt.AllowedOrigins, []string{"https://shop.example.com"}) {
		t.Fatalf("public URL with allowed_origins: %d %s", code, b)
	}
	if code, apiErr, _ := e.call(t, "admin", "POST", "/v1/orgs/acme/projects/web/tokens/magic",
		`{"resources":[{"type":"explore","name":"s"}],"allowed_origins":["https://shop.example.com/embed"]}`); code != 400 || !strings.Contains(apiErr.Message, "allowed_origins[0]") {
		t.Errorf("public URL with a bad origin: %d %q", code, apiErr.Message)
	}
	code, _, b = e.call(t, "admin", "PATCH", "/v1/magic-tokens/"+mt.ID, `{"allowed_origins":["https://other.example.com"]}`)
	var edited apiv1.MagicToken
	if code != 200 || json.Unmarshal(b, &edited) != nil || !slices.Equal(edited.AllowedOrigins, []string{"https://other.example.com"}) ||
		!slices.Equal(edited.AllowedNetworks, []string{"0.0.0.0/0"}) {
		t.Errorf("PATCH of a public URL: %d %s", code, b)
	}
}
