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
