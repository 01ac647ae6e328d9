package daemon_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/adminapi/client"
	"github.com/rill-authd/rill-authd/internal/testenv"
)

// TestTokenLimits: through the admin API of a daemon on each engine, --max-tokens-per-owner
// refuses a token past the cap with 409 naming the cap and how to revoke, and revoking one
// makes room; --token-issue-rate refuses a principal's issues past its rate with 429 and
// Retry-After, a service create included (and the service is then not made), while other
// principals and superusers issue on.
func TestTokenLimits(t *testing.T) {
	db, _ := testenv.PostgresDB(t, "")
	for _, engine := range []struct{ name, arg, val string }{{"badger", "--log-level", "info"}, {"postgres", "--store", db}} {
		t.Run(engine.name, func(t *testing.T) {
			d := testenv.Start(t, "", engine.arg, engine.val, "--max-tokens-per-owner", "3", "--token-issue-rate", "5")
			ctx := context.Background()
			su := client.New(d.URL(), d.Token)
			if _, err := su.CreateOrg(ctx, "acme"); err != nil {
				t.Fatal(err)
			}
			if _, err := su.CreateUser(ctx, apiv1.UserRequest{Email: "ada@acme.io", Org: "acme", OrgRole: "admin"}); err != nil {
				t.Fatal(err)
			}
			first, err := su.IssueToken(ctx, apiv1.TokenRequest{UserEmail: "ada@acme.io", DisplayName: "first"})
			if err != nil {
				t.Fatal(err)
			}
			ada := client.New(d.URL(), first.Token)

			// The cap: ada holds 1 token; 2 more, then 409.
			for i := range 2 {
				if _, err := ada.IssueToken(ctx, apiv1.TokenRequest{DisplayName: "t" + strconv.Itoa(i)}); err != nil {
					t.Fatalf("token %d of 3: %v", i+2, err)
				}
			}
			_, err = ada.IssueToken(ctx, apiv1.TokenRequest{DisplayName: "over"})
			var e *client.Error
			if !errors.As(err, &e) || e.Status != 409 || !strings.Contains(e.Message, "3 live tokens") ||
				!strings.Contains(e.Message, "--max-tokens-per-owner") || !strings.Contains(e.Message, "rillctl token revoke") {
				t.Fatalf("a 4th token of a user: %v, want 409 naming the cap of 3 and how to revoke", err)
			}
			// A superuser issuing for ada meets the same cap (it is the owner's).
			if _, err := su.IssueToken(ctx, apiv1.TokenRequest{UserEmail: "ada@acme.io", DisplayName: "su"}); !isStatus(err, 409) {
				t.Fatalf("a superuser issuing ada's 4th token: %v, want 409", err)
			}
			if _, err := ada.RevokeTokenByName(ctx, "", "t0"); err != nil {
				t.Fatal(err)
			}
			if _, err := ada.IssueToken(ctx, apiv1.TokenRequest{DisplayName: "again"}); err != nil {
				t.Fatalf("a token after revoking one: %v", err)
			}

			// The rate: ada has made 4 of her 5 issues a minute (the refused one counts); one
			// service (with its token), then 429, for a service create too.
			if _, err := ada.CreateService(ctx, "acme", apiv1.ServiceRequest{Name: "ci", OrgRole: "viewer"}); err != nil {
				t.Fatal(err)
			}
			code, retry, body := post(t, d.URL()+"/v1/orgs/acme/services/ci/tokens", first.Token, "")
			if secs, _ := strconv.Atoi(retry); code != 429 || secs < 1 || secs > 12 || !strings.Contains(body, "--token-issue-rate") {
				t.Fatalf("ada's 6th issue in a minute: %d, Retry-After %q, %s; want 429 and a wait of 1-12 s", code, retry, body)
			}
			code, retry, _ = post(t, d.URL()+"/v1/orgs/acme/services", first.Token, `{"name":"cd","org_role":"viewer"}`)
			if code != 429 || retry == "" {
				t.Fatalf("a service create past the rate: %d (Retry-After %q), want 429", code, retry)
			}
			if _, err := su.ShowService(ctx, "acme", "cd"); !isStatus(err, 404) {
				t.Fatalf("the service refused by the rate limit: %v, want 404 (not made)", err)
			}
			// Others are not held back: a superuser, and the service's own token.
			if _, err := su.IssueServiceToken(ctx, "acme", "ci"); err != nil {
				t.Fatalf("a superuser while ada is limited: %v", err)
			}
		})
	}
}

