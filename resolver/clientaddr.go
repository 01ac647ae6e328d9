package resolver

import (
	"net/http"
	"net/netip"
	"strings"
)

// ClientAddr is the address of the client of a request (a check in the HTTP mode, an admin
// request): with hops > 0, the
// entry hops places from the right of X-Forwarded-For (all its header lines as one list, as
// each proxy appends to it), the part a trusted proxy wrote; with 0, the connection's peer. An
// entry that is not an IP address, or a list shorter than hops, is the zero Addr (unknown). It
// allocates nothing.
func ClientAddr(r *http.Request, hops int) netip.Addr {
	if hops <= 0 {
		ap, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil {
			return netip.Addr{}
		}
		return ap.Addr()
	}
	lines := r.Header["X-Forwarded-For"]
	for i := len(lines) - 1; i >= 0; i-- {
		line := lines[i]
		for {
			j := strings.LastIndexByte(line, ',')
			entry := strings.TrimSpace(line[j+1:])
			if hops--; hops == 0 {
				return parseForwarded(entry)
			}
			if j < 0 {
				break
			}
			line = line[:j]
		}
	}
	return netip.Addr{}
}

// parseForwarded reads one X-Forwarded-For entry: an address, or one with a port as some
// proxies write it ("192.0.2.1:443", "[2001:db8::1]:443").
func parseForwarded(s string) netip.Addr {
	if a, err := netip.ParseAddr(s); err == nil {
		return a
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr()
	}
	return netip.Addr{}
}
