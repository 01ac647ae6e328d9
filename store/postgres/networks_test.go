package postgres

import (
	"net/netip"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// TestReplicaSeesNewNetworks: a token's networks changed on replica A reach replica B's index
// through the feed, and B's subscribers hear the token's put (so its resolver drops the
// token): bound, rebound and freed, each within a second; B opened afterwards loads them.
func TestReplicaSeesNewNetworks(t *testing.T) {
	u := newDatabase(t)
	a, b := openDB(t, u), openDB(t, u)
	heard := make(chan store.Change, 16)
	b.Subscribe(func(cs []store.Change) {
		for _, c := range cs {
			if c.Kind == store.ChangeToken {
				select {
				case heard <- c:
				default:
				}
			}
		}
	})
	must(t, a.CreateUser(ctx, store.User{ID: "u1", Email: "a@b.c"}))
	tk, raw := newToken(t, token.User, "u1")
	tk.AllowedNetworks = []string{"10.0.0.0/8"}
	must(t, a.CreateToken(ctx, tk))
	allows := func(s *DB, addr string) bool {
		ta, err := s.TokenAuth(ctx, raw.ID)
		return err == nil && ta.Limits.AllowsAddr(netip.MustParseAddr(addr))
	}
	eventually(t, time.Second, "B holds the token bound to 10/8", func() bool { return allows(b, "10.1.1.1") && !allows(b, "192.0.2.1") })
	for _, step := range []struct {
		networks []string
		in, out  string
	}{{[]string{"192.0.2.0/24"}, "192.0.2.1", "10.1.1.1"}, {nil, "10.1.1.1", ""}} {
		for len(heard) > 0 {
			<-heard
		}
		if _, err := a.SetTokenLimits(ctx, tk.ID, step.networks, nil); err != nil {
			t.Fatal(err)
		}
		eventually(t, time.Second, "B applies the new networks", func() bool {
			return allows(b, step.in) && (step.out == "" || !allows(b, step.out))
		})
		select {
		case c := <-heard:
			if c.Op != store.OpPut || c.ID != tk.ID.String() {
				t.Errorf("B heard %+v, want the token's put", c)
			}
		case <-time.After(time.Second):
			t.Error("B's subscribers did not hear of the change")
		}
	}
	if _, err := a.SetTokenLimits(ctx, tk.ID, []string{"2001:db8::/32"}, nil); err != nil {
		t.Fatal(err)
	}
	c := openDB(t, u) // loads the index from the database
	if !allows(c, "2001:db8::1") || allows(c, "10.1.1.1") {
		t.Error("a replica opened after the change does not load the token's networks")
	}
}
