package adminapi

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/store/badger"
	"github.com/rill-authd/rill-authd/token"
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

// TestTooManyTokensHint: the refusal past --max-tokens-per-owner says how to make room with
// commands that work for the caller: their own tokens plainly, another user's (a superuser
// issuing for them) with --user and the owner's email.
func TestTooManyTokensHint(t *testing.T) {
	st, err := badger.Open(badger.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	if err := st.CreateUser(ctx, store.User{ID: "u-ada", Email: "ada@acme.io"}); err != nil {
		t.Fatal(err)
	}
	a := &API{st: st}
	a.maxPerOwner.Store(3)
	for _, tc := range []struct {
		name, callerID, want, not string
	}{
		{"her own", "u-ada", "`rillctl token list` and revoke unused ones with `rillctl token revoke`", "--user"},
		{"a superuser's for her", "u-su", "`rillctl token list --user ada@acme.io` and revoke unused ones with `rillctl token revoke --user ada@acme.io`", ""},
	} {
		c := &caller{p: &policy.Principal{ID: tc.callerID, Kind: policy.KindUser}}
		err := a.tooManyTokens(ctx, c, token.User, "u-ada", store.ErrTooManyTokens)
		var e *Error
		if !errors.As(err, &e) || e.Status != 409 || !strings.Contains(e.Message, "user ada@acme.io already holds 3 live tokens") ||
			!strings.Contains(e.Message, tc.want) || tc.not != "" && strings.Contains(e.Message, tc.not) {
			t.Errorf("%s: %v, want a 409 containing %q", tc.name, err, tc.want)
		}
	}
}
