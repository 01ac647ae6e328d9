package token

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strings"
	"testing"
)

var scanner = regexp.MustCompile(`^rill_(usr|svc|mgc)_[0-9A-Za-z]{60}$`)

func mustNew(t testing.TB, k Kind) Token {
	t.Helper()
	tok, err := New(k)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestRoundTrip(t *testing.T) {
	for _, k := range Kinds {
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
	rill := rillMint(t, User, 0)
	badRill := rill[:20] + "!"
	n := testing.AllocsPerRun(100, func() {
		_, _ = Parse(s)
		_, _ = Parse(bad)
		_, _ = Parse(rill)
		_, _ = Parse(badRill)
	})
	if n != 0 {
		t.Fatalf("Parse allocates %v times per run", n)
	}
}

func FuzzParse(f *testing.F) {
	for _, k := range Kinds {
		tok := mustNew(f, k)
		f.Add(tok.Encode())
		f.Add(tok.Encode()[:40])
		f.Add(rillMint(f, k, 0))
		f.Add(rillMint(f, k, 3))
	}
	f.Add("")
	f.Add("rill_")
	f.Add("rill_usr_" + strings.Repeat("z", 60))
	f.Add("rill_usr_" + strings.Repeat("Z", 54))
	f.Add("rill_svc_0")
	f.Add("rill_svc_-1")
	f.Add("rill_dpl_2Dws32dc2FxTThgCQjHerGM1rx9pJLCPQh5QbWjUiwpkZNkCCRrlrK")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := Parse(s)
		kind, raw, rillOK := rillFromString(s)
		// Rill's own parser and ours agree on Rill-format tokens: whatever we take as one, Rill
		// reads as the same token; whatever Rill reads (of the kinds we serve, spelt as Rill
		// writes it) we take.
		if err == nil && tok.Rill && (!rillOK || kind != string(tok.Kind) || raw != tok.raw()) {
			t.Fatalf("Parse took %q as Rill's %s %x; Rill's FromString says %v %s %x", s, tok.Kind, tok.raw(), rillOK, kind, raw)
		}
		if rillOK && (kind == "usr" || kind == "svc") && canonical(s[len("rill_usr_"):]) && (err != nil || !tok.Rill || tok.raw() != raw) {
			t.Fatalf("Rill's FromString reads %q as %s %x; Parse says %+v %v", s, kind, raw, tok, err)
		}
		if err != nil {
			return
		}
		// Anything Parse accepts must re-encode to exactly the same string.
		if got := tok.Encode(); got != s {
			t.Fatalf("Parse accepted %q but it re-encodes as %q", s, got)
		}
	})
}

// raw is id ‖ secret.
func (t Token) raw() (b [idLen + secretLen]byte) {
	copy(b[:], t.ID[:])
	copy(b[idLen:], t.Secret[:])
	return b
}

// rillFromString is Rill's authtoken.FromString (rilldata/rill admin/pkg/authtoken/authtoken.go)
// written out with math/big as Rill does it: the reference our decoder must agree with.
func rillFromString(s string) (kind string, raw [idLen + secretLen]byte, ok bool) {
	parts := strings.Split(s, "_")
	if len(parts) != 3 || parts[0] != "rill" {
		return "", raw, false
	}
	switch parts[1] {
	case "usr", "svc", "dpl", "mgc":
	default:
		return "", raw, false
	}
	var i big.Int
	if _, ok := i.SetString(parts[2], 62); !ok {
		return "", raw, false
	}
	b := i.Bytes()
	if len(b) > len(raw) {
		return "", raw, false
	}
	copy(raw[len(raw)-len(b):], b) // padLeft
	return parts[1], raw, true
}

// canonical reports whether p is spelt as big.Int.Text(62) writes it: no sign, no leading zero.
func canonical(p string) bool {
	return p != "" && p[0] != '+' && p[0] != '-' && (p[0] != '0' || p == "0")
}

