package badger

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

func TestTokenCodec(t *testing.T) {
	full, _ := newToken(t, token.Service, "s1")
	full.DisplayName, full.CreatedBy = "ci deploy ✓", "u-1"
	full.CreatedAt = time.Date(2026, 11, 23, 10, 0, 0, 123, time.UTC)
	full.ExpiresAt = full.CreatedAt.Add(time.Hour)
	full.LastUsedAt = full.CreatedAt.Add(time.Minute)
	bare, _ := newToken(t, token.User, "u1")
	bare.CreatedAt = time.Time{}
	for name, in := range map[string]store.Token{"full": full, "zero times": bare} {
		var out store.Token
		if err := decodeToken(encodeToken(&in), &out); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(in, out) {
			t.Errorf("%s: round trip\n got %+v\nwant %+v", name, out, in)
		}
	}
	// Records written as JSON before the binary form still read.
	js, _ := json.Marshal(full)
	var out store.Token
	if err := decodeToken(js, &out); err != nil || out.ID != full.ID || out.Hash != full.Hash || !out.ExpiresAt.Equal(full.ExpiresAt) {
		t.Errorf("JSON record: %+v %v", out, err)
	}
	// Every truncation and a trailing byte are errors, never a panic or a half-read record.
	enc := encodeToken(&full)
	for n := range len(enc) {
		if err := decodeToken(enc[:n], &out); !errors.Is(err, errCorrupt) {
			t.Fatalf("truncated to %d bytes: %v", n, err)
		}
	}
	if err := decodeToken(append(enc, 0), &out); !errors.Is(err, errCorrupt) {
		t.Errorf("trailing byte: %v", err)
	}
}

// FuzzDecodeToken feeds arbitrary stored bytes to the record decoder: it must return a record
// or an error, never panic, and a record it accepts in the binary form must encode back to the
// same bytes (nothing is silently dropped or invented).
func FuzzDecodeToken(f *testing.F) {
	tk := store.Token{ID: "0b7e3a52-8f1c-4d6e-9a2b-3c4d5e6f7a8b", Kind: token.Service, OwnerID: "s1", Prefix: "rill_svc_abc",
		CreatedAt: time.Unix(1_700_000_000, 5).UTC(), ExpiresAt: time.Unix(1_800_000_000, 0).UTC()}
	f.Add(encodeToken(&tk))
	f.Add(encodeToken(&store.Token{}))
	js, _ := json.Marshal(tk)
	f.Add(js)
	f.Add([]byte{tokenCodecV1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		var out store.Token
		if err := decodeToken(b, &out); err != nil || (len(b) > 0 && b[0] == '{') {
			return
		}
		if re := encodeToken(&out); string(re) != string(b) {
			// Times are the one lossy part: a varint of 0 and a zero time are the same.
			var again store.Token
			if err := decodeToken(re, &again); err != nil || !reflect.DeepEqual(again, out) {
				t.Fatalf("decoded %+v does not survive a round trip: %v", out, err)
			}
		}
	})
}
