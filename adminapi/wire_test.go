package adminapi

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/plugins"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// TestWireShapes pins the JSON of every response built from a server type: each conversion
// carries every field, and apiv1's tags give the bodies clients have always read (the store's own
// JSON, which these goldens were taken from, may now change freely).
func TestWireShapes(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	later := at.Add(time.Hour)
	attrs := map[string]any{"region": "us-west"}
	tokID, err := token.ParseID("0b7e3a52-8f1c-4d6e-9a2b-3c4d5e6f7a8b")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		full, zero any // converted from a store value with every field set, and from a zero one
		wantFull   string
		wantZero   string
	}{
		{"org", wireOrg(store.Org{Name: "acme", CreatedAt: at}), wireOrg(store.Org{}),
			`{"name":"acme","created_at":"2025-01-02T03:04:05Z"}`,
			`{"name":"","created_at":"0001-01-01T00:00:00Z"}`},
		{"project", wireProject(store.Project{Org: "acme", Name: "web", CreatedAt: at}), wireProject(store.Project{}),
			`{"org":"acme","name":"web","created_at":"2025-01-02T03:04:05Z"}`,
			`{"org":"","name":"","created_at":"0001-01-01T00:00:00Z"}`},
		{"user", wireUser(store.User{ID: "u1", Email: "a@acme.io", DisplayName: "A", OrgRoles: map[string]policy.Role{"acme": "admin"},
			ProjectRoles: map[string]policy.Role{"acme/web": "viewer"}, Orgs: map[string]store.UserOrg{"acme": {Groups: []string{"g"}, Attributes: attrs}},
			Restricted: map[string]store.Restricted{"acme/web": {Resources: []token.ResourceName{{Kind: token.KindExplore, Name: "e"}}}},
			Superuser:  true, CreatedAt: at, UpdatedAt: later}, "acme"), wireUser(store.User{}, "acme"),
			`{"id":"u1","email":"a@acme.io","display_name":"A","org_roles":{"acme":"admin"},"project_roles":{"acme/web":"viewer"},` +
				`"groups":["g"],"attributes":{"region":"us-west"},"orgs":{"acme":{"groups":["g"],"attributes":{"region":"us-west"}}},` +
				`"restricted":{"acme/web":[{"type":"rill.runtime.v1.Explore","name":"e"}]},"superuser":true,"created_at":"2025-01-02T03:04:05Z","updated_at":"2025-01-02T04:04:05Z"}`,
			`{"id":"","email":"","created_at":"0001-01-01T00:00:00Z","updated_at":"0001-01-01T00:00:00Z"}`},
		{"service", wireService(store.Service{ID: "s1", Org: "acme", Name: "ci", OrgRole: "viewer", ProjectRoles: map[string]policy.Role{"web": "admin"},
			Attributes: attrs, CreatedBy: "user:a@acme.io", CreatedAt: at, UpdatedAt: later}), wireService(store.Service{}),
			`{"id":"s1","org":"acme","name":"ci","org_role":"viewer","project_roles":{"web":"admin"},"attributes":{"region":"us-west"},` +
				`"created_by":"user:a@acme.io","created_at":"2025-01-02T03:04:05Z","updated_at":"2025-01-02T04:04:05Z"}`,
			`{"id":"","org":"","name":"","created_at":"0001-01-01T00:00:00Z","updated_at":"0001-01-01T00:00:00Z"}`},
		{"audit event", wireAuditEvent(store.AuditEvent{Time: at, Actor: "user:a", Action: "org.create", Target: "org:acme", Outcome: "ok", Detail: "d"}),
			wireAuditEvent(store.AuditEvent{}),
			`{"time":"2025-01-02T03:04:05Z","actor":"user:a","action":"org.create","target":"org:acme","outcome":"ok","detail":"d"}`,
			`{"time":"0001-01-01T00:00:00Z","actor":"","action":"","target":"","outcome":""}`},
		{"plugin status", wirePluginStatus(plugins.Status{Name: "ldap", Command: "/bin/ldap", Healthy: true, PID: 42, Restarts: 1, Calls: 2, Errors: 3, LastError: "e"}),
			wirePluginStatus(plugins.Status{}),
			`{"name":"ldap","command":"/bin/ldap","healthy":true,"pid":42,"restarts":1,"calls":2,"errors":3,"last_error":"e"}`,
			`{"name":"","command":"","healthy":false,"restarts":0,"calls":0,"errors":0}`},
		{"token", represented(beyond(tokenInfo(store.Token{ID: tokID, Kind: token.User, OwnerID: "u1", DisplayName: "laptop", Prefix: "rill_usr_abc", Hash: token.Hash{1},
			CreatedBy: "user:a", CreatedAt: at, ExpiresAt: later, LastUsedAt: later, LastUsedIP: "203.0.113.7", LastUsedUserAgent: "curl/8",
			AllowedNetworks: []string{"10.0.0.0/8"}, AllowedOrigins: []string{"https://a.example"}}))), tokenInfo(store.Token{}),
			`{"id":"0b7e3a52-8f1c-4d6e-9a2b-3c4d5e6f7a8b","prefix":"rill_usr_abc","kind":"usr","display_name":"laptop","created_by":"user:a","created_at":"2025-01-02T03:04:05Z",` +
				`"expires_at":"2025-01-02T04:04:05Z","last_used_at":"2025-01-02T04:04:05Z","last_used_ip":"203.0.113.7","last_used_user_agent":"curl/8","beyond_policy":"lives 1 hour; org acme allows 1 minute","allowed_networks":["10.0.0.0/8"],"allowed_origins":["https://a.example"],` +
				`"representing_user_id":"u1","representing_email":"a@acme.io","issued_by":"root@x.io"}`,
			`{"id":"00000000-0000-0000-0000-000000000000","prefix":"","kind":"","created_at":"0001-01-01T00:00:00Z"}`},
		{"token policy", wireTokenPolicy(store.TokenPolicy{MaxUserTokenTTLMinutes: 1, MaxServiceTokenTTLMinutes: 2, MaxMagicTokenTTLMinutes: 3, RequireExpiry: true}),
			wireTokenPolicy(store.TokenPolicy{}),
			`{"max_user_token_ttl_minutes":1,"max_service_token_ttl_minutes":2,"max_magic_token_ttl_minutes":3,"require_expiry":true}`,
			`{"max_user_token_ttl_minutes":0,"max_service_token_ttl_minutes":0,"max_magic_token_ttl_minutes":0,"require_expiry":false}`},
		{"list", wireList([]store.Org{{Name: "acme", CreatedAt: at}}, wireOrg), wireList([]store.Org(nil), wireOrg),
			`[{"name":"acme","created_at":"2025-01-02T03:04:05Z"}]`, `[]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if f := zeroField(reflect.ValueOf(tc.full)); f != "" {
				t.Errorf("field %s is zero: the conversion drops it, or the test does not set it", f)
			}
			for _, c := range []struct {
				v    any
				want string
			}{{tc.full, tc.wantFull}, {tc.zero, tc.wantZero}} {
				b, err := json.Marshal(c.v)
				if err != nil {
					t.Fatal(err)
				}
				if string(b) != c.want {
					t.Errorf("JSON\n got %s\nwant %s", b, c.want)
				}
			}
		})
	}
}

// zeroField names the first zero field of a struct (or of a slice's first element), or "".
func zeroField(v reflect.Value) string {
	if v.Kind() == reflect.Slice {
		if v.Len() == 0 {
			return "[0]"
		}
		v = v.Index(0)
	}
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			return v.Type().Field(i).Name
		}
	}
	return ""
}

// beyond is t as a list marks it when its org's policy allows less than it lives (markBeyond).
// represented marks t as a token acting as its owner, as userTokenInfos does (tokenInfo knows
// no emails).
func represented(t apiv1.TokenInfo) apiv1.TokenInfo {
	t.RepresentingUserID, t.RepresentingEmail, t.IssuedBy = "u1", "a@acme.io", "root@x.io"
	return t
}

func beyond(t apiv1.TokenInfo) apiv1.TokenInfo {
	t.BeyondPolicy = BeyondWords(token.User, t.CreatedAt, t.ExpiresAt, []string{"acme"}, map[string]store.TokenPolicy{"acme": {MaxUserTokenTTLMinutes: 1}})
	return t
}
