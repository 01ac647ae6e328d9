// Package token defines the rill_usr_/rill_svc_ credential format: generation, parsing with
// typed errors, checksums and the SHA-256 hashing that is all the store ever sees of a secret.
//
// A token is rill_<type>_<payload><check>. The payload is the fixed-width base62 encoding of a
// 16-byte id followed by a 24-byte random secret (54 characters); check is the 6-character
// base62 CRC32 of everything before it, so a mistyped or truncated token is refused without a
// store read and secret scanners can match rill_(usr|svc|mgc)_[0-9A-Za-z]{60}. Magic tokens
// (rill_mgc_, the tokens of public URLs) have the same form.
//
// Rill's own tokens (imported from a Rill admin database) parse too: rill_<type>_ followed by
// big.Int(id ‖ secret).Text(62), as rilldata/rill's admin/pkg/authtoken/authtoken.go makes them.
// They have no checksum and are at most 54 characters after the type (fewer when the id starts
// with zero bytes), so their lengths never meet ours. New tokens are always ours.
//
// It also holds the JWT claim layouts, and RS256 mint and verify given a key; which key signs,
// and which verify, is package keys' business.
package token

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"math/big"
	"math/bits"
	"unsafe"
)

// Kind is the type of a long-lived token.
type Kind string

const (
	User    Kind = "usr"
	Service Kind = "svc"
	// Magic is a public URL's token (rilldata/rill admin/pkg/authtoken TypeMagic, "mgc"): it is
	// owned by a project, not by a user or service.
	Magic Kind = "mgc"
)

// Kinds are every token kind, in a fixed order.
var Kinds = []Kind{User, Service, Magic}

const (
	prefix     = "rill_"
	headerLen  = len("rill_usr_")
	payloadLen = 54
	checkLen   = 6
	// Len is the length of every well-formed token.
	Len = headerLen + payloadLen + checkLen
	// DisplayLen is the length of a token's display prefix (rill_usr_ + 10 payload chars).
	DisplayLen = headerLen + 10
	idLen      = 16
	secretLen  = 24
)

// Errors returned by Parse. They are sentinels so that callers can say why a token was refused
// and the hot path allocates nothing for a bad token.
var (
	ErrWrongPrefix  = errors.New("not a rill token (wrong prefix)")
	ErrUnknownType  = errors.New("unknown token type")
	ErrBadLength    = errors.New("bad token length")
	ErrBadCharacter = errors.New("bad character in token")
	ErrBadChecksum  = errors.New("bad checksum")
	// ErrBadPayload is a Rill-format payload that Rill never wrote: a value of 2^320 or more
	// (more than id and secret), or one with leading zeros.
	ErrBadPayload = errors.New("token payload out of range")
)

// ID identifies a token; it is not secret and is safe to log and store in the clear.
type ID [idLen]byte

// String formats the id as a UUID.
func (id ID) String() string {
	const hex = "0123456789abcdef"
	var b [36]byte
	j := 0
	for i, v := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b[j] = '-'
			j++
		}
		b[j], b[j+1] = hex[v>>4], hex[v&0x0f]
		j += 2
	}
	return string(b[:])
}

// ParseID parses the UUID form produced by ID.String.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return id, fmt.Errorf("token id %q: not a UUID", s)
	}
	j := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '-' {
			continue
		}
		hi, ok1 := unhex(s[i])
		lo, ok2 := unhex(s[i+1])
		if !ok1 || !ok2 {
			return id, fmt.Errorf("token id %q: not a UUID", s)
		}
		id[j] = hi<<4 | lo
		j++
		i++
	}
	return id, nil
}

// MarshalText encodes the id as its UUID text (the bytes of String), so a record or an API
// body that holds an ID reads exactly as it did when ids were UUID strings.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText decodes the UUID text; anything else is an error.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Hash is the SHA-256 of a token's secret: what the store keeps instead of the secret.
type Hash [sha256.Size]byte

// MarshalText encodes the hash as hex, so stored records hold a short string rather than an
// array of 32 numbers (which is slow to decode on a cache miss).
func (h Hash) MarshalText() ([]byte, error) { return hex.AppendEncode(nil, h[:]), nil }

// UnmarshalText decodes the hex form.
func (h *Hash) UnmarshalText(b []byte) error {
	if len(b) != 2*len(h) {
		return fmt.Errorf("token hash: want %d hex digits, got %d", 2*len(h), len(b))
	}
	if _, err := hex.Decode(h[:], b); err != nil {
		return fmt.Errorf("token hash: %w", err)
	}
	return nil
}

// Token is a parsed token. Secret is sensitive and must never be logged.
type Token struct {
	Kind   Kind
	ID     ID
	Secret [secretLen]byte
	// Rill is set on a token in Rill's own format, so that it encodes back to that form.
	Rill bool
}

// Hash returns the SHA-256 of the secret, in either format: it is also what Rill stores as
// secret_hash (authtoken.Token.SecretHash), so an imported hash verifies the original token.
func (t Token) Hash() Hash { return sha256.Sum256(t.Secret[:]) }

