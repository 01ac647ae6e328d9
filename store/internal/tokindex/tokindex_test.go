package tokindex

import (
	"fmt"
	"runtime"
	"testing"
	"time"

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
		x.Put(id, token.User, fmt.Sprint("u", i%1000), token.Hash{}, time.Time{})
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
	x.Put(raw.ID, token.Service, "s1", raw.Hash(), exp)
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
