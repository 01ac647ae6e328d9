package rillruntime_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/rill-authd/rill-authd/internal/rillruntime"
	"github.com/rill-authd/rill-authd/internal/testenv"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/store/badger"
	"github.com/rill-authd/rill-authd/token"
)

const webID = "0b7d2e1f-3a44-4d5e-a4c9-6f1c1a5293b8" // the project's id, as imported from Rill

type embedSeed struct {
	carolID, carolToken, embedder string
}

// seedEmbed writes an org with a project (with Rill's id), a member whose viewer role is
// limited to one explore, and an org-admin service that embeds.
func seedEmbed(t *testing.T, dir string) embedSeed {
	t.Helper()
	st, err := badger.Open(badger.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, now := context.Background(), time.Now().UTC()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	s := embedSeed{carolID: token.NewID()}
	must(st.CreateOrg(ctx, store.Org{Name: "acme", CreatedAt: now}))
	must(st.CreateProject(ctx, store.Project{ID: webID, Org: "acme", Name: "web", CreatedAt: now}))
	must(st.CreateUser(ctx, store.User{ID: s.carolID, Email: "carol@acme.io", OrgRoles: map[string]policy.Role{"acme": policy.Guest},
		ProjectRoles: map[string]policy.Role{"acme/web": policy.Viewer},
		Restricted:   map[string]store.Restricted{"acme/web": {Resources: []token.ResourceName{{Kind: token.KindExplore, Name: "sales"}}}},
		CreatedAt:    now, UpdatedAt: now}))
	svcID := token.NewID()
	must(st.CreateService(ctx, store.Service{ID: svcID, Org: "acme", Name: "embedder", OrgRole: policy.Admin, CreatedAt: now, UpdatedAt: now}))
	for _, x := range []struct {
		kind  token.Kind
		owner string
		dst   *string
	}{{token.Service, svcID, &s.embedder}, {token.User, s.carolID, &s.carolToken}} {
		tok, err := token.New(x.kind)
		must(err)
		must(st.CreateToken(ctx, store.NewToken(tok, x.owner, "", "seed", now, 0)))
		*x.dst = tok.Encode()
	}
	return s
}

// rulesOf decodes sec as the runtime does (protojson into rill.runtime.v1.SecurityRule) and
// returns each rule's oneof field and resource, "kind/name" ("" for none).
func rulesOf(t *testing.T, c *jwtClaims) []string {
	t.Helper()
	rules, err := rillruntime.DecodeSec(c.Security)
	if err != nil {
		t.Fatalf("the runtime cannot read sec: %v", err)
	}
	var out []string
	for _, m := range rules {
		od := m.Descriptor().Oneofs().ByName("rule")
		fd := m.WhichOneof(od)
		if fd == nil {
			out = append(out, "none")
			continue
		}
		s := string(fd.Name())
		if fd.Name() == "transitive_access" {
			res := m.Get(fd).Message().Get(fd.Message().Fields().ByName("resource")).Message()
			get := func(n protoreflect.Name) string { return res.Get(res.Descriptor().Fields().ByName(n)).String() }
			s += ":" + get("kind") + "/" + get("name")
		}
		out = append(out, s)
	}
	return out
}

// TestEmbeddingJWTsAtTheRuntime runs the real daemon and takes every embedding JWT to a
// verifier built as Rill's runtime is: an iframe for one explore with navigation off, an
// iframe for a restricted member with navigation on, the restricted member's own exchanged
// token, an external_user_id embed; each is valid there, with the subject and the rules Rill's
// admin service would sign.
func TestEmbeddingJWTsAtTheRuntime(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s := seedEmbed(t, dir)
	d := testenv.Start(t, dir, "--token-exchange", "--runtime-audience", "https://runtime.test", "--runtime-host", "https://runtime.test",
		"--frontend-url", "https://ui.example.com/app/")
	issuer := d.URL()
	rt, err := openAudience(context.Background(), issuer, "https://runtime.test")
	if err != nil {
		t.Fatal(err)
	}
	reader := []int{0x15, 0x17, 0x19, 0x1B}
	iframe := func(body string) (map[string]any, *jwtClaims, url.Values) {
		t.Helper()
		code, _, b := do(t, "POST", issuer+"/v1/orgs/acme/projects/web/iframe", s.embedder, body)
		var out map[string]any
		if code != 200 || json.Unmarshal(b, &out) != nil {
			t.Fatalf("iframe %s: %d %s", body, code, b)
		}
		c, err := rt.parseAndValidate(out["accessToken"].(string))
		if err != nil {
			t.Fatalf("iframe %s: the runtime refuses its token: %v", body, err)
		}
		u, err := url.Parse(out["iframeSrc"].(string))
		if err != nil || u.Scheme != "https" || u.Host != "ui.example.com" || u.Path != "/app/-/embed" {
			t.Fatalf("iframeSrc %q", out["iframeSrc"])
		}
		q := u.Query()
		if q.Get("access_token") != out["accessToken"] || q.Get("runtime_host") != "https://runtime.test" || q.Get("instance_id") != "default" ||
			out["runtimeHost"] != "https://runtime.test" || out["instanceId"] != "default" {
			t.Errorf("iframe %s: response %v, query %v", body, out, q)
		}
		return out, c, q
	}

	// 1. One explore, navigation off, for attributes: the token opens that explore only.
	out, c, q := iframe(`{"attributes":{"tenant":"t1"},"resource":"sales_explore","theme":"dark-blue","theme_mode":"dark",` +
		`"state":"tr=P7D","query":{"extra":"1"},"ttl_seconds":600}`)
	sc := c.claims("default")
	if got := rulesOf(t, c); !slices.Equal(got, []string{"transitive_access:rill.runtime.v1.Explore/sales_explore"}) {
		t.Errorf("navigation off: rules %v", got)
	}
	if string(c.Security[0]) != `{"transitiveAccess":{"resource":{"kind":"rill.runtime.v1.Explore","name":"sales_explore"}}}` {
		t.Errorf("navigation off: sec %s", c.Security[0])
	}
	if sc.UserID != "" || sc.Attributes["embed"] != true || sc.Attributes["tenant"] != "t1" || !slices.Equal(sc.Permissions, reader) || out["ttlSeconds"] != float64(600) {
		t.Errorf("navigation off: user %q attributes %v permissions %#x ttl %v", sc.UserID, sc.Attributes, sc.Permissions, out["ttlSeconds"])
	}
	want := url.Values{"type": {"rill.runtime.v1.Explore"}, "kind": {"rill.runtime.v1.Explore"}, "resource": {"sales_explore"}, "theme": {"dark-blue"},
		"theme_mode": {"dark"}, "state": {"tr=P7D"}, "extra": {"1"}}
	for k, v := range want {
		if !slices.Equal(q[k], v) {
			t.Errorf("iframeSrc %s = %v, want %v", k, q[k], v)
		}
	}
	if q.Has("navigation") {
		t.Error("iframeSrc has navigation with navigation off")
	}
	// The iframe token presented to our own check and exchanged there keeps its rules: a
	// limited token never becomes an unlimited one.
	code, h, _ := do(t, "GET", issuer+"/ext_authz/v1/orgs/acme/projects/web/runtime/api/x", out["accessToken"].(string), "")
	if code != 200 {
		t.Fatalf("our check of the iframe token: %d", code)
	}
	again, err := rt.parseAndValidate(strings.TrimPrefix(h.Get("Authorization"), "Bearer "))
	if err != nil || len(again.Security) != 1 || string(again.Security[0]) != string(c.Security[0]) {
		t.Errorf("the iframe token exchanged at our check: %v, sec %s (want %s)", err, again.Security, c.Security)
	}

	// 2. A restricted member with navigation on: their own rules, their UUID, a canvas by
	// shorthand; "kind" (deprecated) wins over "type", as in Rill.
	_, c, q = iframe(`{"user_id":"` + s.carolID + `","navigation":true,"type":"explore","kind":"canvas","resource":"board"}`)
	if got := rulesOf(t, c); !slices.Equal(got, []string{"transitive_access:rill.runtime.v1.Explore/sales"}) {
		t.Errorf("navigation on, restricted member: rules %v", got)
	}
	if c.Subject != s.carolID || q.Get("navigation") != "true" || q.Get("type") != "rill.runtime.v1.Canvas" || c.claims("default").Attributes["embed"] != true {
		t.Errorf("navigation on: sub %q, query %v", c.Subject, q)
	}

	// 3. The restricted member's own token, exchanged at the check.
	code, h, _ = do(t, "GET", issuer+"/ext_authz/v1/orgs/acme/projects/web/runtime/api/x", s.carolToken, "")
	if code != 200 {
		t.Fatalf("the restricted member's check: %d", code)
	}
	c, err = rt.parseAndValidate(strings.TrimPrefix(h.Get("Authorization"), "Bearer "))
	if err != nil {
		t.Fatalf("the runtime refuses the exchanged token: %v", err)
	}
	if got := rulesOf(t, c); c.Subject != s.carolID || !slices.Equal(got, []string{"transitive_access:rill.runtime.v1.Explore/sales"}) {
		t.Errorf("exchanged for the restricted member: sub %q rules %v", c.Subject, got)
	}

	// 4. An external user: the subject Rill derives from the id and the project's id, no rules.
	sum := sha256.Sum256([]byte("customer-42" + webID))
	ext := "ext_" + hex.EncodeToString(sum[:])
	_, c, _ = iframe(`{"external_user_id":"customer-42","navigation":true}`)
	if c.Subject != ext || c.Security != nil || c.claims("default").Attributes["id"] != ext {
		t.Errorf("iframe for an external user: sub %q (want %q), sec %s", c.Subject, ext, c.Security)
	}
	code, _, b := do(t, "POST", issuer+"/v1/orgs/acme/projects/web/credentials", s.embedder, `{"externalUserId":"customer-42","userEmail":"c@cust.io"}`)
	var cr map[string]any
	_ = json.Unmarshal(b, &cr)
	if code != 200 {
		t.Fatalf("credentials for an external user: %d %s", code, b)
	}
	if c, err = rt.parseAndValidate(cr["accessToken"].(string)); err != nil || c.Subject != ext || c.Attrs["email"] != "c@cust.io" {
		t.Errorf("credentials for an external user: %v, claims %+v", err, c)
	}

	// 5. Bound to a customer's site (allowed_origins, ours): the runtime accepts the token as it
	// is (the claim is one it ignores); our check refuses it 403 origin_not_allowed unless the
	// page's Origin (else its Referer) is the site. The credentials endpoint takes them too.
	check := func(raw string, headers map[string]string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", issuer+"/ext_authz/v1/orgs/acme/projects/web/runtime/api/x", nil)
		req.Header.Set("Authorization", "Bearer "+raw)
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	out, c, _ = iframe(`{"attributes":{"tenant":"t2"},"resource":"sales_explore","allowed_origins":["https://Shop.example.com:443"]}`)
	code, _, b = do(t, "POST", issuer+"/v1/orgs/acme/projects/web/credentials", s.embedder, `{"userEmail":"c@cust.io","allowedOrigins":["https://shop.example.com"]}`)
	var cred map[string]any
	if code != 200 || json.Unmarshal(b, &cred) != nil {
		t.Fatalf("credentials with allowedOrigins: %d %s", code, b)
	}
	cc, err := rt.parseAndValidate(cred["accessToken"].(string))
	if err != nil {
		t.Fatalf("the runtime refuses an origin-bound credentials token: %v", err)
	}
	for name, raw := range map[string]string{"iframe": out["accessToken"].(string), "credentials": cred["accessToken"].(string)} {
		for _, tc := range []struct {
			headers map[string]string
			want    int
		}{
			{map[string]string{"Origin": "https://shop.example.com"}, 200},
			{map[string]string{"Referer": "https://shop.example.com/page"}, 200},
			{map[string]string{"Origin": "https://evil.example.com"}, 403},
			{nil, 403},
		} {
			if code, body := check(raw, tc.headers); code != tc.want || code == 403 && !strings.Contains(body, "origin_not_allowed") {
				t.Errorf("%s token bound to https://shop.example.com, headers %v: %d %s, want %d", name, tc.headers, code, body, tc.want)
			}
		}
	}
	if c.Subject != "" || cc.Attrs["email"] != "c@cust.io" {
		t.Errorf("origin-bound tokens: iframe sub %q, credentials attrs %v", c.Subject, cc.Attrs)
	}
	// Introspection shows them, canonical.
	code, _, b = do(t, "POST", issuer+"/v1/introspect", s.embedder, `{"token":"`+out["accessToken"].(string)+`"}`)
	var in struct {
		Active         bool     `json:"active"`
		AllowedOrigins []string `json:"allowed_origins"`
	}
	if code != 200 || json.Unmarshal(b, &in) != nil || !in.Active || !slices.Equal(in.AllowedOrigins, []string{"https://shop.example.com"}) {
		t.Errorf("introspection of the origin-bound iframe token: %d %s", code, b)
	}

	// Refusals, as Rill's: no resource with navigation off; external_user_id with user_id.
	for body, want := range map[string]string{
		`{"attributes":{}}`: "resource must be provided if navigation is not enabled",
		`{"user_id":"` + s.carolID + `","external_user_id":"x","navigation":true}`: "external_user_id cannot be specified together with user_id",
		`{"navigation":"yes"}`: `must be true or false`,
		`{"navigation":true,"allowed_origins":["https://shop.example.com/path"]}`: `an origin has no path, query or fragment`,
		`{"navigation":true,"allowed_origins":"https://shop.example.com"}`:        `must be a list of origins`,
	} {
		if code, _, b := do(t, "POST", issuer+"/v1/orgs/acme/projects/web/iframe", s.embedder, body); code != 400 || !strings.Contains(string(b), want) {
			t.Errorf("iframe %s: %d %s, want 400 %q", body, code, b, want)
		}
	}
	// A member without manage_prod may not ask.
	if code, _, _ := do(t, "POST", issuer+"/v1/orgs/acme/projects/web/iframe", s.carolToken, `{"navigation":true}`); code != 403 {
		t.Errorf("iframe by a viewer: %d, want 403", code)
	}
}
