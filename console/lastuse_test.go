package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/rill-authd/rill-authd/internal/testenv"
)

// TestLastUseWhere, on Badger and on PostgreSQL: checks over gRPC (Envoy's source address and
// the request's user-agent, a hostile one among them) and in HTTP mode (the connection's
// address) record where each token was last used; the daemon's stop flushes them; after a
// restart the API, rillctl (list columns, token show, service show, --json) and the console's
// token lists show them, the user agent cleaned.
func TestLastUseWhere(t *testing.T) {
	for _, tc := range []struct {
		name string
		args func(t *testing.T) []string
	}{
		{"badger", func(*testing.T) []string { return nil }},
		{"postgres", func(t *testing.T) []string { db, _ := testenv.PostgresDB(t, ""); return []string{"--store", db} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, args := t.TempDir(), tc.args(t)
			d := testenv.Start(t, dir, args...)
			su := d.Token
			rillctl := func(args ...string) string {
				t.Helper()
				cmd := exec.Command(testenv.Bin(t, "rillctl"), args...)
				cmd.Env = []string{"RILLCTL_API_URL=" + d.URL(), "RILLCTL_TOKEN=" + su, "RILLCTL_ORG=acme", "TZ=UTC"}
				var out, errb bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &errb
				if err := cmd.Run(); err != nil {
					t.Fatalf("rillctl %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
				}
				return out.String()
			}
			rillctl("org", "create", "acme")
			rillctl("project", "create", "web")
			svcTok := regexp.MustCompile(`Access token: (rill_svc_\S+)`).FindStringSubmatch(rillctl("service", "create", "ci", "--project", "web", "--project-role", "viewer"))
			usrTok := regexp.MustCompile(`Token: (rill_usr_\S+)`).FindStringSubmatch(rillctl("token", "issue", "--display-name", "grpc", "--ttl-minutes", "60"))
			mgcTok := regexp.MustCompile(`(rill_mgc_\S+)`).FindStringSubmatch(rillctl("public-url", "create", "web", "sales"))
			if svcTok == nil || usrTok == nil || mgcTok == nil {
				t.Fatalf("tokens not issued: %v %v %v", svcTok, usrTok, mgcTok)
			}

			conn, err := grpc.NewClient(d.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			check := func(tok, ip, ua string) {
				t.Helper()
				h := map[string]string{"authorization": "Bearer " + tok}
				if ua != "" {
					h["user-agent"] = ua
				}
				resp, err := authv3.NewAuthorizationClient(conn).Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
					Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
						Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 40000}}}}},
					Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/v1/orgs/acme/projects/web/runtime/x", Headers: h}},
				}})
				if err != nil || resp.GetStatus().GetCode() != 0 {
					t.Fatalf("check: %v %v", resp.GetStatus(), err)
				}
			}
			check(svcTok[1], "198.51.100.1", "first/1.0")
			check(svcTok[1], "203.0.113.7", "reporter/2.0 \x1b[31mred\n")
			check(usrTok[1], "::ffff:203.0.113.8", "")
			req, _ := http.NewRequest("GET", d.URL()+"/ext_authz/v1/orgs/acme/projects/web/runtime/x", nil)
			req.Header.Set("Authorization", "Bearer "+mgcTok[1])
			req.Header.Set("User-Agent", "Mozilla/5.0 (embed)")
			if r, err := http.DefaultClient.Do(req); err != nil || r.StatusCode != 200 {
				t.Fatalf("HTTP-mode check: %v %v", r, err)
			} else {
				r.Body.Close()
			}

			d.Stop(t) // flushes the last uses
			d = testenv.Start(t, dir, args...)

			const cleanUA = "reporter/2.0 \uFFFD[31mred\uFFFD"
			// The API, through rillctl --json.
			var svcToks []struct {
				LastUsedIP string `json:"last_used_ip"`
				LastUsedUA string `json:"last_used_user_agent"`
			}
			if err := json.Unmarshal([]byte(rillctl("--json", "service", "token", "list", "ci")), &svcToks); err != nil || len(svcToks) != 1 ||
				svcToks[0].LastUsedIP != "203.0.113.7" || svcToks[0].LastUsedUA != cleanUA {
				t.Errorf("service token list --json: %+v %v", svcToks, err)
			}
			var mine []struct {
				Prefix     string
				LastUsedIP string `json:"last_used_ip"`
				LastUsedUA string `json:"last_used_user_agent"`
			}
			if err := json.Unmarshal([]byte(rillctl("--json", "token", "list")), &mine); err != nil {
				t.Fatal(err)
			}
			var usrPrefix string
			for _, m := range mine {
				if strings.HasPrefix(usrTok[1], m.Prefix) {
					usrPrefix = m.Prefix
					if m.LastUsedIP != "203.0.113.8" || m.LastUsedUA != "" {
						t.Errorf("token list --json: %+v", m)
					}
				}
			}
			var urls []struct {
				LastUsedIP string `json:"last_used_ip"`
				LastUsedUA string `json:"last_used_user_agent"`
			}
			if err := json.Unmarshal([]byte(rillctl("--json", "public-url", "list", "web")), &urls); err != nil || len(urls) != 1 ||
				urls[0].LastUsedIP != "127.0.0.1" || urls[0].LastUsedUA != "Mozilla/5.0 (embed)" {
				t.Errorf("public-url list --json: %+v %v", urls, err)
			}

			// rillctl's text.
			if out := rillctl("service", "token", "list", "ci"); !strings.Contains(out, "LAST USED FROM") || !strings.Contains(out, "203.0.113.7") {
				t.Errorf("service token list:\n%s", out)
			}
			if out := rillctl("service", "show", "ci"); !strings.Contains(out, "from 203.0.113.7 ("+cleanUA+")") {
				t.Errorf("service show:\n%s", out)
			}
			if out := rillctl("token", "show", usrPrefix+"..."); !strings.Contains(out, "Last used from: 203.0.113.8\n") || !strings.Contains(out, "User agent:     -\n") {
				t.Errorf("token show:\n%s", out)
			}
			if out := rillctl("public-url", "list", "web"); !strings.Contains(out, "LAST USED FROM") || !strings.Contains(out, "127.0.0.1") {
				t.Errorf("public-url list:\n%s", out)
			}
			if out := rillctl("token", "list"); strings.Contains(out, "203.0.113.8") || !strings.Contains(out, "ID") {
				t.Errorf("token list keeps the reference's columns:\n%s", out)
			}

			// The console's token lists.
			jar, _ := cookiejar.New(nil)
			b := &browser{t: t, base: d.URL(), c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
			if r := b.signIn(su); r.code != http.StatusSeeOther {
				t.Fatalf("sign in: %d %s", r.code, r.body)
			}
			if r := b.get("/ui/services/ci?org=acme"); r.code != 200 || !strings.Contains(r.body, "from 203.0.113.7") ||
				!strings.Contains(r.body, `title="`+cleanUA+`"`) {
				t.Errorf("console service page: %d\n%s", r.code, r.body)
			}
			if r := b.get("/ui/tokens"); r.code != 200 || !strings.Contains(r.body, "from 203.0.113.8") {
				t.Errorf("console My tokens: %d\n%s", r.code, r.body)
			}
		})
	}
}
