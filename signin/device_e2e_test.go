package signin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/adminapi/client"
	"github.com/rill-authd/rill-authd/internal/testenv"
	"github.com/rill-authd/rill-authd/signin"
)

// post sends a form to the daemon and decodes the JSON answer.
func post(t *testing.T, base, path string, form url.Values, out any) int {
	t.Helper()
	resp, err := http.PostForm(base+path, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("POST %s: decode: %v", path, err)
		}
	}
	return resp.StatusCode
}

// decide approves or denies a code through the admin API, as the console does.
func decide(t *testing.T, base, tok, what, code string) (int, string) {
	t.Helper()
	b, _ := json.Marshal(apiv1.DeviceDecision{UserCode: code})
	req, _ := http.NewRequest("POST", base+"/v1/device/"+what, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e apiv1.Error
	_ = json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, e.Message
}

func newCode(t *testing.T, base string) apiv1.DeviceAuthorization {
	t.Helper()
	var a apiv1.DeviceAuthorization
	if code := post(t, base, signin.DeviceAuthPath, url.Values{"client_id": {"rillctl"}, "host": {"ci-box"}}, &a); code != 200 {
		t.Fatalf("device authorization: HTTP %d", code)
	}
	return a
}

func poll(t *testing.T, base, deviceCode string) (int, apiv1.OAuthError, apiv1.OAuthToken) {
	t.Helper()
	var raw json.RawMessage
	code := post(t, base, signin.TokenPath, url.Values{"client_id": {"rillctl"}, "grant_type": {signin.GrantType}, "device_code": {deviceCode}}, &raw)
	var e apiv1.OAuthError
	var tok apiv1.OAuthToken
	_ = json.Unmarshal(raw, &e)
	_ = json.Unmarshal(raw, &tok)
	return code, e, tok
}

// otherCode is code with its first character changed: "X"+code[1:] was the code itself when it
// began with X (one run in dozens).
func otherCode(code string) string {
	if code[0] == 'X' {
		return "Y" + code[1:]
	}
	return "X" + code[1:]
}

// TestDeviceFlowAdversarial drives the endpoints of a real daemon with what a confused or
// hostile client sends: every refusal is a clear OAuth error with the right status.
func TestDeviceFlowAdversarial(t *testing.T) {
	d := testenv.Start(t, "")
	base := d.URL()
	ctx := context.Background()
	admin := client.New(base, d.Token)

	var meta apiv1.OAuthMetadata
	resp, err := http.Get(base + signin.MetadataPath)
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&meta)
	resp.Body.Close()
	if meta.Issuer != base || meta.DeviceAuthorizationEndpoint != base+signin.DeviceAuthPath || meta.TokenEndpoint != base+signin.TokenPath ||
		len(meta.GrantTypesSupported) != 1 || meta.GrantTypesSupported[0] != signin.GrantType {
		t.Fatalf("metadata: %+v", meta)
	}

	a := newCode(t, base)
	if len(a.UserCode) != 9 || a.UserCode[4] != '-' || strings.ContainsAny(a.UserCode, "AEIOU01") || a.ExpiresIn != 600 || a.Interval != 5 ||
		a.VerificationURI != base+"/ui/device" || a.VerificationURIComplete != base+"/ui/device?user_code="+a.UserCode {
		t.Fatalf("device authorization: %+v", a)
	}

	refusals := []struct {
		name   string
		path   string
		form   url.Values
		status int
		code   string
	}{
		{"unknown client_id", signin.DeviceAuthPath, url.Values{"client_id": {"curl"}}, 401, "invalid_client"},
		{"no client_id", signin.DeviceAuthPath, url.Values{}, 400, "invalid_request"},
		{"host with markup", signin.DeviceAuthPath, url.Values{"client_id": {"rillctl"}, "host": {"<b>evil</b>"}}, 400, "invalid_request"},
		{"host too long", signin.DeviceAuthPath, url.Values{"client_id": {"rillctl"}, "host": {strings.Repeat("h", 300)}}, 400, "invalid_request"},
		{"token: unknown client_id", signin.TokenPath, url.Values{"client_id": {"other"}, "grant_type": {signin.GrantType}, "device_code": {a.DeviceCode}}, 401, "invalid_client"},
		{"token: other grant", signin.TokenPath, url.Values{"client_id": {"rillctl"}, "grant_type": {"password"}, "device_code": {a.DeviceCode}}, 400, "unsupported_grant_type"},
		{"token: no device code", signin.TokenPath, url.Values{"client_id": {"rillctl"}, "grant_type": {signin.GrantType}}, 400, "invalid_request"},
		{"token: wrong device code", signin.TokenPath, url.Values{"client_id": {"rillctl"}, "grant_type": {signin.GrantType}, "device_code": {otherCode(a.DeviceCode)}}, 400, "invalid_grant"},
		{"token: body too big", signin.TokenPath, url.Values{"client_id": {"rillctl"}, "pad": {strings.Repeat("x", 20<<10)}}, 400, "invalid_request"},
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			var e apiv1.OAuthError
			if status := post(t, base, r.path, r.form, &e); status != r.status || e.Error != r.code || e.Description == "" {
				t.Fatalf("HTTP %d %+v, want %d %s with a description", status, e, r.status, r.code)
			}
		})
	}

	// Pending, then polling faster than the interval: slow_down.
	if status, e, _ := poll(t, base, a.DeviceCode); status != 400 || e.Error != "authorization_pending" {
		t.Fatalf("first poll: %d %+v", status, e)
	}
	if status, e, _ := poll(t, base, a.DeviceCode); status != 400 || e.Error != "slow_down" || !strings.Contains(e.Description, "10 seconds") {
		t.Fatalf("poll at once again: %d %+v, want slow_down with the interval grown to 10 s", status, e)
	}

	// A user approves; the code is redeemed once, and only once.
	if _, err := admin.CreateOrg(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateUser(ctx, apiv1.UserRequest{Email: "dev@acme.io", Org: "acme", OrgRole: "viewer"}); err != nil {
		t.Fatal(err)
	}
	dev, err := admin.IssueToken(ctx, apiv1.TokenRequest{DisplayName: "laptop", UserEmail: "dev@acme.io"})
	if err != nil {
		t.Fatal(err)
	}
	if status, msg := decide(t, base, dev.Token, "approve", "BCDF-GHJK"); status != 404 || !strings.Contains(msg, "no such code") {
		t.Fatalf("approve an unknown code: %d %q", status, msg)
	}
	if status, msg := decide(t, base, dev.Token, "approve", "not a code!"); status != 400 {
		t.Fatalf("approve garbage: %d %q", status, msg)
	}
	if status, msg := decide(t, base, "rill_usr_forged", "approve", a.UserCode); status != 401 {
		t.Fatalf("approve without a valid token: %d %q", status, msg)
	}
	svc, err := admin.CreateService(ctx, "acme", apiv1.ServiceRequest{Name: "ci", OrgRole: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	if status, msg := decide(t, base, svc.Token.Token, "approve", a.UserCode); status != 403 {
		t.Fatalf("a service approves: %d %q, want 403", status, msg)
	}
	// Typed as a person types it: lower case, no dash.
	if status, msg := decide(t, base, dev.Token, "approve", strings.ToLower(strings.ReplaceAll(a.UserCode, "-", ""))); status != 200 {
		t.Fatalf("approve: %d %q", status, msg)
	}
	if status, msg := decide(t, base, dev.Token, "approve", a.UserCode); status != 409 {
		t.Fatalf("approve twice: %d %q, want 409", status, msg)
	}
	if status, msg := decide(t, base, dev.Token, "deny", a.UserCode); status != 409 {
		t.Fatalf("deny after approval: %d %q, want 409", status, msg)
	}
	status, e, tok := poll(t, base, a.DeviceCode)
	if status != 200 || !strings.HasPrefix(tok.AccessToken, "rill_usr_") || tok.TokenType != "Bearer" || tok.ExpiresIn < 89*24*3600 {
		t.Fatalf("redeem: %d %+v %+v", status, e, tok)
	}
	if w, err := client.New(base, tok.AccessToken).Whoami(ctx); err != nil || w.Subject != "dev@acme.io" {
		t.Fatalf("whoami with the redeemed token: %+v %v", w, err)
	}
	if status, e, _ := poll(t, base, a.DeviceCode); status != 400 || e.Error != "invalid_grant" {
		t.Fatalf("redeem again: %d %+v, want invalid_grant", status, e)
	}

	// Denied: access_denied, and no token.
	b := newCode(t, base)
	if status, msg := decide(t, base, dev.Token, "deny", b.UserCode); status != 200 {
		t.Fatalf("deny: %d %q", status, msg)
	}
	if status, e, _ := poll(t, base, b.DeviceCode); status != 400 || e.Error != "access_denied" {
		t.Fatalf("poll a denied code: %d %+v", status, e)
	}
	evs, err := admin.ListAudit(ctx, "", "user:dev@acme.io", 100)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range evs {
		actions = append(actions, e.Action+" "+e.Outcome)
	}
	if got := strings.Join(actions, ","); !strings.Contains(got, "token.issue ok") || !strings.Contains(got, "device.deny ok") {
		t.Fatalf("audit of dev@acme.io: %s", got)
	}

	// Requests from one address are limited: a flood of codes is refused with 429.
	limited := false
	for range 30 {
		var e apiv1.OAuthError
		if status := post(t, base, signin.DeviceAuthPath, url.Values{"client_id": {"rillctl"}}, &e); status == 429 {
			limited = true
			break
		}
	}
	if !limited {
		t.Fatal("30 device authorizations from one address in a minute were all served")
	}
}

// TestDeviceApprovalByAssumedToken: a superuser acting as a user (an assumed token, at most a
// day, marked as theirs) may not approve a rillctl login as that user: the approval would turn
// a short-lived, marked token into the user's own plain one of 90 days, which neither the lists
// nor revoke --representing tell from the user's. The refusal is a 403 and no token is issued.
func TestDeviceApprovalByAssumedToken(t *testing.T) {
	d := testenv.Start(t, "")
	base := d.URL()
	ctx := context.Background()
	admin := client.New(base, d.Token)
	if _, err := admin.CreateOrg(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateUser(ctx, apiv1.UserRequest{Email: "dev@acme.io", Org: "acme", OrgRole: "viewer"}); err != nil {
		t.Fatal(err)
	}
	assumed, err := admin.Represent(ctx, "dev@acme.io", 5)
	if err != nil {
		t.Fatal(err)
	}
	a := newCode(t, base)
	if status, msg := decide(t, base, assumed.Token, "approve", a.UserCode); status != http.StatusForbidden || !strings.Contains(msg, "assume") {
		t.Fatalf("approve with an assumed token: %d %q, want 403 naming the assumed token", status, msg)
	}
	if status, e, _ := poll(t, base, a.DeviceCode); status != 400 || e.Error != "authorization_pending" {
		t.Fatalf("poll after the refused approval: %d %+v, want authorization_pending", status, e)
	}
	ts, err := admin.ListTokens(ctx, "dev@acme.io")
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range ts {
		if strings.HasPrefix(tk.DisplayName, "rillctl") {
			t.Fatalf("a token was issued by the refused approval: %+v", tk)
		}
	}
	// The user's own token approves it.
	own, err := admin.IssueToken(ctx, apiv1.TokenRequest{DisplayName: "laptop", UserEmail: "dev@acme.io"})
	if err != nil {
		t.Fatal(err)
	}
	if status, msg := decide(t, base, own.Token, "approve", a.UserCode); status != 200 {
		t.Fatalf("approve with the user's own token: %d %q", status, msg)
	}
}

// TestUserCodeGuessesLimited: a user code is short (8 letters) so that people can type it;
// RFC 8628 section 5.1 asks that guessing it be rate limited. A signed-in user who tries many
// codes that do not exist is refused (429, Retry-After) for a while, even the right one, so
// that no one approves (or reads, or denies) another person's request by guessing its code;
// another user is not held back by it.
func TestUserCodeGuessesLimited(t *testing.T) {
	d := testenv.Start(t, "")
	base := d.URL()
	ctx := context.Background()
	admin := client.New(base, d.Token)
	if _, err := admin.CreateOrg(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	toks := map[string]string{}
	for _, who := range []string{"eve", "dev"} {
		if _, err := admin.CreateUser(ctx, apiv1.UserRequest{Email: who + "@acme.io", Org: "acme", OrgRole: "viewer"}); err != nil {
			t.Fatal(err)
		}
		tk, err := admin.IssueToken(ctx, apiv1.TokenRequest{DisplayName: "laptop", UserEmail: who + "@acme.io"})
		if err != nil {
			t.Fatal(err)
		}
		toks[who] = tk.Token
	}
	show := func(tok, code string) (int, string) {
		req, _ := http.NewRequest("GET", base+"/v1/device?"+url.Values{"user_code": {code}}.Encode(), nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	a := newCode(t, base)
	guesses := []string{"BCDF-GHJK", "BCDF-GHJL", "BCDF-GHJM", "BCDF-GHJN", "BCDF-GHJP", "BCDF-GHJQ", "BCDF-GHJR",
		"BCDF-GHJS", "BCDF-GHJT", "BCDF-GHJV", "BCDF-GHJW", "BCDF-GHJX", "BCDF-GHJZ", "BCDF-GHKB", "BCDF-GHKC"}
	limited := false
	for i, g := range guesses {
		if g == a.UserCode {
			continue
		}
		status, retry := show(toks["eve"], g)
		if status == http.StatusTooManyRequests {
			if retry == "" || i < 5 {
				t.Fatalf("guess %d refused with 429 (Retry-After %q): too soon, or without Retry-After", i, retry)
			}
			limited = true
			break
		}
		if status != http.StatusNotFound {
			t.Fatalf("guess %d: HTTP %d, want 404", i, status)
		}
	}
	if !limited {
		t.Fatalf("%d wrong user codes in a row by one user were all answered", len(guesses))
	}
	if status, _ := show(toks["eve"], a.UserCode); status != http.StatusTooManyRequests {
		t.Fatalf("the right code after the guesses: HTTP %d, want 429", status)
	}
	if status, _ := decide(t, base, toks["eve"], "approve", a.UserCode); status != http.StatusTooManyRequests {
		t.Fatalf("approve after the guesses: HTTP %d, want 429", status)
	}
	if status, _ := decide(t, base, toks["eve"], "deny", a.UserCode); status != http.StatusTooManyRequests {
		t.Fatalf("deny after the guesses: HTTP %d, want 429", status)
	}
	if status, _ := show(toks["dev"], a.UserCode); status != http.StatusOK {
		t.Fatalf("another user looks the code up: HTTP %d, want 200", status)
	}
	if status, msg := decide(t, base, toks["dev"], "approve", a.UserCode); status != http.StatusOK {
		t.Fatalf("another user approves: %d %q", status, msg)
	}
}

// TestDeviceLimitPerIPv6Prefix: the device endpoints are unauthenticated and each request is
// a row in the store, so their limits per client address must hold for a client with an IPv6
// network of its own: a /64 (what one host or customer is given) counts as one address, else a
// flood from a single host is limited by nothing.
func TestDeviceLimitPerIPv6Prefix(t *testing.T) {
	d := testenv.Start(t, "", "--trusted-proxy-hops", "1")
	base := d.URL()
	from := func(addr string) int {
		req, _ := http.NewRequest("POST", base+signin.DeviceAuthPath, strings.NewReader(url.Values{"client_id": {"rillctl"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", addr)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	limited := false
	for i := 1; i <= 30; i++ {
		status := from(fmt.Sprintf("2001:db8:1:2::%x", i))
		if status == http.StatusTooManyRequests {
			limited = true
			break
		}
		if status != http.StatusOK {
			t.Fatalf("request %d: HTTP %d", i, status)
		}
	}
	if !limited {
		t.Fatal("30 device authorizations from 30 addresses of one /64 in a minute were all served")
	}
	if status := from("2001:db8:1:3::1"); status != http.StatusOK {
		t.Fatalf("another /64: HTTP %d, want 200", status)
	}
	if status := from("192.0.2.7"); status != http.StatusOK {
		t.Fatalf("an IPv4 address: HTTP %d, want 200", status)
	}
}
