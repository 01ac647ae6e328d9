package store

import (
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"
)

// TokenUse is a token's latest use in one flush of the resolver's batch (RecordUses): when,
// and where from. The where is whatever the client sent, so engines keep it only as Clean
// makes it.
type TokenUse struct {
	At time.Time
	// IP is the client's address and UserAgent its User-Agent header. Both empty: the use did
	// not say where it came from (an introspection, a holder's revocation), and the token's
	// recorded where stays as it was; otherwise both replace it.
	IP, UserAgent string
}

// MaxUserAgent bounds a recorded User-Agent, in bytes: a client chooses it, and it is shown in
// lists, so it must stay a line.
const MaxUserAgent = 256

// HasWhere reports whether u says where it came from.
func (u TokenUse) HasWhere() bool { return u.IP != "" || u.UserAgent != "" }

// Clean is u as a store keeps it: IP the canonical text of an IP address (no port, no zone,
// an IPv4-mapped IPv6 address as IPv4) or empty when it is none, UserAgent through
// CleanUserAgent. A use is never refused for what its client sent.
func (u TokenUse) Clean() TokenUse {
	u.IP, u.UserAgent = CleanIP(u.IP), CleanUserAgent(u.UserAgent)
	return u
}

// CleanIP is s as a canonical IP address, or "" when s is none. It takes an address with a
// port ("10.0.0.1:443", "[::1]:443") or brackets, as transports give it.
func CleanIP(s string) string {
	if s == "" {
		return ""
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return ""
		}
		a = ap.Addr()
	}
	return a.Unmap().WithZone("").String()
}

// CleanUserAgent makes a client's User-Agent safe to store and to print: bytes that are not
// UTF-8, control characters (C0, DEL, C1: a terminal would obey an escape sequence in a list)
// and bidirectional overrides (which reorder what is shown around them) become U+FFFD; spaces
// at either end go; and it is cut at a character boundary to at most MaxUserAgent bytes, the
// cut marked with "…". The result passes CheckText.
func CleanUserAgent(s string) string {
	if plainASCII(s) {
		return strings.TrimSpace(s)
	}
	var b strings.Builder
	for _, r := range s { // a byte that is not UTF-8 comes as U+FFFD
		if b.Len() > MaxUserAgent {
			break // enough to know it is cut; a header may be many kilobytes
		}
		if r < 0x20 || r >= 0x7f && r < 0xa0 || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069 {
			r = utf8.RuneError
		}
		b.WriteRune(r)
	}
	out := strings.TrimSpace(b.String())
	if len(out) <= MaxUserAgent {
		return out
	}
	const ellipsis = "…"
	cut := MaxUserAgent - len(ellipsis)
	for !utf8.RuneStart(out[cut]) {
		cut--
	}
	return strings.TrimSpace(out[:cut]) + ellipsis
}

// plainASCII reports whether s is printable ASCII short enough to keep as it is: the common
// case, which costs no copy.
func plainASCII(s string) bool {
	if len(s) > MaxUserAgent {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