// rillMint mints a token the way Rill's authtoken.NewRandom and String do (a random v4 UUID and
// 24 random bytes, big.Int(id ‖ secret).Text(62)), with the id's first zeroBytes bytes zero.
func rillMint(t testing.TB, k Kind, zeroBytes int) string {
	t.Helper()
	var raw [idLen + secretLen]byte
	if _, err := rand.Read(raw[:]); err != nil {
		t.Fatal(err)
	}
	raw[6] = raw[6]&0x0f | 0x40
	raw[8] = raw[8]&0x3f | 0x80
	clear(raw[:zeroBytes])
	return "rill_" + string(k) + "_" + new(big.Int).SetBytes(raw[:]).Text(62)
}

// rillSecretHash is Rill's authtoken.Token.SecretHash of a token string: what its database keeps.
func rillSecretHash(t testing.TB, s string) Hash {
	t.Helper()
	_, raw, ok := rillFromString(s)
	if !ok {
		t.Fatalf("Rill cannot read %q", s)
	}
	return sha256.Sum256(raw[idLen:])
}

func TestRillFormat(t *testing.T) {
	// Rill's own test vectors (admin/pkg/authtoken/authtoken_test.go, TestValidity).
	const example = "2Dws32dc2FxTThgCQjHerGM1rx9pJLCPQh5QbWjUiwpkZNkCCRrlrK"
	for _, k := range Kinds {
		s := "rill_" + string(k) + "_" + example
		tok, err := Parse(s)
		if err != nil || !tok.Rill || tok.Kind != k || tok.Encode() != s {
			t.Fatalf("Rill's example %q: %+v %v", s, tok, err)
		}
		if !tok.Matches(rillSecretHash(t, s)) {
			t.Fatalf("Rill's example does not match the hash Rill stores for it")
		}
	}
	// Tokens minted as Rill mints them, ids with 0 to 16 leading zero bytes (shorter texts,
	// padded back to 40 bytes), verify against the hash Rill stores.
	for zero := 0; zero <= idLen; zero++ {
		for i := 0; i < 50; i++ {
			s := rillMint(t, Service, zero)
			tok, err := Parse(s)
			if err != nil || !tok.Rill || tok.Encode() != s {
				t.Fatalf("%d zero bytes: Parse(%q) = %+v, %v", zero, s, tok, err)
			}
			for j := 0; j < zero; j++ {
				if tok.ID[j] != 0 {
					t.Fatalf("%q: id %s lost its leading zero bytes", s, tok.ID)
				}
			}
			if !tok.Matches(rillSecretHash(t, s)) {
				t.Fatalf("%q does not match the hash Rill stores for it", s)
			}
			if d := tok.Display(); !strings.HasPrefix(s, d) && zero < 7 {
				// Rill's TestPrefix: the display prefix starts the token (while the id keeps
				// the text's first ten digits to itself).
				t.Fatalf("display %q is not a prefix of %q", d, s)
			}
		}
	}
	// TestNull and TestPartiallyNull: all-zero and nearly all-zero tokens.
	for _, tok := range []Token{{Kind: User, Rill: true}, {Kind: User, Rill: true, ID: ID{15: 1}, Secret: [secretLen]byte{23: 1}}} {
		got, err := Parse(tok.Encode())
		if err != nil || got != tok {
			t.Fatalf("%q: %+v %v", tok.Encode(), got, err)
		}
	}
	if s := (Token{Kind: User, Rill: true}).Encode(); s != "rill_usr_0" {
		t.Fatalf("the zero token encodes as %q", s)
	}
}

