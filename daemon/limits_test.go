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
