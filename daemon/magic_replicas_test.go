package daemon_test

import (
	"context"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/adminapi/client"
	"github.com/rill-authd/rill-authd/internal/testenv"
)

// TestPublicURLOnReplicas: a public URL issued through one replica opens its project on the
// other once the feed brings it, and its revocation through the first is refused by the other
// within revokeLag, as every token's.
func TestPublicURLOnReplicas(t *testing.T) {
	db, _ := testenv.PostgresDB(t, "")
	a := testenv.Spawn(t, "", "--store", db)
	a.WaitStarted(t)
	b := testenv.Spawn(t, "", "--store", db)
	b.WaitStarted(t)
	ctx := context.Background()
	ca := client.New(a.URL(), a.Token)
	acmeService(t, ca, "ci")
	issued, err := ca.IssueMagicToken(ctx, "acme", "web", apiv1.MagicTokenRequest{Resources: []apiv1.ResourceName{{Type: "explore", Name: "sales"}},
		Fields: []string{"country"}})
	if err != nil {
		t.Fatal(err)
	}
	if took := within(2*time.Second, func() bool { return checkStatus(t, b, issued.Token) == 200 }); took < 0 {
		t.Fatalf("the public URL made through A does not open acme/web on B: %d", checkStatus(t, b, issued.Token))
	}
	if _, err := ca.RevokeMagicToken(ctx, issued.ID); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	if code := checkStatus(t, a, issued.Token); code != 401 {
		t.Fatalf("A after its own revoke: %d, want 401", code)
	}
	took := within(2*time.Second, func() bool { code, _, err := tryCheck(b, issued.Token); return err == nil && code == 401 })
	if lag := time.Since(revoked); took < 0 || lag > revokeLag {
		t.Errorf("B denied the revoked public URL after %v (took %v), want within %v", lag, took, revokeLag)
	}
}
