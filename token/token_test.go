package token

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

var scanner = regexp.MustCompile(`^rill_(usr|svc)_[0-9A-Za-z]{60}$`)

func mustNew(t testing.TB, k Kind) Token {
	t.Helper()
	tok, err := New(k)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestRoundTrip(t *testing.T) {
	for _, k := range []Kind{User, Service} {
		for i := 0; i < 200; i++ {
			tok := mustNew(t, k)
			s := tok.Encode()
			if !scanner.MatchString(s) {
				t.Fatalf("%q does not match the secret-scanner pattern", s)
			}
			got, err := Parse(s)
			if err != nil {
				t.Fatalf("Parse(%q): %v", s, err)
			}
			if got != tok {
				t.Fatalf("round trip changed the token: %+v != %+v", got, tok)
			}
			if !got.Matches(tok.Hash()) {
				t.Fatal("token does not match its own hash")
			}
			if d := tok.Display(); d != s[:DisplayLen] || !strings.HasPrefix(d, "rill_"+string(k)+"_") {
				t.Fatalf("display %q of %q", d, s)
			}
		}
	}
}

func TestExtremes(t *testing.T) {
	// All-zero and all-0xff payloads must survive the fixed-width encoding.
	for _, fill := range []byte{0x00, 0xff} {
		tok := Token{Kind: Service}
		for i := range tok.ID {
			tok.ID[i] = fill
		}
		for i := range tok.Secret {
			tok.Secret[i] = fill
		}
		got, err := Parse(tok.Encode())
		if err != nil || got != tok {
			t.Fatalf("fill %#x: got %+v, %v", fill, got, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	good := mustNew(t, User).Encode()
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	// The largest 54-digit base62 payload overflows 40 bytes; give it a valid checksum.
	overflow := "rill_usr_" + strings.Repeat("z", payloadLen)
	var c [4]byte
	sum := checksum(overflow)
	c[0], c[1], c[2], c[3] = byte(sum>>24), byte(sum>>16), byte(sum>>8), byte(sum)
	overflow = string(appendBase62([]byte(overflow), c[:], checkLen))

	cases := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", ErrWrongPrefix},
		{"github token", "ghp_" + good[9:], ErrWrongPrefix},
		{"upper-case prefix", "RILL_usr_" + good[9:], ErrWrongPrefix},
		{"unknown type", "rill_adm_" + good[9:], ErrUnknownType},
		{"no type separator", "rill_usrx" + good[9:], ErrUnknownType},
		{"prefix only", "rill_", ErrUnknownType},
		{"truncated", good[:len(good)-1], ErrBadLength},
		{"header only", "rill_usr_", ErrBadLength},
		{"too long", good + "a", ErrBadLength},
		{"bad character", good[:20] + "-" + good[21:], ErrBadCharacter},
		{"non-ascii", good[:20] + "é" + good[22:], ErrBadCharacter},
		{"typo in payload", flip(good, 20), ErrBadChecksum},
		{"typo in check", flip(good, len(good)-1), ErrBadChecksum},
		{"wrong type, same payload", "rill_svc_" + good[9:], ErrBadChecksum},
		{"payload overflow", overflow, ErrBadChecksum},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(c.in)
			if !errors.Is(err, c.want) {
				t.Fatalf("Parse(%q) = %v, want %v", c.in, err, c.want)
			}
		})
	}
}

func TestWrongSecretDoesNotMatch(t *testing.T) {
	a, b := mustNew(t, User), mustNew(t, User)
	if a.Matches(b.Hash()) {
		t.Fatal("different secrets matched")
	}
}

func TestIDString(t *testing.T) {
	tok := mustNew(t, User)
	s := tok.ID.String()
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(s) {
		t.Fatalf("id %q is not a v4 UUID", s)
	}
	back, err := ParseID(s)
	if err != nil || back != tok.ID {
		t.Fatalf("ParseID(%q) = %v, %v", s, back, err)
	}
	for _, bad := range []string{"", "x", strings.Repeat("g", 36), s[:35] + "-", s + "0"} {
		if _, err := ParseID(bad); err == nil {
			t.Fatalf("ParseID(%q) accepted", bad)
		}
	}
}

func TestFormattingNeverShowsSecret(t *testing.T) {
	tok := mustNew(t, User)
	secret := tok.Encode()[9:]
	for _, s := range []string{fmt.Sprint(tok), fmt.Sprintf("%v %+v %#v %s", tok, tok, tok, tok), fmt.Sprint(&tok)} {
		if strings.Contains(s, secret[:20]) || strings.Contains(s, fmt.Sprint(tok.Secret[:])) {
			t.Fatalf("formatting leaked the secret: %s", s)
		}
	}
}

func TestNewRejectsUnknownKind(t *testing.T) {
	if _, err := New("adm"); !errors.Is(err, ErrUnknownType) {
		t.Fatalf("New(adm) = %v", err)
	}
}

func TestParseDoesNotAllocate(t *testing.T) {
	s := mustNew(t, Service).Encode()
	bad := s[:30] + "!" + s[31:]
	n := testing.AllocsPerRun(100, func() {
		_, _ = Parse(s)
		_, _ = Parse(bad)
	})
	if n != 0 {
		t.Fatalf("Parse allocates %v times per run", n)
	}
}

func FuzzParse(f *testing.F) {
	for _, k := range []Kind{User, Service} {
		tok := mustNew(f, k)
		f.Add(tok.Encode())
		f.Add(tok.Encode()[:40])
	}
	f.Add("")
	f.Add("rill_")
	f.Add("rill_usr_" + strings.Repeat("z", 60))
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := Parse(s)
		if err != nil {
			return
		}
		// Anything Parse accepts must re-encode to exactly the same string.
		if got := tok.Encode(); got != s {
			t.Fatalf("Parse accepted %q but it re-encodes as %q", s, got)
		}
	})
}

func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("0123456789abcdef"), []byte("0123456789abcdef01234567"), true)
	f.Fuzz(func(t *testing.T, id, secret []byte, svc bool) {
		tok := Token{Kind: User}
		if svc {
			tok.Kind = Service
		}
		copy(tok.ID[:], id)
		copy(tok.Secret[:], secret)
		got, err := Parse(tok.Encode())
		if err != nil || got != tok {
			t.Fatalf("round trip of %+v: %+v, %v", tok, got, err)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	s := mustNew(b, User).Encode()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseBadChecksum(b *testing.B) {
	s := mustNew(b, User).Encode()
	s = s[:len(s)-1] + "0"
	if s == mustNew(b, User).Encode() {
		b.Skip()
	}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = Parse(s)
	}
}

func TestHashText(t *testing.T) {
	h := mustNew(t, User).Hash()
	b, err := h.MarshalText()
	if err != nil || len(b) != 64 {
		t.Fatalf("MarshalText: %q %v", b, err)
	}
	var back Hash
	if err := back.UnmarshalText(b); err != nil || back != h {
		t.Fatalf("round trip: %v", err)
	}
	for _, bad := range []string{"", "abc", strings.Repeat("zz", 32), strings.Repeat("a", 66)} {
		if err := back.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) accepted", bad)
		}
	}
}
