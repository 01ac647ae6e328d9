package adminapi

import (
	"fmt"
	"testing"
	"time"
)

// TestIssueLimiter: a principal issues its whole minute's worth at once, then one per
// 60/perMinute seconds, with the wait it is told; principals do not share a bucket; past
// maxBuckets, principals whose bucket refilled are forgotten; 0 is no limit.
func TestIssueLimiter(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := newIssueLimiter(6, func() time.Time { return now }) // one every 10 s
	for i := range 6 {
		if ok, _ := l.take("ada"); !ok {
			t.Fatalf("issue %d of a burst of 6 refused", i+1)
		}
	}
	ok, wait := l.take("ada")
	if ok || wait != 10*time.Second {
		t.Fatalf("the 7th issue: %v, wait %v; want refused, 10s", ok, wait)
	}
	if ok, _ := l.take("bob"); !ok {
		t.Fatal("another principal is held back by ada's issues")
	}
	now = now.Add(4 * time.Second)
	if ok, wait := l.take("ada"); ok || wait != 6*time.Second {
		t.Fatalf("4s later: %v, wait %v; want refused, 6s", ok, wait)
	}
	now = now.Add(6 * time.Second)
	if ok, _ := l.take("ada"); !ok {
		t.Fatal("10s later: refused, want one more issue")
	}
	if ok, _ := l.take("ada"); ok {
		t.Fatal("a second issue after 10s allowed, want one")
	}
	// Many principals: the map stays bounded, and forgetting a full bucket changes nothing.
	for i := range maxBuckets {
		l.take(fmt.Sprint("p", i))
	}
	now = now.Add(time.Minute)
	l.take("newcomer")
	if len(l.buckets) > 2 {
		t.Fatalf("%d buckets kept after a minute past %d principals, want the idle ones forgotten", len(l.buckets), maxBuckets)
	}
	if newIssueLimiter(0, time.Now) != nil {
		t.Fatal("a rate of 0 limits")
	}
	var none *issueLimiter
	if ok, _ := none.take("x"); !ok {
		t.Fatal("no limiter refused")
	}
}
