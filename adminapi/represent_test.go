package adminapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/adminapi"
	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/signin"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// assume issues, as who, a token acting as email and returns it (failing t unless the answer
// is 201).
func (e *env) assume(t *testing.T, who, email string, ttl int) apiv1.IssuedToken {
	t.Helper()
	body, _ := json.Marshal(apiv1.RepresentRequest{Email: email, TTLMinutes: int64(ttl)})
	code, apiErr, b := e.call(t, who, "POST", "/v1/tokens/represent", string(body))
	if code != http.StatusCreated {
		t.Fatalf("assume %s as %s: %d %s", email, who, code, apiErr.Message)
	}
	var it apiv1.IssuedToken
	if err := json.Unmarshal(b, &it); err != nil {
		t.Fatal(err)
	}
	return it
}

// auditOf returns the audit events with action, oldest first.
func (e *env) auditOf(t *testing.T, action string) []store.AuditEvent {
	t.Helper()
	evs, err := e.st.ListAudit(context.Background(), store.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []store.AuditEvent
	for _, ev := range evs {
		if ev.Action == action {
			out = append(out, ev)
		}
	}
	return out
}

// TestAssume: a superuser's assumed token is the user at the check (their roles and
// attributes) and in whoami, says who assumed it, is listed by both users as such, lives an
// hour by default, and is audited with both identities, as is what it does.
func TestAssume(t *testing.T) {
	e := setup(t)
	before := time.Now()
	it := e.assume(t, "su", "Viewer@acme.io", 0) // emails match in any case
	if it.RepresentingEmail != "viewer@acme.io" || it.IssuedBy != "root@x.io" || it.RepresentingUserID != "u-viewer" || it.DisplayName != "Support for viewer@acme.io" {
		t.Errorf("issued: %+v", it)
	}
	if life := it.ExpiresAt.Sub(before); life < 59*time.Minute || life > 61*time.Minute {
		t.Errorf("default lifetime %v, want an hour (Rill's CLI's default)", life)
	}
	e.tokens["assumed"] = it.Token

	// The check resolves it as the viewer, with the viewer's roles and attributes.
	status, reason, attrs, hdr := e.checkJWT(t, it.Token, "acme", "web")
	if status != 200 || hdr["x-rill-subject"] != "viewer@acme.io" || hdr["x-rill-project-role"] != "viewer" || attrs["email"] != "viewer@acme.io" {
		t.Errorf("check of the assumed token: %d %s %v %v", status, reason, hdr, attrs)
	}
	if status, _, _, _ := e.checkJWT(t, it.Token, "other", "web"); status != 403 {
		t.Errorf("the assumed token in an org the viewer is not in: %d, want 403", status)
	}

	var w apiv1.Whoami
	_, _, b := e.call(t, "assumed", "GET", "/v1/whoami", "")
	if err := json.Unmarshal(b, &w); err != nil || w.Subject != "viewer@acme.io" || w.AssumedBy != "root@x.io" || w.Superuser {
		t.Errorf("whoami of the assumed token: %s", b)
	}
	_, _, b = e.call(t, "viewer", "GET", "/v1/whoami", "")
	if w = (apiv1.Whoami{}); json.Unmarshal(b, &w) != nil || w.Subject != "viewer@acme.io" || w.AssumedBy != "" {
		t.Errorf("whoami of the viewer's own token: %s", b)
	}

	// Both users' lists show it as such.
	for _, who := range []string{"su", "viewer"} {
		var ts []apiv1.TokenInfo
		_, _, b := e.call(t, who, "GET", "/v1/tokens", "")
		if err := json.Unmarshal(b, &ts); err != nil {
			t.Fatal(err)
		}
		found := 0
		for _, tk := range ts {
			if tk.ID == it.ID {
				found++
				if tk.RepresentingEmail != "viewer@acme.io" || tk.IssuedBy != "root@x.io" {
					t.Errorf("%s's list: %+v", who, tk)
				}
			} else if tk.RepresentingEmail != "" || tk.IssuedBy != "" {
				t.Errorf("%s's list marks a token of its own as assumed: %+v", who, tk)
			}
		}
		if found != 1 {
			t.Errorf("%s's list holds the assumed token %d times: %s", who, found, b)
		}
	}

	// Audited with both identities: the issue, and what the assumed token does.
	evs := e.auditOf(t, "user.assume")
	if len(evs) != 1 || evs[0].Actor != "user:root@x.io" || !strings.HasPrefix(evs[0].Target, "user:viewer@acme.io token:"+it.ID) ||
		!strings.Contains(evs[0].Detail, "acting as user:viewer@acme.io") || evs[0].Outcome != "ok" {
		t.Errorf("user.assume audit: %+v", evs)
	}
	if code, apiErr, _ := e.call(t, "viewer", "POST", "/v1/tokens", `{"display_name":"spare"}`); code != 201 {
		t.Fatalf("issue with the viewer's own token: %d %s", code, apiErr.Message)
	}
	if code, apiErr, _ := e.call(t, "assumed", "DELETE", "/v1/tokens?display_name=spare", ""); code != 200 {
		t.Fatalf("revoke with the assumed token: %d %s", code, apiErr.Message)
	}
	evs = e.auditOf(t, "token.revoke")
	if last := evs[len(evs)-1]; last.Actor != "user:viewer@acme.io" || !strings.Contains(last.Detail, "assumed by user:root@x.io") {
		t.Errorf("a mutation with the assumed token: %+v, want the viewer assumed by root", last)
	}
	// A refusal made with it says so too.
	if code, _, _ := e.call(t, "assumed", "POST", "/v1/orgs", `{"name":"nope"}`); code != 403 {
		t.Fatalf("org create with the assumed viewer token: %d", code)
	}
	evs = e.auditOf(t, "org.create")
	if last := evs[len(evs)-1]; !strings.HasPrefix(last.Outcome, "denied") || !strings.Contains(last.Detail, "assumed by user:root@x.io") {
		t.Errorf("a refusal with the assumed token: %+v", last)
	}

	// Rill's shape: camelCase request, {"token"} answer with 200.
	e.rill = true
	code, apiErr, b := e.call(t, "su", "POST", "/v1/tokens/represent", `{"email":"editor@acme.io","ttlMinutes":"5","unknown":1}`)
	e.rill = false
	var raw map[string]any
	if code != 200 || json.Unmarshal(b, &raw) != nil || len(raw) != 1 || !strings.HasPrefix(raw["token"].(string), "rill_usr_") {
		t.Errorf("Rill-shaped assume: %d %s %s", code, apiErr.Message, b)
	}

	// Deleting the represented user revokes it.
	if code, apiErr, _ := e.call(t, "su", "DELETE", "/v1/users/viewer@acme.io", ""); code != 200 {
		t.Fatalf("delete viewer: %d %s", code, apiErr.Message)
	}
	if status, reason, _, _ := e.checkJWT(t, it.Token, "acme", "web"); status != 401 {
		t.Errorf("the assumed token of a deleted user: %d %s, want 401", status, reason)
	}
}

// TestAssumeRefused: only a superuser may assume, never a superuser, an unknown user or
// themselves, and only for a short while; each refusal is clear, and a 403 is audited.
func TestAssumeRefused(t *testing.T) {
	e := setup(t)
	must(t, e.st.CreateUser(context.Background(), store.User{ID: "u-su2", Email: "root2@x.io", Superuser: true}))
	for _, tc := range []struct {
		name, who, body string
		code            int
		msg             string
	}{
		{"NotSuperuser", "admin", `{"email":"viewer@acme.io"}`, 403, "only a superuser may act as another user (user:admin@acme.io is not one)"},
		{"Service", "svc-admin", `{"email":"viewer@acme.io"}`, 403, "is not a user"},
		{"Superuser", "su", `{"email":"root2@x.io"}`, 403, "root2@x.io is a superuser: a superuser cannot be assumed"},
		{"Unknown", "su", `{"email":"nobody@acme.io"}`, 404, `user "nobody@acme.io" not found`},
		{"Self", "su", `{"email":"root@x.io"}`, 400, "cannot act as yourself"},
		{"NoEmail", "su", `{}`, 400, "email is required"},
		{"TooLong", "su", `{"email":"viewer@acme.io","ttl_minutes":1441}`, 400, "ttl_minutes must be from 1 to 1440"},
		{"Negative", "su", `{"email":"viewer@acme.io","ttl_minutes":-1}`, 400, "ttl_minutes must be from 1 to 1440"},
		{"NotJSON", "su", `{"email":`, 400, ""},
		{"NoToken", "", `{"email":"viewer@acme.io"}`, 401, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, apiErr, _ := e.call(t, tc.who, "POST", "/v1/tokens/represent", tc.body)
			if code != tc.code || !strings.Contains(apiErr.Message, tc.msg) {
				t.Errorf("%d %q, want %d %q", code, apiErr.Message, tc.code, tc.msg)
			}
		})
	}
	// A token that acts as a superuser (imported from Rill, whose superusers may assume
	// superusers) does not assume again.
	tok, err := token.New(token.User)
	must(t, err)
	rec := store.NewToken(tok, "u-su2", "Support for root2@x.io", "", time.Now(), time.Hour)
	rec.IssuedBy = "u-su"
	must(t, e.st.CreateToken(context.Background(), rec))
	e.tokens["as-su2"] = tok.Encode()
	if code, apiErr, _ := e.call(t, "as-su2", "POST", "/v1/tokens/represent", `{"email":"viewer@acme.io"}`); code != 403 ||
		!strings.Contains(apiErr.Message, "an assumed token cannot assume another user") || !strings.Contains(apiErr.Message, "assumed by user:root@x.io") {
		t.Errorf("assume with an assumed superuser's token: %d %q", code, apiErr.Message)
	}
	denied := e.auditOf(t, "user.assume")
	if len(denied) != 4 {
		t.Fatalf("%d user.assume events, want the 4 refusals (403): %+v", len(denied), denied)
	}
	for _, ev := range denied {
		if !strings.HasPrefix(ev.Outcome, "denied: ") {
			t.Errorf("refusal audited as %+v", ev)
		}
	}
	if ts, _ := e.st.ListIssuedTokens(context.Background(), "u-su"); len(ts) != 1 || ts[0].ID != rec.ID { // the imported one only
		t.Errorf("refusals issued tokens: %+v", ts)
	}
	if ts, _ := e.st.ListIssuedTokens(context.Background(), "u-su2"); len(ts) != 0 {
		t.Errorf("the assumed superuser's refusal issued tokens: %+v", ts)
	}
}

