package storetest

import (
	"errors"
	"net/netip"
	"reflect"
	"testing"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// testTokenLimits: a token's network and origin constraints are stored with it, listed, read by
// TokenAuth parsed, changed by SetTokenLimits (one token put in the feed) and cleared by it;
// text the validator refuses is refused with store.ErrInvalid and changes nothing; a revoked or
// unknown token cannot be changed.
func testTokenLimits(t *testing.T, su suite) {
	s, c := su.fresh(t), t.Context()
	w := populate(t, s)
	rec := record(t, s)

	tk := newToken(t, token.Service, w.svc.ID)
	tk.AllowedNetworks = []string{"10.0.0.0/8", "2001:db8::/32"}
	tk.AllowedOrigins = []string{"https://app.example.com"}
	must(t, s.CreateToken(c, tk))
	if got := normToken(val(s.GetToken(c, tk.ID))(t)); !reflect.DeepEqual(got, normToken(tk)) {
		t.Errorf("GetToken of a constrained token:\n got %+v\nwant %+v", got, tk)
	}
	found := false
	for _, l := range val(s.ListTokens(c, w.svc.ID))(t) {
		if l.ID == tk.ID {
			found = true
			if !reflect.DeepEqual(l.AllowedNetworks, tk.AllowedNetworks) || !reflect.DeepEqual(l.AllowedOrigins, tk.AllowedOrigins) {
				t.Errorf("ListTokens shows %q %q, want %q %q", l.AllowedNetworks, l.AllowedOrigins, tk.AllowedNetworks, tk.AllowedOrigins)
			}
		}
	}
	if !found {
		t.Fatal("ListTokens lacks the constrained token")
	}
	allows := func(id token.ID, addr string) bool {
		t.Helper()
		a := val(s.TokenAuth(c, id))(t)
		return a.Limits.AllowsAddr(netip.MustParseAddr(addr))
	}
	for _, tc := range []struct {
		addr string
		want bool
	}{{"10.1.2.3", true}, {"::ffff:10.1.2.3", true}, {"2001:db8::7", true}, {"11.0.0.1", false}, {"2001:db9::1", false}} {
		if got := allows(tk.ID, tc.addr); got != tc.want {
			t.Errorf("TokenAuth's limits allow %s: %v, want %v", tc.addr, got, tc.want)
		}
	}
	if a := val(s.TokenAuth(c, w.svc2Tok.ID))(t); a.Limits != nil {
		t.Errorf("TokenAuth of a token without constraints: limits %+v, want nil", a.Limits)
	}

	// Changed: a put of the token in the feed, read at once by TokenAuth.
	mark := rec.mark()
	got, err := s.SetTokenLimits(c, tk.ID, []string{"192.0.2.0/24"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.AllowedNetworks, []string{"192.0.2.0/24"}) || got.AllowedOrigins != nil || got.Hash != tk.Hash || got.OwnerID != tk.OwnerID {
		t.Errorf("SetTokenLimits returned %+v", got)
	}
	if h := rec.since(mark); len(h) != 1 || !sameSet(descs(h[0]), []string{put(store.ChangeToken, tk.ID.String())}) {
		t.Errorf("feed of SetTokenLimits: %v, want the token's put", h)
	}
	if allows(tk.ID, "10.1.2.3") || !allows(tk.ID, "192.0.2.9") {
		t.Error("TokenAuth after SetTokenLimits still answers the old networks")
	}
	if a := val(s.TokenAuth(c, tk.ID))(t); !a.Limits.AllowsOrigin("", "") {
		t.Error("origins cleared by SetTokenLimits still bind the token")
	}

	// Refused: nothing changes.
	for _, bad := range []struct {
		name              string
		networks, origins []string
	}{
		{"not a CIDR", []string{"10.0.0.300/8"}, nil},
		{"not canonical", []string{"10.1.0.0/8"}, nil},
		{"not an origin", nil, []string{"https://app.example.com/path"}},
		{"a NUL", nil, []string{"https://a\x00b"}},
	} {
		if _, err := s.SetTokenLimits(c, tk.ID, bad.networks, bad.origins); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("SetTokenLimits %s: %v, want ErrInvalid", bad.name, err)
		}
		bt := newToken(t, token.Service, w.svc.ID)
		bt.AllowedNetworks, bt.AllowedOrigins = bad.networks, bad.origins
		if err := s.CreateToken(c, bt); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("CreateToken %s: %v, want ErrInvalid", bad.name, err)
		}
	}
	if !allows(tk.ID, "192.0.2.9") {
		t.Error("a refused SetTokenLimits changed the token")
	}

	// Cleared: no constraints at all.
	if _, err := s.SetTokenLimits(c, tk.ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	if a := val(s.TokenAuth(c, tk.ID))(t); a.Limits != nil {
		t.Errorf("TokenAuth after clearing: limits %+v, want nil", a.Limits)
	}
	if g := val(s.GetToken(c, tk.ID))(t); g.AllowedNetworks != nil || g.AllowedOrigins != nil {
		t.Errorf("GetToken after clearing: %q %q", g.AllowedNetworks, g.AllowedOrigins)
	}

	// A magic token keeps its grant through a change of its constraints.
	m := newMagic(t, w.org, w.project.Name)
	must(t, s.CreateToken(c, m))
	if _, err := s.SetTokenLimits(c, m.ID, nil, []string{"https://shop.example.com"}); err != nil {
		t.Fatal(err)
	}
	gm := val(s.GetToken(c, m.ID))(t)
	if !reflect.DeepEqual(gm.Magic, m.Magic) || !reflect.DeepEqual(gm.AllowedOrigins, []string{"https://shop.example.com"}) {
		t.Errorf("a magic token after SetTokenLimits: %+v %+v", gm, gm.Magic)
	}
	if a := val(s.TokenAuth(c, m.ID))(t); !a.Limits.AllowsOrigin("https://shop.example.com", "") || a.Limits.AllowsOrigin("https://evil.example.com", "") {
		t.Errorf("TokenAuth of the magic token: limits %+v", a.Limits)
	}

	// Revoked and unknown tokens are not changed.
	must(t, s.DeleteToken(c, tk.ID))
	if _, err := s.SetTokenLimits(c, tk.ID, []string{"10.0.0.0/8"}, nil); !errors.Is(err, store.ErrRevoked) {
		t.Errorf("SetTokenLimits of a revoked token: %v, want ErrRevoked", err)
	}
	if _, err := s.SetTokenLimits(c, newTokenID(t), []string{"10.0.0.0/8"}, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetTokenLimits of an unknown token: %v, want ErrNotFound", err)
	}
	if _, err := s.DeleteService(c, w.svc2.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetTokenLimits(c, w.svc2Tok.ID, []string{"10.0.0.0/8"}, nil); !errors.Is(err, store.ErrRevoked) {
		t.Errorf("SetTokenLimits of a deleted service's token: %v, want ErrRevoked", err)
	}
}
