package daemon_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/adminapi/client"
	"github.com/rill-authd/rill-authd/internal/testenv"
)

// healthOf asks d's gRPC health service about service ("" for the server) until it answers
// want, for up to wait; it returns the last answer.
func healthOf(t *testing.T, d *testenv.Daemon, service string, want healthpb.HealthCheckResponse_ServingStatus, wait time.Duration) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	conn, err := grpc.NewClient(d.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	var got healthpb.HealthCheckResponse_ServingStatus
	within(wait, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			t.Fatalf("gRPC health of %s (%q): %v", d.GRPCAddr, service, err)
		}
		got = resp.Status
		return got == want
	})
	return got
}

// revokeByHolder revokes tok through d's RFC 7009 endpoint.
func revokeByHolder(t *testing.T, d *testenv.Daemon, tok string) {
	t.Helper()
	resp, err := http.PostForm(d.URL()+"/v1/revoke", url.Values{"token": {tok}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST /v1/revoke on %s: %d", d.URL(), resp.StatusCode)
	}
}

// wantStale503 fails t unless err is the 503 of a stale replica, with the check path's reason.
func wantStale503(t *testing.T, what string, err error) {
	t.Helper()
	if !isStatus(err, 503) || !strings.Contains(err.Error(), "auth store unavailable: this replica cannot confirm") {
		t.Errorf("%s on the stale replica: %v, want 503 auth store unavailable", what, err)
	}
}

// TestStaleReplicaFailsClosed: replica B loses its change feed (a proxy between B and
// PostgreSQL cuts the feed connection and refuses its reconnects, while B's pool still reaches
// PostgreSQL). A token revoked through A with POST /v1/revoke must then not mint runtime JWTs
// through B's credentials endpoint, nor be introspected as active, nor authorize an admin read
// or write there: past --max-staleness B answers them 503 with the check path's reason, as it
// answers checks, and its gRPC health is NOT_SERVING (for the server and the ext_authz
// service). When the feed is back, B is SERVING again, and the revoked token is a 401. Replica
// C loses its feed too but has --max-staleness 1h: it still answers checks from memory, yet its
// credentials endpoint refuses the revoked token (401), asking the store rather than its memory.
func TestStaleReplicaFailsClosed(t *testing.T) {
	db, _ := testenv.PostgresDB(t, "")
	u, err := url.Parse(db)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.StartPGProxy(t, u.Host)
	a := testenv.Start(t, "", "--store", testenv.WithParam(db, "application_name", "replica-a"))
	b := testenv.Start(t, "", "--store", testenv.WithParam(proxy.ProxiedURL(t, db), "application_name", "replica-b"), "--max-staleness", "1s")
	// C loses its feed too, but may answer from memory for an hour.
	c := testenv.Start(t, "", "--store", testenv.WithParam(proxy.ProxiedURL(t, db), "application_name", "replica-c"), "--max-staleness", "1h")
	ctx := context.Background()
	boot := a.Token
	ca, cb := client.New(a.URL(), boot), client.New(b.URL(), boot)
	svc := acmeService(t, ca, "ci") // org admin of acme: manage_prod on acme/web
	victim, err := ca.IssueServiceToken(ctx, "acme", "ci")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []*testenv.Daemon{b, c} {
		if within(5*time.Second, func() bool { return checkStatus(t, d, victim.Token) == 200 }) < 0 {
			t.Fatalf("a token made through A does not work on %s", d.URL())
		}
		if _, err := client.New(d.URL(), victim.Token).Credentials(ctx, "acme", "web", apiv1.CredentialsRequest{}); err != nil {
			t.Fatalf("credentials on %s before the fault: %v", d.URL(), err)
		}
	}
	cbVictim := client.New(b.URL(), victim.Token)
	for _, d := range []*testenv.Daemon{a, b} {
		for _, svcName := range []string{"", authv3.Authorization_ServiceDesc.ServiceName} {
			if st := healthOf(t, d, svcName, healthpb.HealthCheckResponse_SERVING, 5*time.Second); st != healthpb.HealthCheckResponse_SERVING {
				t.Fatalf("gRPC health (%q) of a current replica: %v", svcName, st)
			}
		}
	}

	// The fault: B's and C's feed connections are cut and cannot come back; their pools still
	// work.
	if n := proxy.Block("rill-authd change feed"); n != 2 {
		t.Fatalf("cut %d feed connections of B and C, want 2 (%v)", n, proxy)
	}
	revokeByHolder(t, a, victim.Token)
	if code := checkStatus(t, a, victim.Token); code != 401 {
		t.Fatalf("A after the revoke: %d, want 401", code)
	}
	// Within --max-staleness C answers checks from memory, which has not seen the revocation,
	// but a runtime JWT would outlive that window: credentials ask the store itself.
	t.Logf("check on C (within --max-staleness, from memory) of the token revoked through A: %d", checkStatus(t, c, victim.Token))
	if _, err := client.New(c.URL(), victim.Token).Credentials(ctx, "acme", "web", apiv1.CredentialsRequest{}); !isStatus(err, 401) {
		t.Errorf("credentials on C (within --max-staleness) with a token revoked through A: %v, want 401", err)
	}
	if within(15*time.Second, func() bool { code, _ := get(t, b.URL()+"/readyz"); return code == 503 }) < 0 {
		t.Fatalf("B is not stale 15s after losing its feed (--max-staleness 1s): %v\n%s", proxy, b.Stderr())
	}

	// Everything that grants on B's word now answers 503 with the reason.
	_, err = cbVictim.Credentials(ctx, "acme", "web", apiv1.CredentialsRequest{})
	wantStale503(t, "credentials with a token revoked through A", err)
	_, err = cb.Introspect(ctx, victim.Token)
	wantStale503(t, "introspection", err)
	_, err = cb.CreateOrg(ctx, "written-while-stale")
	wantStale503(t, "an admin write", err)
	_, err = cb.IssueServiceToken(ctx, "acme", "ci")
	wantStale503(t, "a token issue", err)
	_, err = cb.Whoami(ctx)
	wantStale503(t, "an admin read", err)
	_, err = client.New(b.URL(), "").Whoami(ctx)
	if !isStatus(err, 401) {
		t.Errorf("no credential on the stale replica: %v, want 401 (as a check answers it)", err)
	}
	if code, body, err := tryCheck(b, victim.Token); err != nil || code != 503 || !strings.Contains(body, "auth store unavailable") {
		t.Errorf("check on the stale replica: %d %s %v", code, body, err)
	}
	if resp, err := http.Post(b.URL()+"/v1/orgs", "application/json", strings.NewReader(`{"name":"x"}`)); err != nil {
		t.Error(err)
	} else if resp.Body.Close(); resp.StatusCode != 401 {
		t.Errorf("a write with no credential on the stale replica: %d, want 401", resp.StatusCode)
	}
	for _, svcName := range []string{"", authv3.Authorization_ServiceDesc.ServiceName} {
		if st := healthOf(t, b, svcName, healthpb.HealthCheckResponse_NOT_SERVING, 5*time.Second); st != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("gRPC health (%q) of the stale replica: %v, want NOT_SERVING", svcName, st)
		}
	}
	if st := healthOf(t, a, "", healthpb.HealthCheckResponse_SERVING, time.Second); st != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("gRPC health of A (current) while B is stale: %v", st)
	}
	if _, err := ca.IssueServiceToken(ctx, "acme", "ci"); err != nil {
		t.Errorf("a write through A while B is stale: %v", err)
	}
	if n := query[int64](t, db, "SELECT count(*) FROM orgs WHERE name = 'written-while-stale'"); n != 0 {
		t.Errorf("the stale replica wrote an org")
	}
	if !b.WaitFor("gRPC health: NOT_SERVING", 5*time.Second) {
		t.Errorf("B did not log its health change:\n%s", b.Stderr())
	}

	// The feed is back: B catches up and is current again.
	proxy.Unblock()
	if st := healthOf(t, b, "", healthpb.HealthCheckResponse_SERVING, 15*time.Second); st != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("gRPC health of B after its feed is back: %v\n%v\n%s", st, proxy, b.Stderr())
	}
	if code, body := get(t, b.URL()+"/readyz"); code != 200 {
		t.Errorf("readyz of B after its feed is back: %d %s", code, body)
	}
	if _, err := cbVictim.Credentials(ctx, "acme", "web", apiv1.CredentialsRequest{}); !isStatus(err, 401) {
		t.Errorf("credentials on B with the revoked token once B is current: %v, want 401", err)
	}
	if code := checkStatus(t, b, victim.Token); code != 401 {
		t.Errorf("check on B of the revoked token once B is current: %d, want 401", code)
	}
	if code := checkStatus(t, b, svc.Token); code != 200 {
		t.Errorf("check on B of a live token once B is current: %d", code)
	}
	if _, err := cb.CreateOrg(ctx, "written-when-current"); err != nil {
		t.Errorf("an admin write through B once current: %v", err)
	}
	if !b.WaitFor("gRPC health: SERVING again", 5*time.Second) {
		t.Errorf("B did not log its health change back:\n%s", b.Stderr())
	}
}
