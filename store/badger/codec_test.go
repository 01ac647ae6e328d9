package badger

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
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
	where := full
	where.LastUsedIP, where.LastUsedUserAgent = "2001:db8::1", "curl/8.5.0 ✓"
	agentOnly := bare
	agentOnly.LastUsedUserAgent = "x"
	for name, in := range map[string]store.Token{"full": full, "zero times": bare, "last used where": where, "agent only": agentOnly} {
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
	for _, in := range []store.Token{full, where} {
		enc := encodeToken(&in)
		for n := range len(enc) {
			if err := decodeToken(enc[:n], &out); !errors.Is(err, errCorrupt) {
				t.Fatalf("truncated to %d bytes: %v", n, err)
			}
		}
		if err := decodeToken(append(enc, 0), &out); !errors.Is(err, errCorrupt) {
			t.Errorf("trailing byte: %v", err)
		}
	}
	// A record without a where is version 1, as before there was one; version 2 without one
	// is not written, and not read.
	if enc := encodeToken(&full); enc[0] != tokenCodecV1 {
		t.Errorf("a record without a where is version %d", enc[0])
	}
	v2 := append(append([]byte{tokenCodecV2}, encodeToken(&full)[1:]...), 0, 0)
	if err := decodeToken(v2, &out); !errors.Is(err, errCorrupt) {
		t.Errorf("version 2 with an empty where: %v, want errCorrupt", err)
	}
}

// TestTokenCodecLayout pins the stored bytes: the id is its UUID text, in the binary form and
// in JSON, exactly as when ids were strings, so stores written before read the same; a record
// whose id is not a UUID is corrupt.
func TestTokenCodecLayout(t *testing.T) {
	const uuid = "0b7e3a52-8f1c-4d6e-9a2b-3c4d5e6f7a8b"
	id, err := token.ParseID(uuid)
	must(t, err)
	tk := store.Token{ID: id, Kind: token.Service, OwnerID: "s1", DisplayName: "ci", Prefix: "rill_svc_abc", Hash: token.Hash{1, 2, 3},
		CreatedBy: "u-1", CreatedAt: time.Unix(0, 5).UTC(), LastUsedAt: time.Unix(0, 7).UTC()}
	want := []byte{tokenCodecV1}
	for _, s := range []string{uuid, "svc", "s1", "ci", "rill_svc_abc", "u-1"} {
		want = append(append(want, byte(len(s))), s...)
	}
	want = append(want, tk.Hash[:]...)
	want = append(want, 10, 0, 14) // zigzag varints of 5, 0 (no expiry), 7
	if got := encodeToken(&tk); string(got) != string(want) {
		t.Errorf("binary record\n got %q\nwant %q", got, want)
	}
	js, err := json.Marshal(tk)
	must(t, err)
	if !strings.HasPrefix(string(js), `{"id":"`+uuid+`",`) {
		t.Errorf("JSON record %s does not hold the id as its UUID string", js)
	}
	var out store.Token
	if err := decodeToken(js, &out); err != nil || !reflect.DeepEqual(out, tk) {
		t.Errorf("JSON record: %+v %v", out, err)
	}

	// An id that is not a UUID, in either form, is a corrupt record.
	bad := append([]byte{tokenCodecV1, byte(len("legacy-1"))}, "legacy-1"...)
	bad = append(bad, want[1+1+len(uuid):]...)
	if err := decodeToken(bad, &out); !errors.Is(err, errCorrupt) {
		t.Errorf("binary record with id legacy-1: %v, want errCorrupt", err)
	}
	badJS := strings.Replace(string(js), uuid, "legacy-1", 1)
	if err := decodeToken([]byte(badJS), &out); !errors.Is(err, errCorrupt) || !strings.Contains(err.Error(), "not a UUID") {
		t.Errorf("JSON record with id legacy-1: %v, want errCorrupt saying not a UUID", err)
	}
}

// FuzzDecodeToken feeds arbitrary stored bytes to the record decoder: it must return a record
// or an error, never panic, and a record it accepts in the binary form must encode back to the
// same bytes (nothing is silently dropped or invented).
func FuzzDecodeToken(f *testing.F) {
	id, err := token.ParseID("0b7e3a52-8f1c-4d6e-9a2b-3c4d5e6f7a8b")
	if err != nil {
		f.Fatal(err)
	}
	tk := store.Token{ID: id, Kind: token.Service, OwnerID: "s1", Prefix: "rill_svc_abc",
		CreatedAt: time.Unix(1_700_000_000, 5).UTC(), ExpiresAt: time.Unix(1_800_000_000, 0).UTC()}
	f.Add(encodeToken(&tk))
	f.Add(encodeToken(&store.Token{}))
	withWhere := tk
	withWhere.LastUsedIP, withWhere.LastUsedUserAgent = "10.0.0.1", "curl/8"
	f.Add(encodeToken(&withWhere))
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
