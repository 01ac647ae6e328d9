package adminapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/store"
)

// TestTokenPolicyAccess: an org's token policy is read and set by its admins (users and
// services with manage_org) and superusers, by no one else; a bad policy is a 400 and changes
// nothing; a set is audited with the policy.
func TestTokenPolicyAccess(t *testing.T) {
	e := setup(t)
	const path = "/v1/orgs/acme/token-policy"
	const good = `{"max_user_token_ttl_minutes":1440,"max_service_token_ttl_minutes":30,"max_magic_token_ttl_minutes":120,"require_expiry":true}`
	for _, tc := range []struct {
		who, method, body string
		want              int
	}{
		{"admin", "GET", "", 200},
		{"su", "GET", "", 200},
		{"svc-admin", "GET", "", 200},
		{"editor", "GET", "", 403},
		{"viewer", "GET", "", 403},
		{"outsider", "GET", "", 403},
		{"svc-viewer", "GET", "", 403},
		{"", "GET", "", 401},
		{"editor", "PUT", good, 403},
		{"viewer", "PUT", good, 403},
		{"svc-viewer", "PUT", good, 403},
		{"admin", "PUT", `{"max_user_token_ttl_minutes":-1}`, 400},
		{"admin", "PUT", `{"max_user_token_ttl_minutes":999999999999}`, 400},
		{"admin", "PUT", `{"max_user_token_ttl_minutes":"1"}`, 400},
		{"admin", "PUT", `{"max_user_ttl":1}`, 400},
		{"admin", "PUT", ``, 400},
		{"admin", "PUT", good, 200},
		{"su", "PUT", good, 200},
		{"svc-admin", "PUT", good, 200},
	} {
		code, apiErr, _ := e.call(t, tc.who, tc.method, path, tc.body)
		if code != tc.want {
			t.Errorf("%s %s %s: %d %q, want %d", tc.who, tc.method, tc.body, code, apiErr.Message, tc.want)
		}
		if tc.want != 200 {
			if o, _ := e.st.GetOrg(context.Background(), "acme"); !o.TokenPolicy.IsZero() && o.TokenPolicy.MaxServiceTokenTTLMinutes != 30 {
				t.Errorf("a refused PUT changed the policy: %+v", o.TokenPolicy)
			}
		}
	}
	code, _, b := e.call(t, "admin", "GET", path, "")
	var got apiv1.TokenPolicy
	if err := json.Unmarshal(b, &got); code != 200 || err != nil || got != (apiv1.TokenPolicy{MaxUserTokenTTLMinutes: 1440, MaxServiceTokenTTLMinutes: 30, MaxMagicTokenTTLMinutes: 120, RequireExpiry: true}) {
		t.Errorf("GET after PUT: %d %s", code, b)
	}
	// Another org's is its own, every field present (0: no limit).
	_, _, b = e.call(t, "su", "GET", "/v1/orgs/other/token-policy", "")
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil || len(raw) != 4 || raw["max_user_token_ttl_minutes"] != 0.0 || raw["require_expiry"] != false {
		t.Errorf("another org's policy: %s", b)
	}
	if code, _, _ := e.call(t, "su", "GET", "/v1/orgs/nope/token-policy", ""); code != 404 {
		t.Errorf("an unknown org: %d, want 404", code)
	}
	evs, err := e.st.ListAudit(context.Background(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	ok, denied := 0, 0
	for _, ev := range evs {
		if ev.Action != "org.token_policy.set" {
			continue
		}
		switch {
		case ev.Outcome == "ok" && strings.Contains(ev.Target, "org:acme user:1440m service:30m magic:120m require_expiry:true"):
			ok++
		case strings.HasPrefix(ev.Outcome, "denied"):
			denied++
		}
	}
	if ok != 3 || denied != 3 {
		t.Errorf("audit: %d sets and %d denials, want 3 and 3: %+v", ok, denied, evs)
	}
}

// TestTokenPolicyIssue: with acme's policy set, every way of issuing a token of acme's is held
// to it (400 naming the limit), within it issues, an org without a policy is not bound, a
// user token answers to every org its user is in, runtime JWTs are capped by it, and tokens
// from before the policy are marked in lists.
func TestTokenPolicyIssue(t *testing.T) {
	e := setup(t)
	if code, apiErr, _ := e.call(t, "admin", "PUT", "/v1/orgs/acme/token-policy",
		`{"max_user_token_ttl_minutes":60,"max_service_token_ttl_minutes":30,"max_magic_token_ttl_minutes":120}`); code != 200 {
		t.Fatalf("set policy: %d %s", code, apiErr.Message)
	}
	if code, apiErr, _ := e.call(t, "su", "PUT", "/v1/orgs/other/token-policy", `{"require_expiry":true}`); code != 200 {
		t.Fatalf("set policy: %d %s", code, apiErr.Message)
	}
	const magic = `{"resources":[{"type":"explore","name":"s"}]`
	for _, tc := range []struct {
		name, who, method, path, body string
		want                          int
		msg                           string
	}{
		{"user token, never expires", "admin", "POST", "/v1/tokens", `{"display_name":"a"}`, 400, "the token policy of org acme: user tokens must expire within 1 hour (60 minutes)"},
		{"user token, too long", "admin", "POST", "/v1/tokens", `{"display_name":"a","ttl_minutes":61}`, 400, "user tokens may live at most 1 hour (60 minutes), not 61 minutes"},
		{"user token, within", "admin", "POST", "/v1/tokens", `{"display_name":"a","ttl_minutes":60}`, 201, ""},
		{"superuser in no org", "su", "POST", "/v1/tokens", `{"display_name":"a"}`, 201, ""},
		{"superuser for a member", "su", "POST", "/v1/tokens", `{"display_name":"a","user_email":"admin@acme.io","ttl_minutes":90}`, 400, "org acme"},
		{"service create, never expires", "admin", "POST", "/v1/orgs/acme/services", `{"name":"x","org_role":"viewer"}`, 400, "service tokens must expire within 30 minutes"},
		{"service create, too long", "admin", "POST", "/v1/orgs/acme/services", `{"name":"x","org_role":"viewer","ttl_minutes":31}`, 400, "at most 30 minutes, not 31 minutes"},
		{"service create, within", "admin", "POST", "/v1/orgs/acme/services", `{"name":"x","org_role":"viewer","ttl_minutes":30}`, 201, ""},
		{"service token, no body", "admin", "POST", "/v1/orgs/acme/services/robot/tokens", ``, 400, "service tokens must expire within 30 minutes"},
		{"service token, too long", "admin", "POST", "/v1/orgs/acme/services/robot/tokens", `{"ttl_minutes":45}`, 400, "not 45 minutes"},
		{"service token, bad ttl", "admin", "POST", "/v1/orgs/acme/services/robot/tokens", `{"ttl_minutes":-5}`, 400, "ttl_minutes must be 0"},
		{"service token, unknown field", "admin", "POST", "/v1/orgs/acme/services/robot/tokens", `{"ttl":5}`, 400, "unknown field"},
		{"service token, within", "admin", "POST", "/v1/orgs/acme/services/robot/tokens", `{"ttl_minutes":10}`, 201, ""},
		{"other org requires expiry", "su", "POST", "/v1/orgs/other/services", `{"name":"y","org_role":"viewer"}`, 400, "the token policy of org other: service tokens must expire; give a ttl"},
		{"other org, any ttl", "su", "POST", "/v1/orgs/other/services", `{"name":"y","org_role":"viewer","ttl_minutes":525600}`, 201, ""},
		{"public URL, never expires", "admin", "POST", "/v1/orgs/acme/projects/web/tokens/magic", magic + `}`, 400, "public URLs must expire within 2 hours (120 minutes)"},
		{"public URL, too long", "admin", "POST", "/v1/orgs/acme/projects/web/tokens/magic", magic + `,"ttl_minutes":121}`, 400, "public URLs may live at most 2 hours"},
		{"public URL, within", "admin", "POST", "/v1/orgs/acme/projects/web/tokens/magic", magic + `,"ttl_minutes":120}`, 201, ""},
		{"credentials, user beyond", "admin", "POST", "/v1/orgs/acme/projects/web/credentials", `{"ttl_seconds":3601}`, 400, "ttl_seconds must be at most 3600: the token policy of org acme: user tokens may live at most 1 hour"},
		{"credentials, service beyond", "svc-admin", "POST", "/v1/orgs/acme/projects/web/credentials", `{"ttl_seconds":1801}`, 400, "ttl_seconds must be at most 1800"},
		{"credentials, within", "svc-admin", "POST", "/v1/orgs/acme/projects/web/credentials", `{"ttl_seconds":1800}`, 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, apiErr, _ := e.call(t, tc.who, tc.method, tc.path, tc.body)
			if code != tc.want || !strings.Contains(apiErr.Message, tc.msg) {
				t.Errorf("%d %q, want %d with %q", code, apiErr.Message, tc.want, tc.msg)
			}
		})
	}
	// No ttl_seconds: the default (a day) is capped to the caller's limit.
	for who, want := range map[string]uint32{"admin": 3600, "svc-admin": 1800} {
		if code, r, msg := e.credentials(t, who, "acme", "web", ""); code != 200 || r.TTLSeconds != want {
			t.Errorf("%s's credentials without ttl_seconds: %d %q ttl %d, want %d", who, code, msg, r.TTLSeconds, want)
		}
	}
	if code, r, msg := e.credentials(t, "su", "other", "web", ""); code != 200 || r.TTLSeconds != 86400 {
		t.Errorf("credentials in an org with no limit: %d %q ttl %d, want 86400", code, msg, r.TTLSeconds)
	}

	// Lists mark the tokens from before the policy (setup's never expire), not the new ones.
	for _, tc := range []struct{ who, path, want string }{
		{"admin", "/v1/tokens", "never expires; org acme allows 1 hour"},
		{"admin", "/v1/orgs/acme/services/robot/tokens", "never expires; org acme allows 30 minutes"},
	} {
		code, _, b := e.call(t, tc.who, "GET", tc.path, "")
		var ts []apiv1.TokenInfo
		if err := json.Unmarshal(b, &ts); code != 200 || err != nil || len(ts) != 2 {
			t.Fatalf("%s: %d %s", tc.path, code, b)
		}
		if ts[0].BeyondPolicy != tc.want || ts[1].BeyondPolicy != "" || ts[1].ExpiresAt.IsZero() {
			t.Errorf("%s: beyond_policy %q and %q, want %q and none", tc.path, ts[0].BeyondPolicy, ts[1].BeyondPolicy, tc.want)
		}
	}
	if _, _, b := e.call(t, "viewer", "GET", "/v1/tokens", ""); !strings.Contains(string(b), `"beyond_policy": "never expires; org acme allows 1 hour"`) {
		t.Errorf("a viewer's own list: %s", b)
	}
	if code, _, _ := e.call(t, "admin", "PUT", "/v1/orgs/acme/token-policy", `{}`); code != 200 {
		t.Fatal("clearing the policy")
	}
	if _, _, b := e.call(t, "admin", "GET", "/v1/tokens", ""); strings.Contains(string(b), "beyond_policy") {
		t.Errorf("with no policy, a token is still marked: %s", b)
	}
	if code, apiErr, _ := e.call(t, "admin", "POST", "/v1/tokens", `{"display_name":"b"}`); code != http.StatusCreated {
		t.Errorf("with the policy cleared, a token that never expires: %d %s", code, apiErr.Message)
	}
}
