package storetest

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// testRecordUses: a use records its time and where it came from (address and user agent, as
// TokenUse.Clean makes them); a use that does not say where moves the time and keeps the where;
// an older use changes nothing; whatever a client sent is stored, never refused; a gone token is
// skipped; and none of it is a change in the feed.
func testRecordUses(t *testing.T, su suite) {
	s, c := su.fresh(t), t.Context()
	w := populate(t, s)
	revoked := newToken(t, token.User, w.user.ID)
	must(t, s.CreateToken(c, revoked))
	must(t, s.DeleteToken(c, revoked.ID))
	rec, seq := record(t, s), lastSeq(t, s)

	t1 := now().Add(time.Minute)
	must(t, s.RecordUses(c, map[token.ID]store.TokenUse{
		w.userTok.ID:  {At: t1, IP: "::ffff:10.0.0.7", UserAgent: "curl/8.5.0"},
		w.svc2Tok.ID:  {At: t1, IP: "[2001:db8::1]:8443", UserAgent: ""},
		revoked.ID:    {At: t1, IP: "10.0.0.8", UserAgent: "x"},
		newTokenID(t): {At: t1, IP: "10.0.0.9"},
	}))
	want, want2 := w.userTok, w.svc2Tok
	want.LastUsedAt, want.LastUsedIP, want.LastUsedUserAgent = t1, "10.0.0.7", "curl/8.5.0"
	want2.LastUsedAt, want2.LastUsedIP = t1, "2001:db8::1"
	wantLive(t, s, want)
	wantLive(t, s, want2)
	wantRevoked(t, s, revoked.ID, "revoked") // not brought back

	long := strings.Repeat("é", 200) // 400 bytes
	for _, tc := range []struct {
		name       string
		use        store.TokenUse
		ip, ua     string
		at         time.Time
		uaContains string
	}{
		{"older: nothing changes", store.TokenUse{At: t1.Add(-time.Hour), IP: "10.9.9.9", UserAgent: "old"}, "10.0.0.7", "curl/8.5.0", t1, ""},
		{"no where: the time only", store.TokenUse{At: t1.Add(time.Second)}, "10.0.0.7", "curl/8.5.0", t1.Add(time.Second), ""},
		{"a new where replaces both", store.TokenUse{At: t1.Add(2 * time.Second), IP: "192.0.2.1"}, "192.0.2.1", "", t1.Add(2 * time.Second), ""},
		{"not an address: none", store.TokenUse{At: t1.Add(3 * time.Second), IP: "unix:/run/envoy.sock", UserAgent: "envoy"}, "", "envoy", t1.Add(3 * time.Second), ""},
		{"zone dropped", store.TokenUse{At: t1.Add(4 * time.Second), IP: "fe80::1%eth0", UserAgent: " padded  "}, "fe80::1", "padded", t1.Add(4 * time.Second), ""},
		{"hostile agent cleaned", store.TokenUse{At: t1.Add(5 * time.Second), IP: "10.0.0.1", UserAgent: "a\x00b\x1b[31mred\xff\u202eevil\n"}, "10.0.0.1",
			"a\uFFFDb\uFFFD[31mred\uFFFD\uFFFDevil\uFFFD", t1.Add(5 * time.Second), ""},
		{"long agent cut", store.TokenUse{At: t1.Add(6 * time.Second), IP: "10.0.0.1", UserAgent: long}, "10.0.0.1", "", t1.Add(6 * time.Second), "é…"},
	} {
		must(t, s.RecordUses(c, map[token.ID]store.TokenUse{w.userTok.ID: tc.use}))
		got := val(s.GetToken(c, w.userTok.ID))(t)
		if !got.LastUsedAt.Equal(tc.at) || got.LastUsedIP != tc.ip {
			t.Errorf("%s: at %v from %q, want %v from %q", tc.name, got.LastUsedAt, got.LastUsedIP, tc.at, tc.ip)
		}
		if tc.uaContains == "" && got.LastUsedUserAgent != tc.ua {
			t.Errorf("%s: user agent %q, want %q", tc.name, got.LastUsedUserAgent, tc.ua)
		}
		if tc.uaContains != "" && (!strings.HasSuffix(got.LastUsedUserAgent, tc.uaContains) || len(got.LastUsedUserAgent) > store.MaxUserAgent) {
			t.Errorf("%s: user agent of %d bytes %q, want at most %d ending %q", tc.name, len(got.LastUsedUserAgent), got.LastUsedUserAgent, store.MaxUserAgent, tc.uaContains)
		}
		if !utf8.ValidString(got.LastUsedUserAgent) || store.CheckText("ua", got.LastUsedUserAgent) != nil {
			t.Errorf("%s: stored user agent %q fails the text rule", tc.name, got.LastUsedUserAgent)
		}
	}
	// The listing shows the same.
	for _, tk := range val(s.ListTokens(c, w.user.ID))(t) {
		if tk.ID == w.userTok.ID && tk.LastUsedIP != "10.0.0.1" {
			t.Errorf("ListTokens: last used from %q, want 10.0.0.1", tk.LastUsedIP)
		}
	}
	// TouchTokens is a use that does not say where.
	must(t, s.TouchTokens(c, map[token.ID]time.Time{w.userTok.ID: t1.Add(time.Minute)}))
	if got := val(s.GetToken(c, w.userTok.ID))(t); got.LastUsedIP != "10.0.0.1" || !got.LastUsedAt.Equal(t1.Add(time.Minute)) {
		t.Errorf("TouchTokens after RecordUses: at %v from %q", got.LastUsedAt, got.LastUsedIP)
	}
	must(t, s.RecordUses(c, nil))

	if got := lastSeq(t, s); got != seq {
		t.Errorf("RecordUses moved LastSeq from %d to %d", seq, got)
	}
	if bs := rec.since(0); len(bs) > 0 {
		t.Errorf("RecordUses told subscribers %v", bs)
	}
}
