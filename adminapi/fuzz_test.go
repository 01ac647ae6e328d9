package adminapi_test

import (
	"net/http"
	"testing"
)

// FuzzAdminBodies sends arbitrary bodies to every route that decodes one, as a superuser (who
// gets furthest into the handlers): no input may cause a 500 or a panic, and every refusal is a
// {code, message} body (call checks that). The route byte's high bit sends the request as a
// client of Rill's API does (no Accept of ours: Rill's names and shapes on the routes it shares).
func FuzzAdminBodies(f *testing.F) {
	routes := []struct{ method, path string }{
		{"POST", "/v1/orgs"},
		{"POST", "/v1/orgs/acme/projects"},
		{"POST", "/v1/users"},
		{"PUT", "/v1/users/editor@acme.io/roles"},
		{"POST", "/v1/orgs/acme/services"},
		{"PATCH", "/v1/orgs/acme/services/robot"},
		{"PUT", "/v1/orgs/acme/services/robot/roles"},
		{"POST", "/v1/tokens"},
		{"POST", "/v1/orgs/acme/projects/web/credentials"},
		{"POST", "/v1/introspect"},
		{"POST", "/v1/revoke"},
		{"POST", "/v1/orgs/acme/projects/web/tokens/magic"},
	}
	seeds := []string{`{"name":"x"}`, `{"email":"a@b.io","org":"acme","org_role":"viewer","attributes":{"k":[1,{"a":null}]}}`,
		`{"org":"acme","org_role":"admin","remove":true}`, `{"name":"s","project":"web","project_role":"viewer","attributes":{}}`,
		`{"new_name":"r2","attributes":null}`, `{"display_name":"t","ttl_minutes":-1}`, `{"user_email":"u@x.io","ttl_seconds":1e99}`,
		`{"token":"rill_usr_x"}`, `{"name":"x"} {}`,
		`{"resources":[{"type":"explore","name":"s"}],"metrics_view_filters":{"mv":{"cond":{"op":1,"exprs":[{"val":1e400}]}},"*":null},"fields":["a"],"ttl_minutes":5}`, `{`, ``, `null`, `[]`, `{"name":1}`, `{"unknown":true}`,
		`{"org":"acme","ttlMinutes":"60","resourceType":"explore","resourceName":"s","filter":{"cond":{"op":"OPERATION_EQ"}},"displayName":"d"}`,
		`{"name":"s2","orgRoleName":"viewer","projectRoleName":"viewer","project":"web","newName":"s3"}`}
	for i, s := range seeds {
		f.Add(uint8(i), s)
	}
	e := setup(f)
	f.Fuzz(func(t *testing.T, route uint8, body string) {
		r := routes[int(route&0x7f)%len(routes)]
		e.rill = route&0x80 != 0
		if code, _, b := e.call(t, "su", r.method, r.path, body); code >= http.StatusInternalServerError {
			t.Fatalf("%s %s with %q: %d %s", r.method, r.path, body, code, b)
		}
	})
}
