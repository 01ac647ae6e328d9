package store

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// TestNormalizeNetworks: CIDRs and single addresses are stored canonical (masked, IPv4-mapped
// as IPv4, no duplicates); anything else is ErrInvalid with the entry and the reason named.
func TestNormalizeNetworks(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want []string
		err  string
	}{
		{in: nil, want: nil},
		{in: []string{"10.0.0.0/8"}, want: []string{"10.0.0.0/8"}},
		{in: []string{" 10.1.2.3/8 "}, want: []string{"10.0.0.0/8"}},
		{in: []string{"192.0.2.7"}, want: []string{"192.0.2.7/32"}},
		{in: []string{"2001:DB8::1/32"}, want: []string{"2001:db8::/32"}},
		{in: []string{"2001:db8::1"}, want: []string{"2001:db8::1/128"}},
		{in: []string{"::ffff:10.0.0.0/104"}, want: []string{"10.0.0.0/8"}},
		{in: []string{"10.0.0.0/8", "10.9.9.9/8"}, want: []string{"10.0.0.0/8"}},
		{in: []string{"0.0.0.0/0", "::/0"}, want: []string{"0.0.0.0/0", "::/0"}},
		{in: []string{"10.0.0.300/8"}, err: `allowed_networks[0]: "10.0.0.300/8" is not a CIDR`},
		{in: []string{"10.0.0.0/33"}, err: "not a CIDR"},
		{in: []string{"10.0.0.0/8", "example.com"}, err: `allowed_networks[1]: "example.com"`},
		{in: []string{""}, err: "not a CIDR"},
		{in: []string{"fe80::1%eth0/64"}, err: "not a CIDR"},
		{in: []string{"::ffff:0.0.0.0/8"}, err: "IPv4-mapped"},
		{in: []string{"10.0.0.0/8/8"}, err: "not a CIDR"},
	} {
		got, err := NormalizeNetworks(tc.in)
		if tc.err != "" {
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("NormalizeNetworks(%q) = %q, %v; want ErrInvalid saying %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("NormalizeNetworks(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	many := make([]string, MaxAllowedNetworks+1)
	for i := range many {
		many[i] = "10.0.0.0/8"
	}
	if _, err := NormalizeNetworks(many); !errors.Is(err, ErrInvalid) {
		t.Errorf("%d networks: %v, want ErrInvalid", len(many), err)
	}
}

// TestNormalizeOrigins: an origin is an http(s) scheme and host (and port), nothing else;
// stored lower case without a default port.
func TestNormalizeOrigins(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		err  string
	}{
		{in: "https://App.Example.com", want: "https://app.example.com"},
		{in: "https://app.example.com/", want: "https://app.example.com"},
		{in: "https://app.example.com:443", want: "https://app.example.com"},
		{in: "http://localhost:3000", want: "http://localhost:3000"},
		{in: "HTTP://[::1]:8080", want: "http://[::1]:8080"},
		{in: "https://app.example.com/embed", err: "no path"},
		{in: "https://app.example.com?x=1", err: "no path"},
		{in: "https://user@app.example.com", err: "user information"},
		{in: "ftp://app.example.com", err: "scheme"},
		{in: "app.example.com", err: "scheme"},
		{in: "javascript:alert(1)", err: "scheme"},
		{in: "https://", err: "no host"},
		{in: "null", err: "scheme"},
		{in: "https://a\x00b", err: "NUL"},
	} {
		got, err := NormalizeOrigins([]string{tc.in})
		if tc.err != "" {
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("NormalizeOrigins(%q) = %q, %v; want ErrInvalid saying %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || len(got) != 1 || got[0] != tc.want {
			t.Errorf("NormalizeOrigins(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// TestLimitsAllows: addresses match their family's networks, IPv4-mapped IPv6 as IPv4, zones
// dropped; an unknown address and a request without Origin or Referer are refused when bound.
func TestLimitsAllows(t *testing.T) {
	l, err := LimitsOf([]string{"10.0.0.0/8", "2001:db8::/32"}, []string{"https://shop.example.com", "http://localhost:3000"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"10.0.0.1", true}, {"10.255.255.255", true}, {"11.0.0.0", false}, {"9.255.255.255", false},
		{"::ffff:10.2.3.4", true}, {"::ffff:11.2.3.4", false},
		{"2001:db8::1", true}, {"2001:db8:ffff::1", true}, {"2001:db9::1", false},
		{"::a00:1", false}, // 10.0.0.1's bits, but an IPv6 address, not IPv4-mapped
		{"fe80::1%eth0", false}, {"2001:db8::1%eth0", true},
		{"127.0.0.1", false}, {"::1", false},
	} {
		if got := l.AllowsAddr(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("AllowsAddr(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
	if l.AllowsAddr(netip.Addr{}) {
		t.Error("an unknown address is allowed by a token bound to networks")
	}
	for _, tc := range []struct {
		origin, referer string
		want            bool
	}{
		{"https://shop.example.com", "", true},
		{"HTTPS://SHOP.example.com", "", true},
		{"https://evil.example.com", "https://shop.example.com/page", false}, // Origin wins over Referer
		{"", "https://shop.example.com/embed?x=1", true},
		{"", "https://shop.example.com", true},
		{"", "https://shop.example.com.evil.com/", false},
		{"", "https://shop.example.com:8443/", false},
		{"", "http://localhost:3000/#x", true},
		{"null", "https://shop.example.com/a", true}, // an opaque origin: the Referer decides
		{"null", "", false},
		{"", "", false},
		{"", "shop.example.com", false},
		{"https://shop.example.com/", "", false}, // an Origin header never has a path
	} {
		if got := l.AllowsOrigin(tc.origin, tc.referer); got != tc.want {
			t.Errorf("AllowsOrigin(%q, %q) = %v, want %v", tc.origin, tc.referer, got, tc.want)
		}
	}
	for _, tc := range []struct {
		network, addr string
		want          bool
	}{
		{"0.0.0.0/0", "203.0.113.1", true}, {"0.0.0.0/0", "::1", false}, {"::/0", "::1", true}, {"::/0", "10.0.0.1", false},
		{"192.0.2.7/32", "192.0.2.7", true}, {"192.0.2.7/32", "192.0.2.6", false}, {"192.0.2.0/31", "192.0.2.1", true},
		{"192.0.2.0/31", "192.0.2.2", false}, {"128.0.0.0/1", "127.255.255.255", false}, {"128.0.0.0/1", "128.0.0.0", true},
	} {
		one, err := LimitsOf([]string{tc.network}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := one.AllowsAddr(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("%s allows %s: %v, want %v", tc.network, tc.addr, got, tc.want)
		}
	}
	var none *Limits
	if !none.AllowsAddr(netip.Addr{}) || !none.AllowsOrigin("", "") {
		t.Error("no limits refuse something")
	}
	addr := netip.MustParseAddr("::ffff:10.2.3.4")
	if n := testing.AllocsPerRun(100, func() {
		_ = l.AllowsAddr(addr)
		_ = l.AllowsOrigin("", "https://shop.example.com/embed")
	}); n != 0 {
		t.Errorf("checks allocate %v times, want 0", n)
	}
}

// TestCheckFieldsLimits: the validator every engine calls refuses a token whose constraints
// are malformed or not canonical, naming the token.
func TestCheckFieldsLimits(t *testing.T) {
	for _, tc := range []struct {
		networks, origins []string
		ok                bool
	}{
		{[]string{"10.0.0.0/8"}, []string{"https://a.example"}, true},
		{[]string{"10.0.0.1/8"}, nil, false},
		{[]string{"x"}, nil, false},
		{nil, []string{"https://A.example"}, false},
		{nil, []string{"https://a.example/p"}, false},
	} {
		err := CheckFields("token x", Token{AllowedNetworks: tc.networks, AllowedOrigins: tc.origins})
		if (err == nil) != tc.ok || err != nil && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "token x")) {
			t.Errorf("CheckFields(%q, %q) = %v, want ok %v", tc.networks, tc.origins, err, tc.ok)
		}
	}
	if a := (&Token{AllowedNetworks: []string{"garbage"}}).Auth(); a.Limits.AllowsAddr(netip.MustParseAddr("10.0.0.1")) {
		t.Error("an unparsable stored constraint allows a check (it must fail closed)")
	}
}
