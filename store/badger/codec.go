package badger

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// Token records are the one record read on every cache miss, and there may be millions, so
// they use a compact binary form instead of JSON (a miss decodes several times faster).
// Layout: version byte, then uvarint-length strings ID (its UUID text), Kind, OwnerID,
// DisplayName, Prefix, CreatedBy, the 32-byte hash, and varint Unix-nanosecond times
// CreatedAt, ExpiresAt, LastUsedAt (0 for none). Records written as JSON (leading '{') are
// still read, and written for tokens with nested fields (a magic token's grant, network and
// origin constraints). An ID that is not a UUID makes the record corrupt. Version 2 is version 1
// and then uvarint-length strings LastUsedIP, LastUsedUserAgent; a record without them is
// written as version 1, as before they existed.
const (
	tokenCodecV1 = 1
	tokenCodecV2 = 2
)

func encodeToken(t *store.Token) []byte {
	id := t.ID.String()
	b := make([]byte, 0, 1+len(id)+len(t.Kind)+len(t.OwnerID)+len(t.DisplayName)+len(t.Prefix)+len(t.CreatedBy)+6+len(t.Hash)+3*binary.MaxVarintLen64)
	where := t.LastUsedIP != "" || t.LastUsedUserAgent != ""
	if where {
		b = append(b, tokenCodecV2)
	} else {
		b = append(b, tokenCodecV1)
	}
	for _, s := range []string{id, string(t.Kind), t.OwnerID, t.DisplayName, t.Prefix, t.CreatedBy} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = append(b, t.Hash[:]...)
	for _, at := range []time.Time{t.CreatedAt, t.ExpiresAt, t.LastUsedAt} {
		var n int64
		if !at.IsZero() {
			n = at.UnixNano()
		}
		b = binary.AppendVarint(b, n)
	}
	if where {
		for _, s := range []string{t.LastUsedIP, t.LastUsedUserAgent} {
			b = binary.AppendUvarint(b, uint64(len(s)))
			b = append(b, s...)
		}
	}
	return b
}

var errCorrupt = errors.New("corrupt token record")

func decodeToken(b []byte, t *store.Token) error {
	*t = store.Token{} // a reused record keeps nothing of the last one (JSON leaves absent fields be)
	if len(b) > 0 && b[0] == '{' {
		if err := json.Unmarshal(b, t); err != nil { // the id through token.ID.UnmarshalText
			return fmt.Errorf("%w: %w", errCorrupt, err)
		}
		return nil
	}
	if len(b) == 0 || b[0] != tokenCodecV1 && b[0] != tokenCodecV2 {
		return fmt.Errorf("%w: unknown version", errCorrupt)
	}
	version := b[0]
	b = b[1:]
	str := func() string {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			b = nil
			return ""
		}
		s := string(b[k : k+int(n)])
		b = b[k+int(n):]
		return s
	}
	id := str()
	t.Kind, t.OwnerID, t.DisplayName, t.Prefix, t.CreatedBy = token.Kind(str()), str(), str(), str(), str()
	if len(b) < len(t.Hash) {
		return fmt.Errorf("%w: truncated", errCorrupt)
	}
	copy(t.Hash[:], b)
	b = b[len(t.Hash):]
	for _, at := range []*time.Time{&t.CreatedAt, &t.ExpiresAt, &t.LastUsedAt} {
		n, k := binary.Varint(b)
		if k <= 0 {
			return fmt.Errorf("%w: truncated", errCorrupt)
		}
		b = b[k:]
		*at = time.Time{}
		if n != 0 {
			*at = time.Unix(0, n).UTC()
		}
	}
	t.LastUsedIP, t.LastUsedUserAgent = "", ""
	if version == tokenCodecV2 {
		if t.LastUsedIP, t.LastUsedUserAgent = str(), str(); b == nil {
			return fmt.Errorf("%w: truncated", errCorrupt)
		}
		if t.LastUsedIP == "" && t.LastUsedUserAgent == "" {
			return fmt.Errorf("%w: version 2 without a where", errCorrupt) // written as version 1
		}
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(b))
	}
	var err error
	if t.ID, err = token.ParseID(id); err != nil {
		return fmt.Errorf("%w: %w", errCorrupt, err)
	}
	return nil
}