// TestRevokeAll: revoke all of a user's tokens (Rill's RevokeAllUserAuthTokens): one's own,
// including those one issued to act as others; another user's only as a superuser; and, as a
// superuser, only the tokens that act as a user.
func TestRevokeAll(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	revokeAll := func(who, query string) (int, string, apiv1.Revoked) {
		t.Helper()
		code, apiErr, b := e.call(t, who, "DELETE", "/v1/tokens?"+query, "")
		var r apiv1.Revoked
		if code == 200 {
			if err := json.Unmarshal(b, &r); err != nil {
				t.Fatal(err)
			}
		}
		return code, apiErr.Message, r
	}
	alive := func(name string) bool {
		status, _, _, _ := e.checkJWT(t, e.tokens[name], "acme", "web")
		return status != 401
	}

	// Not for others unless a superuser; the refusal is audited.
	if code, msg, _ := revokeAll("admin", "all=true&user_email=viewer@acme.io"); code != 403 || !strings.Contains(msg, "only a superuser may manage another user's tokens") {
		t.Errorf("admin revoking the viewer's: %d %q", code, msg)
	}
	if code, msg, _ := revokeAll("admin", "representing=true&user_email=viewer@acme.io"); code != 403 || !strings.Contains(msg, "only a superuser may revoke the tokens that act as a user") {
		t.Errorf("admin revoking the tokens acting as the viewer: %d %q", code, msg)
	}
	if code, msg, _ := revokeAll("su", "representing=true"); code != 400 || !strings.Contains(msg, "user_email") {
		t.Errorf("representing without a user: %d %q", code, msg)
	}
	if code, msg, _ := revokeAll("su", "all=maybe"); code != 400 || !strings.Contains(msg, `all="maybe"`) {
		t.Errorf("all=maybe: %d %q", code, msg)
	}
	if code, msg, _ := revokeAll("su", "all=true&display_name=x"); code != 400 || !strings.Contains(msg, "not both") {
		t.Errorf("all and display_name: %d %q", code, msg)
	}
	if evs := e.auditOf(t, "token.revoke_all"); len(evs) != 1 || !strings.HasPrefix(evs[0].Outcome, "denied") || evs[0].Target != "user:viewer@acme.io" {
		t.Errorf("refused revoke-all audited as %+v", evs)
	}

	// A superuser revokes only the tokens that act as the viewer: the viewer's own stays.
	e.tokens["as-viewer"] = e.assume(t, "su", "viewer@acme.io", 30).Token
	code, msg, r := revokeAll("su", "representing=true&user_email=viewer@acme.io")
	if code != 200 || len(r.Revoked) != 1 {
		t.Fatalf("revoke representing: %d %q %+v", code, msg, r)
	}
	if alive("as-viewer") || !alive("viewer") {
		t.Errorf("after revoking the tokens acting as the viewer: assumed alive %v, own alive %v", alive("as-viewer"), alive("viewer"))
	}
	if evs := e.auditOf(t, "token.revoke_representing"); len(evs) != 2 || !strings.HasPrefix(evs[0].Outcome, "denied") ||
		evs[1].Actor != "user:root@x.io" || evs[1].Target != "user:viewer@acme.io" || evs[1].Outcome != "ok" || !strings.Contains(evs[1].Detail, "1 tokens acting as user:viewer@acme.io") {
		t.Errorf("revoke representing audited as %+v", evs)
	}

	// A superuser revokes all of another user's.
	tokens := func(who string) int {
		ts, err := e.st.ListTokens(ctx, "u-"+who)
		if err != nil {
			t.Fatal(err)
		}
		return len(ts)
	}
	if code, apiErr, _ := e.call(t, "editor", "POST", "/v1/tokens", `{"display_name":"second"}`); code != 201 {
		t.Fatalf("editor issue: %d %s", code, apiErr.Message)
	}
	if code, msg, r := revokeAll("su", "all=true&user_email=editor@acme.io"); code != 200 || len(r.Revoked) != 2 || tokens("editor") != 0 || alive("editor") {
		t.Errorf("su revoking all of the editor's: %d %q %d revoked, %d left", code, msg, len(r.Revoked), tokens("editor"))
	}

	// One's own, the token it is made with included.
	if code, msg, r := revokeAll("viewer", "all"); code != 200 || len(r.Revoked) != 1 || alive("viewer") {
		t.Errorf("viewer revoking all their own: %d %q %+v", code, msg, r)
	}
	// A superuser's own include the tokens they issued to act as others.
	e.tokens["as-admin"] = e.assume(t, "su", "admin@acme.io", 30).Token
	if code, msg, r := revokeAll("su", "all=true"); code != 200 || len(r.Revoked) != 2 || alive("as-admin") || alive("su") || !alive("admin") {
		t.Errorf("su revoking all their own: %d %q %+v", code, msg, r)
	}
	evs := e.auditOf(t, "token.revoke_all")
	if last := evs[len(evs)-1]; last.Actor != "user:root@x.io" || last.Target != "user:root@x.io" || !strings.HasPrefix(last.Detail, "2 tokens") || last.Outcome != "ok" {
		t.Errorf("revoke all audited as %+v", last)
	}

	// Rill's answer: the count.
	e.rill = true
	code, _, b := e.call(t, "admin", "DELETE", "/v1/tokens?all=true", "")
	e.rill = false
	raw := map[string]any{}
	if code != 200 || json.Unmarshal(b, &raw) != nil || len(raw) != 1 || raw["tokensRevoked"] != float64(1) {
		t.Errorf("Rill-shaped revoke all: %d %s", code, b)
	}
}

