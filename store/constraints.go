package store

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// MaxAllowedNetworks and MaxAllowedOrigins bound a token's constraints: a check walks them
// all, so they stay short (a longer list is a sign of the wrong tool: a network policy).
const (
	MaxAllowedNetworks = 64
	MaxAllowedOrigins  = 32
)

// Limits is a token's constraints on where it may be used (Token.AllowedNetworks and
// AllowedOrigins), parsed once when the token is loaded, so a check compares without parsing
// or allocating. A nil *Limits allows everything.
type Limits struct {
	Networks []netip.Prefix // canonical: masked, IPv4 as IPv4 (never IPv4-mapped)
	Origins  []string       // canonical: lower-case scheme://host[:port], no default port
	// v4 are the IPv4 networks as (network, mask) words and v6 the others, so the common
	// IPv4 check is a masked compare per network.
	v4 []v4net
	v6 []netip.Prefix
}

type v4net struct{ net, mask uint32 }

// LimitsOf parses t's constraints; nil when it has none. The stored text passed CheckFields,
// so an error here is a record no engine should hold.
func LimitsOf(networks, origins []string) (*Limits, error) {
	if len(networks) == 0 && len(origins) == 0 {
		return nil, nil
	}
	l := &Limits{Networks: make([]netip.Prefix, 0, len(networks)), Origins: origins}
	for i, n := range networks {
		p, err := parseNetwork(n)
		if err != nil {
			return nil, fmt.Errorf("allowed_networks[%d]: %w", i, err)
		}
		l.Networks = append(l.Networks, p)
		if p.Addr().Is4() {
			a := p.Addr().As4()
			mask := ^uint32(0)
			if p.Bits() < 32 {
				mask = ^(^uint32(0) >> p.Bits())
			}
			if p.Bits() == 0 {
				mask = 0
			}
			l.v4 = append(l.v4, v4net{binary.BigEndian.Uint32(a[:]), mask})
		} else {
			l.v6 = append(l.v6, p)
		}
	}
	return l, nil
}

// AllowsAddr reports whether a check from addr may use the token. An unknown address (the zero
// Addr: no source address given) is refused when the token is bound to networks: a constraint
// nobody can verify does not hold.
func (l *Limits) AllowsAddr(addr netip.Addr) bool {
	if l == nil || len(l.Networks) == 0 {
		return true
	}
	if !addr.IsValid() {
		return false
	}
	addr = addr.Unmap()
	if addr.Is4() {
		a := addr.As4()
		x := binary.BigEndian.Uint32(a[:])
		for _, n := range l.v4 {
			if x&n.mask == n.net {
				return true
			}
		}
		return false
	}
	if addr.Zone() != "" {
		addr = addr.WithZone("")
	}
	for i := range l.v6 {
		if l.v6[i].Contains(addr) {
			return true
		}
	}
	return false
}

// AllowsOrigin reports whether a request whose Origin header is origin (else whose Referer is
// referer) may use the token. A request with neither is refused when the token is bound to
// origins. It allocates nothing.
func (l *Limits) AllowsOrigin(origin, referer string) bool {
	if l == nil || len(l.Origins) == 0 {
		return true
	}
	o := origin
	if o == "" || o == "null" {
		o = originOfURL(referer)
	}
	if o == "" {
		return false
	}
	for _, a := range l.Origins {
		if len(a) == len(o) && (a == o || strings.EqualFold(a, o)) {
			return true
		}
	}
	return false
}

// originOfURL is the scheme://host[:port] part of an absolute URL ("" for anything else),
// without allocating: the text up to the first '/', '?' or '#' after "://".
func originOfURL(u string) string {
	i := strings.Index(u, "://")
	if i <= 0 {
		return ""
	}
	end := i + 3
	for end < len(u) && u[end] != '/' && u[end] != '?' && u[end] != '#' {
		end++
	}
	if end == i+3 {
		return ""
	}
	return u[:end]
}