// HashFromBytes reads a stored SHA-256, such as the BYTEA secret_hash column of Rill's
// user_auth_tokens and service_auth_tokens.
func HashFromBytes(b []byte) (Hash, error) {
	var h Hash
	if len(b) != len(h) {
		return h, fmt.Errorf("token hash: want %d bytes, got %d", len(h), len(b))
	}
	copy(h[:], b)
	return h, nil
}

// Matches reports in constant time whether the token's secret hashes to h.
func (t Token) Matches(h Hash) bool { return t.Hash().Equal(h) }

// Equal compares two hashes in constant time, so a timing never tells how much of a guess
// was right.
func (h Hash) Equal(o Hash) bool { return subtle.ConstantTimeCompare(h[:], o[:]) == 1 }

// String is safe to log: it names the kind and id, never the secret.
func (t Token) String() string { return "rill_" + string(t.Kind) + " token " + t.ID.String() }

// GoString keeps %#v from printing the secret.
func (t Token) GoString() string { return t.String() }

// Encode returns the token in its wire form (Rill's for a Rill-format token). The result is a
// secret.
func (t Token) Encode() string {
	if t.Rill {
		return prefix + string(t.Kind) + "_" + rillBase62(t.ID, t.Secret)
	}
	var raw [idLen + secretLen]byte
	copy(raw[:], t.ID[:])
	copy(raw[idLen:], t.Secret[:])
	b := make([]byte, 0, Len)
	b = append(b, prefix...)
	b = append(b, t.Kind...)
	b = append(b, '_')
	b = appendBase62(b, raw[:], payloadLen)
	var c [4]byte
	sum := checksum(string(b))
	c[0], c[1], c[2], c[3] = byte(sum>>24), byte(sum>>16), byte(sum>>8), byte(sum)
	b = appendBase62(b, c[:], checkLen)
	return string(b)
}

// Display returns the non-secret display prefix shown in lists ("token id" in the docs).
func (t Token) Display() string {
	if t.Rill {
		return RillDisplay(t.Kind, t.ID)
	}
	return t.Encode()[:DisplayLen]
}

// RillDisplay is the display prefix Rill shows for its token id: rill_<kind>_ and the first ten
// base62 digits of id followed by 24 zero bytes (authtoken.Token.Prefix), so an importer can
// show the prefix Rill showed without the secret.
func RillDisplay(k Kind, id ID) string {
	p := rillBase62(id, [secretLen]byte{})
	return prefix + string(k) + "_" + p[:min(len(p), 10)]
}

// rillBase62 is Rill's payload, big.Int(id ‖ secret).Text(62): math/big is what Rill uses, so
// the text is Rill's by construction. Not on the check path.
func rillBase62(id ID, secret [secretLen]byte) string {
	var raw [idLen + secretLen]byte
	copy(raw[:], id[:])
	copy(raw[idLen:], secret[:])
	return new(big.Int).SetBytes(raw[:]).Text(62)
}

// New generates a fresh token of the given kind with a random id and secret.
func New(k Kind) (Token, error) {
	if k != User && k != Service && k != Magic {
		return Token{}, fmt.Errorf("new token: %w %q", ErrUnknownType, k)
	}
	t := Token{Kind: k}
	if _, err := rand.Read(t.ID[:]); err != nil {
		return Token{}, fmt.Errorf("new token: read random id: %w", err)
	}
	// RFC 4122 version 4 bits, so the id is a valid random UUID.
	t.ID[6] = t.ID[6]&0x0f | 0x40
	t.ID[8] = t.ID[8]&0x3f | 0x80
	if _, err := rand.Read(t.Secret[:]); err != nil {
		return Token{}, fmt.Errorf("new token: read random secret: %w", err)
	}
	return t, nil
}

// NewID returns a random (v4) UUID, for record ids and JWT ids.
func NewID() string {
	t, err := New(User)
	if err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return t.ID.String()
}

// HasPrefix reports whether s looks like it was meant to be a rill token, so callers can tell
// a malformed rill token from some other kind of credential (a JWT).
func HasPrefix(s string) bool { return len(s) >= len(prefix) && s[:len(prefix)] == prefix }