// TestBothFormatsHashAlike: one secret under either format hashes to one value, the SHA-256 of
// its 24 bytes, so a record written from Rill's secret_hash and one we wrote verify alike.
func TestBothFormatsHashAlike(t *testing.T) {
	ours := mustNew(t, User)
	rill, err := Parse(Token{Kind: User, ID: ours.ID, Secret: ours.Secret, Rill: true}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	want := Hash(sha256.Sum256(ours.Secret[:]))
	if ours.Hash() != want || rill.Hash() != want || !rill.Matches(ours.Hash()) || !ours.Matches(rill.Hash()) {
		t.Fatal("the two formats hash one secret differently")
	}
	h, err := HashFromBytes(want[:])
	if err != nil || h != want {
		t.Fatalf("HashFromBytes: %x %v", h, err)
	}
	for _, n := range []int{0, 31, 33} {
		if _, err := HashFromBytes(make([]byte, n)); err == nil {
			t.Errorf("HashFromBytes took %d bytes", n)
		}
	}
}

func TestRillParseErrors(t *testing.T) {
	good := rillMint(t, User, 0)
	short := rillMint(t, Service, 2)
	max320 := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 320), big.NewInt(1)).Text(62)
	two320 := new(big.Int).Lsh(big.NewInt(1), 320).Text(62)
	if len(max320) != payloadLen || len(two320) != payloadLen {
		t.Fatalf("2^320 takes %d digits, not %d", len(two320), payloadLen)
	}
	if tok, err := Parse("rill_usr_" + max320); err != nil || tok.ID != (ID{0: 0xff, 1: 0xff, 2: 0xff, 3: 0xff, 4: 0xff, 5: 0xff, 6: 0xff, 7: 0xff, 8: 0xff, 9: 0xff, 10: 0xff, 11: 0xff, 12: 0xff, 13: 0xff, 14: 0xff, 15: 0xff}) {
		t.Fatalf("2^320-1, the largest id and secret: %+v %v", tok, err)
	}
	cases := []struct {
		name string
		in   string
		want error
	}{
		{"Rill's rill_foo_", "rill_foo_" + good[9:], ErrUnknownType},
		{"Rill's roll_usr_", "roll_usr_" + good[9:], ErrWrongPrefix},
		{"Rill's rill__", "rill__" + good[9:], ErrUnknownType},
		{"Rill's rill_ without type", "rill_" + good[9:], ErrUnknownType},
		{"Rill's rillusr", "rillusr" + good[9:], ErrWrongPrefix},
		{"Rill's _usr_", "_usr_" + good[9:], ErrWrongPrefix},
		{"Rill's _", "_", ErrWrongPrefix},
		{"Rill's ___", "___", ErrWrongPrefix},
		{"deployment token (not served)", "rill_dpl_" + good[9:], ErrUnknownType},
		{"upper-case type", "rill_USR_" + good[9:], ErrUnknownType},
		{"empty payload", "rill_usr_", ErrBadLength},
		{"one digit too many (Rill's Z-prefixed example)", "rill_usr_Z2Dws32dc2FxTThgCQjHerGM1rx9pJLCPQh5QbWjUiwpkZNkCCRrlrK", ErrBadLength},
		{"overlong", good + strings.Repeat("a", 5), ErrBadLength},
		{"2^320", "rill_usr_" + two320, ErrBadPayload},
		{"all Z", "rill_usr_" + strings.Repeat("Z", payloadLen), ErrBadPayload},
		{"leading zero", "rill_usr_0" + short[9:], ErrBadPayload},
		{"zeros", "rill_usr_00", ErrBadPayload},
		{"minus sign (big.Int.SetString takes it)", "rill_usr_-" + short[10:], ErrBadCharacter},
		{"plus sign", "rill_usr_+" + short[10:], ErrBadCharacter},
		{"underscore", good[:20] + "_" + good[21:], ErrBadCharacter},
		{"hyphen", good[:20] + "-" + good[21:], ErrBadCharacter},
		{"space", good[:20] + " " + good[21:], ErrBadCharacter},
		{"NUL", good[:20] + "\x00" + good[21:], ErrBadCharacter},
		{"non-ascii", good[:20] + "é" + good[22:], ErrBadCharacter},
		{"base64 slash", good[:20] + "/" + good[21:], ErrBadCharacter},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Parse(c.in); !errors.Is(err, c.want) {
				t.Fatalf("Parse(%q) = %v, want %v", c.in, err, c.want)
			}
		})
	}
	// A truncated Rill token has no checksum to catch it: it reads as another token, whose id
	// no store holds, so the check says "unknown token" (see resolver's tests).
	tok, _ := Parse(good)
	if cut, err := Parse(good[:len(good)-1]); err != nil || cut.ID == tok.ID {
		t.Fatalf("truncated Rill token: %+v %v", cut, err)
	}
	// Turning a Rill token into our length does not make it ours.
	if _, err := Parse(good + strings.Repeat("0", Len-len(good))); !errors.Is(err, ErrBadChecksum) {
		t.Fatalf("Rill token padded to our length: %v", err)
	}
}

