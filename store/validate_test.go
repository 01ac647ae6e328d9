package store_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// TestCheckFields finds a NUL or bytes that are not UTF-8 in every string a record or request
// holds, however deep, names where, and leaves bytes and times alone.
func TestCheckFields(t *testing.T) {
	var h token.Hash
	h[0] = 0 // bytes, not text: a hash or key may hold zeros
	ok := []any{
		store.Token{ID: token.ID{0, 0, 0}, Hash: h, DisplayName: "laptop ✓", CreatedAt: time.Now()},
		store.SigningKey{KID: "k1", PrivateKey: []byte{0, 0xff}},
		map[string]any{"a": []any{1, "é", map[string]any{"b": nil}}},
	}
	for _, v := range ok {
		if err := store.CheckFields("x", v); err != nil {
			t.Errorf("%T: %v", v, err)
		}
	}
	bad := []struct {
		v    any
		want string
	}{
		{store.User{Email: "a\x00@b"}, "field email holds a NUL character (byte 1)"},
		{store.User{Orgs: map[string]store.UserOrg{"acme": {Groups: []string{"ok", "\xff"}}}}, "field orgs.acme.groups[1] is not valid UTF-8 (byte 0 is 0xff)"},
		{store.Service{Attributes: map[string]any{"k\x00": 1}}, "a key of field attributes holds a NUL"},
		{store.Service{Attributes: map[string]any{"a b": map[string]any{"c": []any{"x\x00"}}}}, `field attributes["a b"].c[0] holds a NUL`},
		{&store.Token{DisplayName: "ok\xc3"}, "field display_name is not valid UTF-8 (byte 2 is 0xc3)"},
		{"\x00", "x: the text holds a NUL"},
	}
	for _, b := range bad {
		err := store.CheckFields("x", b.v)
		if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%+v: %v, want %q", b.v, err, b.want)
		}
	}
	snap := store.Snapshot{Users: []store.User{{ID: "u1", Email: "a@b", DisplayName: "A\x00"}}}
	if err := snap.Validate(); !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), `user u1 ("a@b"): field display_name holds a NUL`) {
		t.Errorf("Validate: %v", err)
	}
}

// BenchmarkCheckFields is the check every write now makes, against the JSON encoding every
// write already made of the same record (the baseline).
func BenchmarkCheckFields(b *testing.B) {
	u := store.User{ID: token.NewID(), Email: "ada@acme.test", DisplayName: "Ada Lovelace",
		Orgs: map[string]store.UserOrg{"acme": {Groups: []string{"ops", "analysts"}, Attributes: map[string]any{"tier": "gold", "seats": 3.0}}}}
	tk := store.Token{ID: token.ID{1}, Kind: token.User, OwnerID: u.ID, DisplayName: "laptop", Prefix: "rill_usr_abc", CreatedAt: time.Now()}
	for _, v := range []struct {
		name string
		rec  any
	}{{"user", u}, {"token", tk}} {
		b.Run(v.name+"/check", func(b *testing.B) {
			for b.Loop() {
				if err := store.CheckFields("x", v.rec); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(v.name+"/json", func(b *testing.B) {
			for b.Loop() {
				if _, err := json.Marshal(v.rec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
