package daemon_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/adminapi/client"
	"github.com/rill-authd/rill-authd/internal/testenv"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/store/postgres"
	"github.com/rill-authd/rill-authd/token"
)

// TestDeleteServiceWith200kTokensAcrossReplicas: a service holding 200,000 tokens (bulk-loaded
// with one COPY) is deleted through replica A while replica B answers checks over HTTP, of the
// big service's tokens and of another service's. B never answers 503 (it stays current: the
// delete is one change in the feed, the tokens move to tombstones outside the write lock), the
// other service's token is allowed throughout, and B denies the big service's tokens once the
// delete returned. The slowest check and the delete's time are logged. Before, the delete was
// one write of 200,001 changes that B had to read at once.
func TestDeleteServiceWith200kTokensAcrossReplicas(t *testing.T) {
	const n, sampled = 200_000, 2_000
	db, _ := testenv.PostgresDB(t, "")
	ctx := context.Background()
	now := time.Now()
	snap := store.Snapshot{
		Orgs:     []store.Org{{Name: "acme", CreatedAt: now}},
		Projects: []store.Project{{Org: "acme", Name: "web", CreatedAt: now}},
		Users:    []store.User{{ID: "root", Email: "root@acme.io", Superuser: true, CreatedAt: now}},
		Services: []store.Service{{ID: "big", Org: "acme", Name: "big", OrgRole: policy.Admin, CreatedAt: now},
			{ID: "other", Org: "acme", Name: "other", OrgRole: policy.Admin, CreatedAt: now}},
	}
	mint := func(k token.Kind, owner string) string {
		raw, err := token.New(k)
		if err != nil {
			t.Fatal(err)
		}
		snap.Tokens = append(snap.Tokens, store.NewToken(raw, owner, "", "", now, 0))
		return raw.Encode()
	}
	root, other := mint(token.User, "root"), mint(token.Service, "other")
	big := make([]string, sampled) // tokens to present; the rest get random ids and hashes
	for i := range big {
		big[i] = mint(token.Service, "big")
	}
	rnd := rand.NewChaCha8([32]byte{1})
	for range n - sampled {
		tk := store.Token{Kind: token.Service, OwnerID: "big", CreatedAt: now}
		rnd.Read(tk.ID[:])
		rnd.Read(tk.Hash[:])
		snap.Tokens = append(snap.Tokens, tk)
	}
	began := time.Now()
	pg, err := postgres.Open(ctx, postgres.Options{URL: db, MaintainInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := pg.Load(ctx, snap, false); err != nil {
		t.Fatal(err)
	}
	pg.Close()
	loaded := time.Since(began)
	a := testenv.Spawn(t, "", "--store", db)
	b := testenv.Spawn(t, "", "--store", db)
	a.WaitStarted(t)
	b.WaitStarted(t)
	if code := checkStatus(t, b, big[0]); code != 200 {
		t.Fatalf("a token of the big service on B before the delete: %d", code)
	}

	var (
		stop                 = make(chan struct{})
		wg                   sync.WaitGroup
		mu                   sync.Mutex
		lat                  []time.Duration
		unavailable, refused atomic.Int64
		allowedLate          atomic.Int64
		deleted              atomic.Int64 // Unix nanoseconds the delete returned
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				tok, isOther := big[rand.IntN(sampled)], w == 0 && i%2 == 0
				if isOther {
					tok = other
				}
				t0 := time.Now()
				code, body, err := tryCheck(b, tok)
				d := time.Since(t0)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
				switch {
				case code == 503:
					unavailable.Add(1)
					t.Errorf("B answered 503: %s", body)
				case isOther && code != 200:
					refused.Add(1)
					t.Errorf("B refused the other service's token: %d %s", code, body)
				case !isOther && code == 200:
					if at := deleted.Load(); at != 0 && t0.Sub(time.Unix(0, at)) > time.Second {
						allowedLate.Add(1)
					}
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	t0 := time.Now()
	if _, err := client.New(a.URL(), root).DeleteService(ctx, "acme", "big"); err != nil {
		t.Fatal(err)
	}
	took := time.Since(t0)
	deleted.Store(time.Now().UnixNano())
	if within(5*time.Second, func() bool { return checkStatus(t, b, big[sampled-1]) == 401 }) < 0 {
		t.Fatal("B still allows a token of the deleted service 5s after the delete returned")
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	// Every sampled token is refused on both replicas, as revoked.
	for _, d := range []*testenv.Daemon{a, b} {
		for i, tok := range big {
			if code, body, err := tryCheck(d, tok); err != nil || code != 401 || !strings.Contains(body, "revoked") {
				t.Fatalf("token %d of the deleted service on %s: %d %s %v, want 401 revoked", i, d.URL(), code, body, err)
			}
		}
	}
	if allowedLate.Load() > 0 {
		t.Errorf("B allowed a token of the deleted service %d times more than 1s after the delete returned", allowedLate.Load())
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(p float64) time.Duration {
		return lat[min(len(lat)-1, int(float64(len(lat))*p))].Round(time.Microsecond)
	}
	t.Logf("bulk-loaded %d tokens in %v; the delete took %v; %d checks on B meanwhile: p50 %v, p99 %v, max %v; %d were 503",
		n, loaded.Round(time.Millisecond), took.Round(time.Millisecond), len(lat), q(.5), q(.99), q(1), unavailable.Load())
	if s := fmt.Sprint(unavailable.Load(), refused.Load()); s != "0 0" {
		t.Errorf("B: %d answers 503, %d refusals of the other service's token; want none", unavailable.Load(), refused.Load())
	}
}