// post sends a POST with a bearer token and returns the status, Retry-After and body.
func post(t *testing.T, url, tok, body string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", apiv1.MediaType) // our shapes: a service comes with its token
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), string(b)
}

// TestPublicURLsCountAgainstCreator (third red team): public URLs counted against their
// project, so one editor at --max-tokens-per-owner held every other member back. Through a
// daemon on each engine: a member's public URLs of a project are capped by
// --max-tokens-per-owner (409 naming them), another member issues on, and the project as a
// whole is capped by --max-public-urls-per-project (409 naming that flag).
func TestPublicURLsCountAgainstCreator(t *testing.T) {
	db, _ := testenv.PostgresDB(t, "")
	for _, engine := range []struct{ name, arg, val string }{{"badger", "--log-level", "info"}, {"postgres", "--store", db}} {
		t.Run(engine.name, func(t *testing.T) {
			d := testenv.Start(t, "", engine.arg, engine.val, "--max-tokens-per-owner", "2", "--max-public-urls-per-project", "3")
			ctx := context.Background()
			su := client.New(d.URL(), d.Token)
			if _, err := su.CreateOrg(ctx, "acme"); err != nil {
				t.Fatal(err)
			}
			if _, err := su.CreateProject(ctx, "acme", "web"); err != nil {
				t.Fatal(err)
			}
			editor := map[string]*client.Client{}
			for _, who := range []string{"ed1", "ed2", "ed3"} {
				email := who + "@acme.io"
				if _, err := su.CreateUser(ctx, apiv1.UserRequest{Email: email, Org: "acme", OrgRole: "guest", Project: "web", ProjectRole: "editor"}); err != nil {
					t.Fatal(err)
				}
				tok, err := su.IssueToken(ctx, apiv1.TokenRequest{UserEmail: email, DisplayName: "t"})
				if err != nil {
					t.Fatal(err)
				}
				editor[who] = client.New(d.URL(), tok.Token)
			}
			share := apiv1.MagicTokenRequest{Resources: []apiv1.ResourceName{{Type: "explore", Name: "sales"}}}
			for i := range 2 {
				if _, err := editor["ed1"].IssueMagicToken(ctx, "acme", "web", share); err != nil {
					t.Fatalf("ed1's public URL %d of 2: %v", i+1, err)
				}
			}
			_, err := editor["ed1"].IssueMagicToken(ctx, "acme", "web", share)
			var e *client.Error
			if !errors.As(err, &e) || e.Status != 409 || !strings.Contains(e.Message, "user:ed1@acme.io already holds 2 live public URLs of project acme/web") ||
				!strings.Contains(e.Message, "--max-tokens-per-owner") {
				t.Fatalf("ed1's 3rd public URL: %v, want 409 naming ed1 and --max-tokens-per-owner", err)
			}
			// ed1 at their cap holds no one else back.
			if _, err := editor["ed2"].IssueMagicToken(ctx, "acme", "web", share); err != nil {
				t.Fatalf("ed2's first public URL while ed1 is at the cap: %v, want issued", err)
			}
			// The project holds 3: its cap, whoever asks.
			_, err = editor["ed3"].IssueMagicToken(ctx, "acme", "web", share)
			if !errors.As(err, &e) || e.Status != 409 || !strings.Contains(e.Message, "project acme/web already holds 3 live public URLs") ||
				!strings.Contains(e.Message, "--max-public-urls-per-project") {
				t.Fatalf("a public URL past the project's cap: %v, want 409 naming --max-public-urls-per-project", err)
			}
		})
	}
}

