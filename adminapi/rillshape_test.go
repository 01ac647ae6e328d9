package adminapi_test

import (
	"context"
	"encoding/json"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/rill-authd/rill-authd/adminapi"
	"github.com/rill-authd/rill-authd/internal/rillruntime"
	"github.com/rill-authd/rill-authd/store"
)

// rillAnswer reads body as a client generated from Rill's api.proto does: protojson into the
// rill.admin.v1 message typ, built from api.proto's descriptors (internal/rillruntime), where a
// field name it does not know, or a value of the wrong JSON type, is an error. It then checks
// that the body is exactly what Rill's gateway writes for that message (grpc-gateway's default
// marshaler: protojson with every field emitted), field for field and value for value, and
// returns the message.
func rillAnswer(t *testing.T, typ string, body []byte) protoreflect.Message {
	t.Helper()
	m := rillruntime.NewAdmin(typ)
	if err := protojson.Unmarshal(body, m); err != nil {
		t.Fatalf("%s: not one for a client of Rill's API: %v\n%s", typ, err, body)
	}
	gw, err := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var got, want any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(gw, &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: not as Rill's gateway writes it\n got: %s\nwant: %s", typ, body, gw)
	}
	return m
}

// rillRequest is the JSON a client of Rill's API sends for the rill.admin.v1 message typ
// written as protojson JSON (lowerCamelCase names, int64 as strings); protoNames writes the
// proto's names instead, which Rill's gateway also reads.
func rillRequest(t *testing.T, typ, protojsonText string, protoNames bool) string {
	t.Helper()
	m := rillruntime.NewAdmin(typ)
	if err := protojson.Unmarshal([]byte(protojsonText), m); err != nil {
		t.Fatalf("%s: %v", typ, err)
	}
	b, err := protojson.MarshalOptions{UseProtoNames: protoNames}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func str(m protoreflect.Message, path ...string) string {
	for _, f := range path[:len(path)-1] {
		m = m.Get(m.Descriptor().Fields().ByName(protoreflect.Name(f))).Message()
	}
	return m.Get(m.Descriptor().Fields().ByName(protoreflect.Name(path[len(path)-1]))).String()
}

// TestRillShapesOnRillPaths: the routes that share their method and path with Rill's admin API
// gateway take what a client of Rill's API sends (the JSON of Rill's request messages, in
// lowerCamelCase or the proto's names, with fields the route does not know) and answer exactly
// what Rill's gateway writes for Rill's response messages, checked against descriptors built
// from Rill's api.proto (not against our types): public URLs (issue, list with pageSize and
// pageToken, current, revoke), iframe, credentials, services and their tokens, and revoking the
// current token. Rill's gateway answers 200 to every call.
func TestRillShapesOnRillPaths(t *testing.T) {
	e := setupWith(t, func(o *adminapi.Options) { o.FrontendURL = "https://ui.test" })
	e.rill = true
	const projectID = "2b4cf1b8-5b8c-4f3e-9f53-d5b0e0b6a001"
	if err := e.st.CreateProject(context.Background(), store.Project{ID: projectID, Org: "acme", Name: "shop"}); err != nil {
		t.Fatal(err)
	}
	call := func(t *testing.T, method, path, body string) []byte {
		t.Helper()
		code, apiErr, b := e.call(t, "admin", method, path, body)
		if code != 200 {
			t.Fatalf("%s %s: %d %s, want 200 as Rill's gateway answers", method, path, code, apiErr.Message)
		}
		return b
	}

	// Public URLs: issued with Rill's request, by either set of names, with fields we do not know.
	issue := rillRequest(t, "IssueMagicAuthTokenRequest", `{"org": "acme", "project": "shop", "ttlMinutes": "60",
		"resources": [{"type": "explore", "name": "sales"}], "fields": ["country"], "displayName": "partners", "state": "s1",
		"metricsViewFilters": {"sales_mv": {"cond": {"op": "OPERATION_EQ", "exprs": [{"ident": "country"}, {"val": "DK"}]}}}}`, false)
	if !strings.Contains(issue, `"ttlMinutes":"60"`) && !strings.Contains(issue, `"ttlMinutes": "60"`) {
		t.Fatalf("protojson wrote %s", issue)
	}
	tokens := map[string]bool{}
	for i, body := range []string{issue,
		strings.Replace(rillRequest(t, "IssueMagicAuthTokenRequest", `{"resources": [{"type": "canvas", "name": "board"}], "displayName": "b"}`, true),
			"{", `{"a_field_of_a_later_rill": {"x": 1},`, 1),
		`{"resourceType": "rill.runtime.v1.Explore", "resourceName": "old", "filter": {"cond": {"op": "OPERATION_EQ", "exprs": [{"ident": "c"}, {"val": 1}]}}}`} {
		m := rillAnswer(t, "IssueMagicAuthTokenResponse", call(t, "POST", "/v1/orgs/acme/projects/shop/tokens/magic", body))
		tok := str(m, "token")
		if !strings.HasPrefix(tok, "rill_mgc_") || str(m, "url") != "https://ui.test/acme/shop/-/share/"+tok {
			t.Errorf("issue %d: token %q url %q", i, tok, str(m, "url"))
		}
		tokens[tok] = true
	}

	// Listed a page at a time, by pageSize and the opaque pageToken, as Rill's ListMagicAuthTokens.
	var listed []protoreflect.Message
	next := ""
	for range 5 {
		q := url.Values{"pageSize": {"2"}}
		if next != "" {
			q.Set("pageToken", next)
		}
		m := rillAnswer(t, "ListMagicAuthTokensResponse", call(t, "GET", "/v1/orgs/acme/projects/shop/tokens/magic?"+q.Encode(), ""))
		list := m.Get(m.Descriptor().Fields().ByName("tokens")).List()
		for i := range list.Len() {
			listed = append(listed, list.Get(i).Message())
		}
		if next = str(m, "next_page_token"); next == "" {
			break
		}
	}
	if len(listed) != 3 {
		t.Fatalf("listed %d public URLs in pages of 2, want 3", len(listed))
	}
	var partners protoreflect.Message
	for _, m := range listed {
		if str(m, "project_id") != projectID {
			t.Errorf("projectId %q", str(m, "project_id"))
		}
		switch str(m, "display_name") {
		case "partners":
			partners = m
		case "":
			// The deprecated single resource and filter are a resource and the "*" filter.
			res := m.Get(m.Descriptor().Fields().ByName("resources")).List()
			mvf := m.Get(m.Descriptor().Fields().ByName("metrics_view_filters")).Map()
			if res.Len() != 1 || str(res.Get(0).Message(), "name") != "old" || !mvf.Has(protoreflect.ValueOfString("*").MapKey()) {
				t.Errorf("the public URL of Rill's deprecated fields: %v", m)
			}
		}
	}
	if partners == nil {
		t.Fatal("the public URL named partners is not listed")
	}
	created := partners.Get(partners.Descriptor().Fields().ByName("created_on")).Message()
	expires := partners.Get(partners.Descriptor().Fields().ByName("expires_on")).Message()
	secs := func(m protoreflect.Message) int64 { return m.Get(m.Descriptor().Fields().ByName("seconds")).Int() }
	if d := secs(expires) - secs(created); d < 3599 || d > 3601 {
		t.Errorf("expiresOn is %ds after createdOn, want the 60 minutes asked for", d)
	}
	mvf := partners.Get(partners.Descriptor().Fields().ByName("metrics_view_filters")).Map()
	if f := mvf.Get(protoreflect.ValueOfString("sales_mv").MapKey()); !f.IsValid() {
		t.Errorf("metricsViewFilters has no sales_mv: %v", partners)
	} else if x, err := rillruntime.Marshal(f.Message().Interface()); err != nil ||
		string(x) != `{"cond":{"op":"OPERATION_EQ","exprs":[{"ident":"country"},{"val":"DK"}]}}` {
		t.Errorf("metricsViewFilters.sales_mv: %s %v", x, err)
	}
	for _, bad := range []string{"pageSize=1001", "pageSize=-1", "pageToken=nope"} {
		if code, _, b := e.call(t, "admin", "GET", "/v1/orgs/acme/projects/shop/tokens/magic?"+bad, ""); code != 400 {
			t.Errorf("%s: %d %s, want 400", bad, code, b)
		}
	}

	// The current one, to its own token, and revoked.
	var mgc string
	for tok := range tokens {
		mgc = tok
	}
	e.tokens["mgc"] = mgc
	code, _, b := e.call(t, "mgc", "GET", "/v1/magic-tokens/current", "")
	if code != 200 {
		t.Fatalf("current: %d %s", code, b)
	}
	cur := rillAnswer(t, "GetCurrentMagicAuthTokenResponse", b)
	id := str(cur, "token", "id")
	rillAnswer(t, "RevokeMagicAuthTokenResponse", call(t, "DELETE", "/v1/magic-tokens/"+id, ""))
	if code, _, _ := e.call(t, "mgc", "GET", "/v1/magic-tokens/current", ""); code != 401 {
		t.Errorf("current after revoke: %d, want 401", code)
	}

	// Iframe and credentials, from Rill's request messages.
	ifr := rillAnswer(t, "GetIFrameResponse", call(t, "POST", "/v1/orgs/acme/projects/shop/iframe", rillRequest(t, "GetIFrameRequest",
		`{"org": "acme", "project": "shop", "userEmail": "ceo@acme.io", "type": "explore", "resource": "sales", "ttlSeconds": 600, "query": {"k": "v"}}`, false)))
	if src := str(ifr, "iframe_src"); !strings.HasPrefix(src, "https://ui.test/-/embed?") || !strings.Contains(src, "k=v") || str(ifr, "access_token") == "" {
		t.Errorf("iframe: %v", ifr)
	}
	cred := rillAnswer(t, "GetDeploymentCredentialsResponse", call(t, "POST", "/v1/orgs/acme/projects/shop/credentials",
		rillRequest(t, "GetDeploymentCredentialsRequest", `{"org": "acme", "project": "shop", "ttlSeconds": 600, "userEmail": "ceo@acme.io"}`, true)))
	if cred.Get(cred.Descriptor().Fields().ByName("ttl_seconds")).Uint() != 600 || str(cred, "runtime_host") != "https://rt.test" {
		t.Errorf("credentials: %v", cred)
	}

	// Services and their tokens, by Rill's request names.
	svc := rillAnswer(t, "CreateServiceResponse", call(t, "POST", "/v1/orgs/acme/services", rillRequest(t, "CreateServiceRequest",
		`{"name": "reporting", "org": "acme", "project": "shop", "projectRoleName": "viewer", "attributes": {"purpose": "reporting"}}`, false)))
	if str(svc, "service", "name") != "reporting" || str(svc, "service", "org_name") != "acme" {
		t.Errorf("create: %v", svc)
	}
	rillAnswer(t, "CreateServiceResponse", call(t, "POST", "/v1/orgs/acme/services", rillRequest(t, "CreateServiceRequest",
		`{"name": "ops", "org": "acme", "orgRoleName": "viewer"}`, true)))
	ls := rillAnswer(t, "ListServicesResponse", call(t, "GET", "/v1/orgs/acme/services", ""))
	if n := ls.Get(ls.Descriptor().Fields().ByName("services")).List().Len(); n != 4 {
		t.Errorf("list: %d services, want 4 (two of setup's, two made here)", n)
	}
	got := rillAnswer(t, "GetServiceResponse", call(t, "GET", "/v1/orgs/acme/services/reporting", ""))
	pm := got.Get(got.Descriptor().Fields().ByName("project_memberships")).List()
	if pm.Len() != 1 || str(pm.Get(0).Message(), "project_id") != projectID || str(pm.Get(0).Message(), "project_role_name") != "viewer" {
		t.Errorf("get: %v", got)
	}
	up := rillAnswer(t, "UpdateServiceResponse", call(t, "PATCH", "/v1/orgs/acme/services/reporting",
		rillRequest(t, "UpdateServiceRequest", `{"name": "reporting", "org": "acme", "newName": "reports"}`, false)))
	if str(up, "service", "name") != "reports" {
		t.Errorf("update: %v", up)
	}
	issued := rillAnswer(t, "IssueServiceAuthTokenResponse", call(t, "POST", "/v1/orgs/acme/services/reports/tokens", `{"org": "acme", "serviceName": "reports"}`))
	if !strings.HasPrefix(str(issued, "token"), "rill_svc_") {
		t.Errorf("issue: %v", issued)
	}
	toks := rillAnswer(t, "ListServiceAuthTokensResponse", call(t, "GET", "/v1/orgs/acme/services/reports/tokens", ""))
	if l := toks.Get(toks.Descriptor().Fields().ByName("tokens")).List(); l.Len() != 1 || !strings.HasPrefix(str(issued, "token"), str(l.Get(0).Message(), "prefix")) {
		t.Errorf("tokens: %v", toks)
	}
	rillAnswer(t, "DeleteServiceResponse", call(t, "DELETE", "/v1/orgs/acme/services/reports", ""))

	// Rill's CLI logout: the user's own token, revoked.
	code, _, b = e.call(t, "editor", "DELETE", "/v1/tokens/current", "")
	if code != 200 {
		t.Fatalf("revoke current: %d %s", code, b)
	}
	rillAnswer(t, "RevokeCurrentAuthTokenResponse", b)
	if code, _, _ := e.call(t, "editor", "GET", "/v1/whoami", ""); code != 401 {
		t.Errorf("the revoked current token: %d, want 401", code)
	}
	if code, _, _ := e.call(t, "svc-admin", "DELETE", "/v1/tokens/current", ""); code != 403 {
		t.Errorf("a service's current token: %d, want 403", code)
	}
}

// TestRillRequestsRefused: a body in Rill's names that is not acceptable is a 400 that names the
// problem (never a panic, never a 500), and one field given by both its names is refused
// rather than one of them silently winning.
func TestRillRequestsRefused(t *testing.T) {
	e := setup(t)
	e.rill = true
	const magic, services = "/v1/orgs/acme/projects/web/tokens/magic", "/v1/orgs/acme/services"
	for _, tc := range []struct{ path, body, want string }{
		{magic, `[]`, "JSON object"},
		{magic, `{"ttlMinutes": "soon"}`, "ttl_minutes"},
		{magic, `{"ttlMinutes": "-5"}`, "ttl_minutes must be 0"},
		{magic, `{"displayName": "a", "display_name": "b"}`, "not both"},
		{magic, `{"resourceName": "a", "resource_name": "b"}`, "not both"},
		{magic, `{"resources": "sales"}`, "resources"},
		{magic, `{"filter": 5}`, "filter"},
		{magic, `{"metricsViewFilters": {"mv": {"cond": {"op": "OPERATION_NOPE"}}}}`, "mv"},
		{magic, `{"fields": ["a"]} {"fields": ["b"]}`, "after the JSON object"},
		{services, `{"name": "x", "orgRoleName": "viewer", "org_role": "viewer"}`, "not both"},
		{services, `{"name": "x", "orgRoleName": 7}`, "org_role"},
		{services, `{"name": "x", "projectRoleName": "viewer"}`, "role"},
		{services + "/dash", `{"newName": "bad name!"}`, "new_name"},
	} {
		method := "POST"
		if strings.HasSuffix(tc.path, "/dash") {
			method = "PATCH"
		}
		code, apiErr, b := e.call(t, "admin", method, tc.path, tc.body)
		if code != 400 || !strings.Contains(apiErr.Message, tc.want) {
			t.Errorf("%s %s: %d %s, want 400 naming %q", tc.path, tc.body, code, b, tc.want)
		}
	}
}