// Parse decodes s and verifies its checksum, or decodes Rill's unchecked form when s has its
// length. It does not allocate; on failure it returns one of the sentinel errors above.
func Parse(s string) (Token, error) {
	var t Token
	if !HasPrefix(s) {
		return t, ErrWrongPrefix
	}
	if len(s) < headerLen || s[headerLen-1] != '_' {
		return t, ErrUnknownType
	}
	switch s[len(prefix) : headerLen-1] {
	case "usr":
		t.Kind = User
	case "svc":
		t.Kind = Service
	case "mgc":
		t.Kind = Magic
	default:
		return t, ErrUnknownType
	}
	if len(s) != Len {
		if n := len(s) - headerLen; n >= 1 && n <= payloadLen {
			return parseRill(t, s[headerLen:])
		}
		return t, ErrBadLength
	}
	for i := headerLen; i < Len; i++ {
		if digit[s[i]] == 0xff {
			return t, ErrBadCharacter
		}
	}
	var c [4]byte
	if !decodeBase62(c[:], s[Len-checkLen:]) {
		return t, ErrBadChecksum
	}
	want := uint32(c[0])<<24 | uint32(c[1])<<16 | uint32(c[2])<<8 | uint32(c[3])
	if checksum(s[:Len-checkLen]) != want {
		return t, ErrBadChecksum
	}
	var raw [idLen + secretLen]byte
	if !decodeBase62(raw[:], s[headerLen:Len-checkLen]) {
		// A payload too large for 40 bytes with a matching checksum was not made by us.
		return t, ErrBadChecksum
	}
	copy(t.ID[:], raw[:idLen])
	copy(t.Secret[:], raw[idLen:])
	return t, nil
}

// parseRill decodes the payload p of a token in Rill's form. Rill's FromString
// (admin/pkg/authtoken/authtoken.go) reads it with big.Int.SetString(p, 62), refuses a value
// over 40 bytes and left-pads a shorter one; so do we, with our limb decoder so that a check
// allocates nothing. Where SetString is laxer than the writer (a sign, leading zeros) we take
// only what big.Int.Text writes, so each token has one spelling.
func parseRill(t Token, p string) (Token, error) {
	for i := 0; i < len(p); i++ {
		if rillDigit[p[i]] == 0xff {
			return t, ErrBadCharacter
		}
	}
	var raw [idLen + secretLen]byte
	if (len(p) > 1 && p[0] == '0') || !decodeBase62With(&rillDigit, raw[:], p) {
		return t, ErrBadPayload
	}
	copy(t.ID[:], raw[:idLen])
	copy(t.Secret[:], raw[idLen:])
	t.Rill = true
	return t, nil
}

// checksum is CRC32 (IEEE) over a string. It views the string's bytes in place (crc32 only
// reads them) because a []byte conversion would allocate on every check.
func checksum(s string) uint32 {
	return crc32.ChecksumIEEE(unsafe.Slice(unsafe.StringData(s), len(s)))
}

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// rillAlphabet is math/big's base-62 digit order, which Rill's tokens use: lower case first.
const rillAlphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

var digit, rillDigit = digits(alphabet), digits(rillAlphabet)

func digits(alphabet string) (d [256]byte) {
	for i := range d {
		d[i] = 0xff
	}
	for i := 0; i < len(alphabet); i++ {
		d[alphabet[i]] = byte(i)
	}
	return d
}

// appendBase62 appends the big-endian number in src as exactly width base62 digits.
func appendBase62(dst, src []byte, width int) []byte {
	n := make([]byte, len(src))
	copy(n, src)
	out := make([]byte, width)
	for i := width - 1; i >= 0; i-- {
		var rem uint
		for j := range n { // long division of n by 62
			cur := rem<<8 | uint(n[j])
			n[j] = byte(cur / 62)
			rem = cur % 62
		}
		out[i] = alphabet[rem]
	}
	return append(dst, out...)
}

// decodeBase62 decodes s (our alphabet) into dst as a big-endian number, reporting false if it
// overflows dst.
func decodeBase62(dst []byte, s string) bool { return decodeBase62With(&digit, dst, s) }

// decodeBase62With decodes s, whose digits' values tab gives, into dst as a big-endian number,
// reporting false if it overflows dst. It works on 64-bit limbs so that the hot path stays
// cheap; len(dst) must be <= 40.
func decodeBase62With(tab *[256]byte, dst []byte, s string) bool {
	var limbs [5]uint64 // little-endian limbs, room for 40 bytes
	nl := (len(dst) + 7) / 8
	// Ten base62 digits fit in a uint64 (62^10 < 2^64), so multiply the limbs once per chunk
	// of ten rather than once per digit.
	for i := 0; i < len(s); {
		chunk, mul := uint64(0), uint64(1)
		for n := 0; n < 10 && i < len(s); n, i = n+1, i+1 {
			chunk = chunk*62 + uint64(tab[s[i]])
			mul *= 62
		}
		carry := chunk
		for j := 0; j < nl; j++ {
			hi, lo := bits.Mul64(limbs[j], mul)
			lo, c := bits.Add64(lo, carry, 0)
			limbs[j] = lo
			carry = hi + c
		}
		if carry != 0 {
			return false
		}
	}
	// Anything above len(dst) bytes in the top limb is overflow.
	if extra := nl*8 - len(dst); extra > 0 && limbs[nl-1]>>(64-8*extra) != 0 {
		return false
	}
	for k := 0; k < len(dst); k++ {
		// dst[len-1-k] is byte k counting from the least significant end.
		dst[len(dst)-1-k] = byte(limbs[k/8] >> (8 * (k % 8)))
	}
	return true
}
