package notify_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/internal/testenv"
	"github.com/rill-authd/rill-authd/notify"
	"github.com/rill-authd/rill-authd/store/postgres"
)

func openPG(t *testing.T, url string) *postgres.DB {
	t.Helper()
	s, err := postgres.Open(context.Background(), postgres.Options{URL: url, MaintainInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestTwoReplicasDeliverOnce: two replicas on one PostgreSQL database publish the same events
// (as both find the same expiring tokens) and deliver at the same moment: each event reaches the
// receiver once. Then a replica stops with events claimed and not delivered (its lease held): a
// new replica delivers them when the lease ends, and nothing is lost.
func TestTwoReplicasDeliverOnce(t *testing.T) {
	ctx := context.Background()
	db, _ := testenv.PostgresDB(t, "")
	a, b := openPG(t, db), openPG(t, db)
	c := &clock{t: time.Now()}
	r := newReceiver(t, c.Now)
	na := newNotifier(t, a, c, notify.Options{}, r.srv.URL)
	nb := newNotifier(t, b, c, notify.Options{}, r.srv.URL)
	const events = 60
	var wg sync.WaitGroup
	for _, n := range []*notify.Notifier{na, nb} {
		wg.Go(func() {
			for i := range events {
				if _, err := n.Publish(ctx, leakEvent(fmt.Sprintf("ev-%02d", i))); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	for _, n := range []*notify.Notifier{na, nb} {
		wg.Go(func() {
			if _, err := n.DeliverDue(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, ok := r.posts()
	seen := map[string]int{}
	for _, e := range ok {
		seen[e.ID]++
	}
	if len(got) != events || len(seen) != events {
		t.Fatalf("%d posts of %d events; want each once", len(got), len(seen))
	}
	for id, k := range seen {
		if k != 1 {
			t.Errorf("%s delivered %d times", id, k)
		}
	}

	// Replica A claims a new event and stops before posting it.
	if _, err := na.Publish(ctx, leakEvent("ev-crash")); err != nil {
		t.Fatal(err)
	}
	claimed, err := a.ClaimNotifications(ctx, c.Now(), 2*time.Minute, 0)
	if err != nil || len(claimed) != 2 { // the webhook's row and the audit log's
		t.Fatalf("claim: %d, %v", len(claimed), err)
	}
	a.Close()
	// While the lease holds, B leaves them alone; after it, a new replica delivers them.
	if k, err := nb.DeliverDue(ctx); err != nil || k != 0 {
		t.Fatalf("B delivered %d (%v) of rows A holds", k, err)
	}
	c.Add(3 * time.Minute)
	restarted := newNotifier(t, openPG(t, db), c, notify.Options{}, r.srv.URL)
	if k, err := restarted.DeliverDue(ctx); err != nil || k != 2 {
		t.Fatalf("after A's lease: delivered %d, %v; want 2", k, err)
	}
	if _, ok := r.posts(); len(ok) != events+1 || ok[events].ID != "ev-crash" {
		t.Fatalf("posts after the restart: %d", len(ok))
	}
}
