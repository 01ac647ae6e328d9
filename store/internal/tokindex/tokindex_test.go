package tokindex

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// TestMemory bounds what the index costs per token, since it grows with the store.
func TestMemory(t *testing.T) {
	const n = 200_000
	x := New()
	ids := make([]token.ID, n)
	for i := range ids {
		raw, err := token.New(token.User)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = raw.ID
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i, id := range ids {
		x.Put(id, store.TokenAuth{Kind: token.User, OwnerID: fmt.Sprint("u", i%1000), Hash: token.Hash{}, ExpiresAt: time.Time{}})
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(ids) // else they are freed between the two readings
	perToken := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("token index: %.0f bytes per token (%d tokens, 1000 owners)", perToken, n)
	if perToken > 128 {
		t.Fatalf("token index costs %.0f bytes per token, want at most 128", perToken)
	}
	if x.Len() != n {
		t.Fatalf("index holds %d tokens, want %d", x.Len(), n)
	}
}

func TestPutGetRemove(t *testing.T) {
	x := New()
	raw, err := token.New(token.Service)
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour).Round(0).UTC()
	x.Put(raw.ID, store.TokenAuth{Kind: token.Service, OwnerID: "s1", Hash: raw.Hash(), ExpiresAt: exp})
	got, ok := x.Get(raw.ID)
	if !ok || got.Kind != token.Service || got.OwnerID != "s1" || got.Hash != raw.Hash() || !got.ExpiresAt.Equal(exp) {
		t.Fatalf("Get: %+v %v", got, ok)
	}
	if x.Len() != 1 {
		t.Fatalf("Len %d, want 1", x.Len())
	}
	other, err := token.New(token.User)
	if err != nil {
		t.Fatal(err)
	}
	x.Remove(raw.ID, other.ID) // an id it does not hold is ignored
	if _, ok := x.Get(raw.ID); ok || x.Len() != 0 {
		t.Fatal("removed token still held")
	}
}

// TestRemoveOwner drops exactly one owner's tokens, however they were put, replaced or removed
// before, and costs nothing for an owner without tokens.
func TestRemoveOwner(t *testing.T) {
	x := New()
	ids := map[string][]token.ID{}
	for i := range 300 {
		raw, err := token.New(token.Service)
		if err != nil {
			t.Fatal(err)
		}
		owner := fmt.Sprint("s", i%3)
		x.Put(raw.ID, store.TokenAuth{Kind: token.Service, OwnerID: owner, Hash: raw.Hash(), ExpiresAt: time.Time{}})
		ids[owner] = append(ids[owner], raw.ID)
	}
	// One of s0's tokens moves to s1 (a Put that replaces); one of s1's is removed.
	moved := ids["s0"][0]
	x.Put(moved, store.TokenAuth{Kind: token.Service, OwnerID: "s1", Hash: token.Hash{}, ExpiresAt: time.Time{}})
	x.Remove(ids["s1"][0])
	if len(x.Owned(token.Service, "s0")) != 99 || len(x.Owned(token.Service, "s1")) != 100 || x.Owned(token.Service, "nobody") != nil {
		t.Fatalf("owned: s0 %d s1 %d, want 99 and 100", len(x.Owned(token.Service, "s0")), len(x.Owned(token.Service, "s1")))
	}
	// The other tokens keep their places in their owners' lists.
	for _, id := range x.Owned(token.Service, "s1") {
		if got, ok := x.Get(id); !ok || got.OwnerID != "s1" {
			t.Fatalf("s1 lists a token it does not own: %+v %v", got, ok)
		}
	}
	gone := x.RemoveOwner(token.Service, "s1")
	if len(gone) != 100 {
		t.Fatalf("RemoveOwner(s1) removed %d tokens, want 100", len(gone))
	}
	for _, id := range gone {
		if _, ok := x.Get(id); ok {
			t.Fatal("a token of the removed owner is still held")
		}
	}
	if _, ok := x.Get(moved); ok {
		t.Fatal("the token moved to s1 is still held")
	}
	for _, id := range ids["s2"] {
		if _, ok := x.Get(id); !ok {
			t.Fatal("a token of another owner was removed")
		}
	}
	if x.Len() != 99+100 || x.Owned(token.Service, "s1") != nil {
		t.Fatalf("index holds %d tokens, want 199", x.Len())
	}
	if got := x.RemoveOwner(token.Service, "s1"); got != nil {
		t.Fatalf("a second RemoveOwner removed %d", len(got))
	}
	if got := x.RemoveOwner(token.User, "s0"); got != nil {
		t.Fatalf("RemoveOwner of another kind removed %d", len(got))
	}
	if got := x.RemoveOwner(token.Service, "never-seen"); got != nil {
		t.Fatalf("RemoveOwner of an unknown owner removed %d", len(got))
	}
}

// BenchmarkRemoveOwner is the cost of dropping an owner of 1,000 tokens from a large index.
func BenchmarkRemoveOwner(b *testing.B) {
	x := New()
	for i := range 1_000_000 {
		raw, _ := token.New(token.User)
		x.Put(raw.ID, store.TokenAuth{Kind: token.User, OwnerID: fmt.Sprint("u", i%1000), Hash: token.Hash{}, ExpiresAt: time.Time{}})
	}
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		owner := fmt.Sprint("u", i%1000)
		for range 1000 - len(x.Owned(token.User, owner)) {
			raw, _ := token.New(token.User)
			x.Put(raw.ID, store.TokenAuth{Kind: token.User, OwnerID: owner, Hash: token.Hash{}, ExpiresAt: time.Time{}})
		}
		b.StartTimer()
		x.RemoveOwner(token.User, owner)
	}
}