// TestAssumedTokenMintsNone: an assumed token cannot issue its user another token, neither
// with POST /v1/tokens (which could never expire) nor by approving a rillctl login (90 days):
// either would outlive the assumed token and its unassume, and name no superuser. The
// refusals are audited with both identities; the user's own token still does both.
func TestAssumedTokenMintsNone(t *testing.T) {
	var dev *signin.Device
	e := setupWith(t, func(o *adminapi.Options) { dev = o.Device })
	mux := http.NewServeMux()
	dev.Register(mux)
	oauth := httptest.NewServer(mux)
	t.Cleanup(oauth.Close)
	userCode := func() string {
		t.Helper()
		resp, err := http.PostForm(oauth.URL+signin.DeviceAuthPath, url.Values{"client_id": {signin.ClientID}, "host": {"laptop"}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var da apiv1.DeviceAuthorization
		if err := json.NewDecoder(resp.Body).Decode(&da); err != nil || da.UserCode == "" {
			t.Fatalf("device authorization: %d %v %+v", resp.StatusCode, err, da)
		}
		return da.UserCode
	}
	e.tokens["assumed"] = e.assume(t, "su", "viewer@acme.io", 30).Token
	ctx := context.Background()
	before, err := e.st.ListTokens(ctx, "u-viewer")
	must(t, err)

	for _, tc := range []struct{ name, method, path, body, msg string }{
		{"NeverExpiring", "POST", "/v1/tokens", `{"display_name":"forever"}`, "no token may be issued with an assumed token"},
		{"Short", "POST", "/v1/tokens", `{"display_name":"a day","ttl_minutes":1440}`, "no token may be issued with an assumed token"},
		{"OwnEmail", "POST", "/v1/tokens", `{"display_name":"mine","user_email":"viewer@acme.io"}`, "no token may be issued with an assumed token"},
		{"DeviceApproval", "POST", "/v1/device/approve", `{"user_code":"` + userCode() + `"}`, "a rillctl login cannot be approved with an assumed token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, apiErr, _ := e.call(t, "assumed", tc.method, tc.path, tc.body)
			if code != 403 || !strings.Contains(apiErr.Message, tc.msg) || !strings.Contains(apiErr.Message, "assumed by user:root@x.io") {
				t.Errorf("%d %q, want 403 %q", code, apiErr.Message, tc.msg)
			}
		})
	}
	after, err := e.st.ListTokens(ctx, "u-viewer")
	must(t, err)
	if len(after) != len(before) {
		t.Errorf("the viewer had %d tokens, has %d after the refusals", len(before), len(after))
	}
	evs := e.auditOf(t, "token.issue")
	if len(evs) != 4 {
		t.Fatalf("%d token.issue events, want the 4 refusals: %+v", len(evs), evs)
	}
	for _, ev := range evs {
		if ev.Actor != "user:viewer@acme.io" || !strings.HasPrefix(ev.Outcome, "denied: ") || !strings.Contains(ev.Detail, "assumed by user:root@x.io") {
			t.Errorf("refusal audited as %+v", ev)
		}
	}

	// The viewer's own token does both.
	if code, apiErr, _ := e.call(t, "viewer", "POST", "/v1/tokens", `{"display_name":"mine"}`); code != 201 {
		t.Errorf("the viewer's own issue: %d %s", code, apiErr.Message)
	}
	if code, apiErr, _ := e.call(t, "viewer", "POST", "/v1/device/approve", `{"user_code":"`+userCode()+`"}`); code != 200 {
		t.Errorf("the viewer's own approval: %d %s", code, apiErr.Message)
	}
}

// TestAssumedJoinAudited: the joins a domain rule set with an assumed token makes (user.provision,
// written apart from the PUT's own event) name the superuser too.
func TestAssumedJoinAudited(t *testing.T) {
	e := setup(t)
	must(t, e.st.CreateUser(context.Background(), store.User{ID: "u-newbie", Email: "newbie@acme.io"}))
	e.tokens["as-admin"] = e.assume(t, "su", "admin@acme.io", 30).Token
	if code, apiErr, _ := e.call(t, "as-admin", "PUT", "/v1/orgs/acme/signin-rules", `{"domains":[{"domain":"acme.io","org_role":"viewer"}]}`); code != 200 {
		t.Fatalf("PUT with the assumed admin: %d %s", code, apiErr.Message)
	}
	for _, action := range []string{"org.signin_rules", "user.provision"} {
		evs := e.auditOf(t, action)
		if len(evs) != 1 || evs[0].Actor != "user:admin@acme.io" || !strings.Contains(evs[0].Detail, "assumed by user:root@x.io") {
			t.Errorf("%s audited as %+v, want the admin assumed by root", action, evs)
		}
	}
}

// TestAssumedTokenDiesWithIssuer: deleting the superuser who assumed a user revokes the assumed
// token at once, at the check (whose cache knew it) and at the API; the user's own stays.
func TestAssumedTokenDiesWithIssuer(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	tok, err := token.New(token.User)
	must(t, err)
	must(t, e.st.CreateUser(ctx, store.User{ID: "u-su2", Email: "root2@x.io", Superuser: true}))
	must(t, e.st.CreateToken(ctx, store.NewToken(tok, "u-su2", "own", "", time.Now(), 0)))
	e.tokens["su2"] = tok.Encode()
	e.tokens["assumed"] = e.assume(t, "su2", "viewer@acme.io", 30).Token
	if status, reason, _, _ := e.checkJWT(t, e.tokens["assumed"], "acme", "web"); status != 200 {
		t.Fatalf("the assumed token before: %d %s", status, reason)
	}
	if code, apiErr, _ := e.call(t, "su", "DELETE", "/v1/users/root2@x.io", ""); code != 200 {
		t.Fatalf("delete the issuer: %d %s", code, apiErr.Message)
	}
	if status, reason, _, _ := e.checkJWT(t, e.tokens["assumed"], "acme", "web"); status != 401 {
		t.Errorf("the assumed token after its issuer's deletion: %d %s, want 401", status, reason)
	}
	if code, _, _ := e.call(t, "assumed", "GET", "/v1/whoami", ""); code != 401 {
		t.Errorf("whoami with it: %d, want 401", code)
	}
	if status, _, _, _ := e.checkJWT(t, e.tokens["viewer"], "acme", "web"); status != 200 {
		t.Errorf("the viewer's own token: %d", status)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