// parseNetwork reads a CIDR (or a single address: a /32 or /128), in canonical form: masked,
// and an IPv4-mapped IPv6 prefix as the IPv4 prefix it names (so ::ffff:10.0.0.0/104 and
// 10.0.0.0/8 are one network, as a check unmaps the client's address).
func parseNetwork(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		a, aerr := netip.ParseAddr(s)
		if aerr != nil || strings.Contains(s, "/") {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR (like 10.0.0.0/8 or 2001:db8::/32) or an IP address", s)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if p.Addr().Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q holds an IPv6 zone; a network may not", s)
	}
	if a := p.Addr(); a.Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("%q is an IPv4-mapped IPv6 network shorter than /96; write the IPv4 or IPv6 network it means", s)
		}
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// NormalizeNetworks checks and canonicalizes allowed networks as issued (CIDRs or single
// addresses): masked, IPv4-mapped ones as IPv4, duplicates dropped. The error says which one is
// wrong and why (a 400 for the API).
func NormalizeNetworks(ns []string) ([]string, error) {
	if len(ns) > MaxAllowedNetworks {
		return nil, fmt.Errorf("%w: allowed_networks holds %d networks; at most %d are allowed", ErrInvalid, len(ns), MaxAllowedNetworks)
	}
	var out []string
	for i, n := range ns {
		p, err := parseNetwork(strings.TrimSpace(n))
		if err != nil {
			return nil, fmt.Errorf("%w: allowed_networks[%d]: %s", ErrInvalid, i, err.Error())
		}
		if s := p.String(); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// NormalizeOrigins checks and canonicalizes allowed origins: an http or https URL with a host
// and nothing after it (a browser's Origin header: "https://app.example.com[:port]"), lower
// case, without the scheme's default port, duplicates dropped.
func NormalizeOrigins(os []string) ([]string, error) {
	if len(os) > MaxAllowedOrigins {
		return nil, fmt.Errorf("%w: allowed_origins holds %d origins; at most %d are allowed", ErrInvalid, len(os), MaxAllowedOrigins)
	}
	var out []string
	for i, o := range os {
		c, err := normalizeOrigin(strings.TrimSpace(o))
		if err != nil {
			return nil, fmt.Errorf("%w: allowed_origins[%d]: %s", ErrInvalid, i, err.Error())
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, nil
}

func normalizeOrigin(s string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%q is not an origin (like https://app.example.com or http://localhost:3000): %s", s, why)
	}
	if !textOK(s) {
		return bad("it is not UTF-8 text without NUL")
	}
	u, err := url.Parse(s)
	if err != nil {
		return bad("it does not parse as a URL")
	}
	scheme := strings.ToLower(u.Scheme)
	switch {
	case scheme != "http" && scheme != "https":
		return bad("the scheme must be http or https")
	case u.Opaque != "" || u.Host == "" || u.Hostname() == "":
		return bad("it names no host")
	case u.User != nil:
		return bad("it holds user information")
	case u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return bad("an origin has no path, query or fragment")
	}
	host := strings.ToLower(u.Host)
	if port := u.Port(); scheme == "https" && port == "443" || scheme == "http" && port == "80" {
		host = strings.TrimSuffix(host, ":"+port)
	}
	return scheme + "://" + host, nil
}

// checkLimits refuses constraints that are not in canonical form: every stored token's are, so
// the index parses them without fail (and copy-store and restore refuse a record that holds
// others).
func checkLimits(networks, origins []string) string {
	if len(networks) == 0 && len(origins) == 0 {
		return ""
	}
	n, err := NormalizeNetworks(networks)
	if err != nil {
		return strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": ")
	}
	if !slices.Equal(n, networks) {
		return fmt.Sprintf("allowed_networks %q are not in canonical form (%q)", networks, n)
	}
	o, err := NormalizeOrigins(origins)
	if err != nil {
		return strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": ")
	}
	if !slices.Equal(o, origins) {
		return fmt.Sprintf("allowed_origins %q are not in canonical form (%q)", origins, o)
	}
	return ""
}

// denyAll is the Limits of a record whose constraints cannot be parsed (none that passed
// CheckFields): the zero Prefix contains no address, so such a token works nowhere rather than
// everywhere.
var denyAll = &Limits{Networks: []netip.Prefix{{}}}

// Auth is what a check needs of t, its constraints parsed (see TokenAuth). Constraints that do
// not parse (a record no validator let in) fail closed: the token is refused from everywhere.
func (t *Token) Auth() TokenAuth {
	a := TokenAuth{Kind: t.Kind, OwnerID: t.OwnerID, Hash: t.Hash, ExpiresAt: t.ExpiresAt}
	if l, err := LimitsOf(t.AllowedNetworks, t.AllowedOrigins); err != nil {
		a.Limits = denyAll
	} else {
		a.Limits = l
	}
	return a
}