// TestOrgIssueBudget (third red team): the issue rate is per principal and every service is a
// new principal, so an admin multiplied it by creating services that create services. Through a
// daemon on each engine: service creates and service tokens are charged to the org's budget
// (--org-token-issue-rate) as well, so a chain of services stops at it with 429 and
// Retry-After (the refused service not made), while another org, a user's own tokens and
// superusers go on.
func TestOrgIssueBudget(t *testing.T) {
	db, _ := testenv.PostgresDB(t, "")
	for _, engine := range []struct{ name, arg, val string }{{"badger", "--log-level", "info"}, {"postgres", "--store", db}} {
		t.Run(engine.name, func(t *testing.T) {
			d := testenv.Start(t, "", engine.arg, engine.val, "--token-issue-rate", "3", "--org-token-issue-rate", "5")
			ctx := context.Background()
			su := client.New(d.URL(), d.Token)
			admin := map[string]string{}
			for _, org := range []string{"acme", "beta"} {
				if _, err := su.CreateOrg(ctx, org); err != nil {
					t.Fatal(err)
				}
				email := "admin@" + org + ".io"
				if _, err := su.CreateUser(ctx, apiv1.UserRequest{Email: email, Org: org, OrgRole: "admin"}); err != nil {
					t.Fatal(err)
				}
				tok, err := su.IssueToken(ctx, apiv1.TokenRequest{UserEmail: email, DisplayName: "t"})
				if err != nil {
					t.Fatal(err)
				}
				admin[org] = tok.Token
			}
			// acme's admin makes s1, s1 makes s2, and so on: each a fresh principal with 3 issues
			// a minute of its own, but acme's 5 are spent after s5.
			by := admin["acme"]
			for i := 1; i <= 5; i++ {
				created, err := client.New(d.URL(), by).CreateService(ctx, "acme", apiv1.ServiceRequest{Name: "s" + strconv.Itoa(i), OrgRole: "admin"})
				if err != nil {
					t.Fatalf("service s%d of the chain: %v", i, err)
				}
				by = created.Token.Token
			}
			code, retry, body := post(t, d.URL()+"/v1/orgs/acme/services", by, `{"name":"s6","org_role":"admin"}`)
			if secs, _ := strconv.Atoi(retry); code != 429 || secs < 1 || secs > 12 || !strings.Contains(body, "--org-token-issue-rate") {
				t.Fatalf("the 6th service of acme in a minute, by s5 (its first issue): %d, Retry-After %q, %s; want 429 naming --org-token-issue-rate", code, retry, body)
			}
			if _, err := su.ShowService(ctx, "acme", "s6"); !isStatus(err, 404) {
				t.Fatalf("the service refused by the org budget: %v, want 404 (not made)", err)
			}
			// A service token by the admin is charged to acme as well.
			if code, _, body := post(t, d.URL()+"/v1/orgs/acme/services/s1/tokens", admin["acme"], ""); code != 429 {
				t.Fatalf("a service token of acme past its budget, by its admin: %d %s, want 429", code, body)
			}
			// Not charged to acme: the admin's own user token, another org's service, a superuser.
			if _, err := client.New(d.URL(), admin["acme"]).IssueToken(ctx, apiv1.TokenRequest{DisplayName: "own"}); err != nil {
				t.Fatalf("acme's admin's own user token: %v", err)
			}
			if _, err := client.New(d.URL(), admin["beta"]).CreateService(ctx, "beta", apiv1.ServiceRequest{Name: "ci", OrgRole: "viewer"}); err != nil {
				t.Fatalf("a service of beta while acme's budget is spent: %v", err)
			}
			if _, err := su.CreateService(ctx, "acme", apiv1.ServiceRequest{Name: "ops", OrgRole: "viewer"}); err != nil {
				t.Fatalf("a superuser's service of acme: %v", err)
			}
		})
	}
}