func TestRillDisplay(t *testing.T) {
	tok, err := Parse("rill_usr_2Dws32dc2FxTThgCQjHerGM1rx9pJLCPQh5QbWjUiwpkZNkCCRrlrK")
	if err != nil {
		t.Fatal(err)
	}
	// Rill's Prefix: base62 of the id followed by zero bytes, its first ten digits.
	var raw [idLen + secretLen]byte
	copy(raw[:], tok.ID[:])
	want := "rill_usr_" + new(big.Int).SetBytes(raw[:]).Text(62)[:10]
	if d := tok.Display(); d != want || d != RillDisplay(User, tok.ID) || len(d) != DisplayLen {
		t.Fatalf("display %q, want %q", d, want)
	}
	if d := RillDisplay(Service, ID{}); d != "rill_svc_0" {
		t.Fatalf("display of the zero id: %q", d)
	}
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

func BenchmarkParseRill(b *testing.B) {
	s := rillMint(b, User, 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(s); err != nil {
			b.Fatal(err)
		}
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

// TestIDText pins the text form: an ID marshals to its UUID string (so JSON holds exactly the
// string id it held when ids were strings, in a struct field or as a map key), and unmarshals
// only from a UUID, leaving the id as it was on an error.
func TestIDText(t *testing.T) {
	id := mustNew(t, Service).ID
	b, err := id.MarshalText()
	if err != nil || string(b) != id.String() {
		t.Fatalf("MarshalText: %q %v, want %q", b, err, id.String())
	}
	js, err := json.Marshal(struct {
		ID   ID          `json:"id"`
		Seen map[ID]bool `json:"seen"`
	}{id, map[ID]bool{id: true}})
	if want := `{"id":"` + id.String() + `","seen":{"` + id.String() + `":true}}`; err != nil || string(js) != want {
		t.Fatalf("JSON %s %v, want %s", js, err, want)
	}
	var back ID
	if err := json.Unmarshal([]byte(`"`+strings.ToUpper(id.String())+`"`), &back); err != nil || back != id {
		t.Fatalf("unmarshal the upper-case UUID: %v %v", back, err)
	}
	for _, bad := range []string{"", "legacy-1", strings.Repeat("g", 36), id.String()[:35], id.String() + "0"} {
		kept := back
		err := back.UnmarshalText([]byte(bad))
		if err == nil || !strings.Contains(err.Error(), "not a UUID") {
			t.Errorf("UnmarshalText(%q): %v, want an error saying it is not a UUID", bad, err)
		}
		if back != kept {
			t.Errorf("UnmarshalText(%q) changed the id to %v", bad, back)
		}
	}
}

// TestParseMagic: rill_mgc_ tokens (public URLs) parse as ours and as Rill's, and a mistyped,
// truncated or retyped one is refused before any store read.
func TestParseMagic(t *testing.T) {
	good := mustNew(t, Magic)
	s := good.Encode()
	if !strings.HasPrefix(s, "rill_mgc_") || len(s) != Len {
		t.Fatalf("magic token %q", s)
	}
	if got, err := Parse(s); err != nil || got != good || got.Kind != Magic {
		t.Fatalf("Parse(%q) = %+v, %v", s, got, err)
	}
	rill := good
	rill.Rill = true
	if got, err := Parse(rill.Encode()); err != nil || got != rill {
		t.Fatalf("Parse(Rill form %q) = %+v, %v", rill.Encode(), got, err)
	}
	cases := []struct {
		name string
		in   string
		want error
	}{
		{"wrong prefix", "rill-mgc_" + s[9:], ErrWrongPrefix},
		{"unknown type", "rill_mgk_" + s[9:], ErrUnknownType},
		{"bad checksum", s[:len(s)-1] + map[bool]string{true: "b", false: "a"}[s[len(s)-1] == 'a'], ErrBadChecksum},
		{"as a user token", "rill_usr_" + s[9:], ErrBadChecksum},
		{"too long", s + "0", ErrBadLength},
		{"truncated", s[:len(s)-7] + "-", ErrBadCharacter},
		{"header only", "rill_mgc_", ErrBadLength},
	}
	for _, c := range cases {
		if _, err := Parse(c.in); !errors.Is(err, c.want) {
			t.Errorf("%s: Parse(%q) = %v, want %v", c.name, c.in, err, c.want)
		}
	}
}
