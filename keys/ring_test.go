package keys

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/store/badger"
)

var ctx = context.Background()

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// statuses is r.Status, failing t on an error.
func statuses(t testing.TB, r *Ring) []Status {
	t.Helper()
	ss, err := r.Status(ctx)
	must(t, err)
	return ss
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// openStore opens a real Badger store in a temporary directory.
func openStore(t testing.TB, o badger.Options) *badger.DB {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	o.GCInterval = -1
	st, err := badger.Open(o)
	must(t, err)
	t.Cleanup(func() { st.Close() })
	return st
}

// put stores a generated key created at created that stopped signing at retired (zero: signs
// until a later one activates), as rotations before activation times wrote them.
func put(t testing.TB, st Store, created, retired time.Time) string {
	t.Helper()
	k := mustKey(t, created)
	k.SignedUntil = retired
	rec, err := k.Record()
	must(t, err)
	must(t, st.PutSigningKey(ctx, rec))
	return k.KID
}

func kids(t testing.TB, st Store) (signing, retired []string) {
	t.Helper()
	recs, err := st.ListSigningKeys(ctx)
	must(t, err)
	for _, r := range recs {
		if r.SignedUntil.IsZero() && r.RetiredAt.IsZero() {
			signing = append(signing, r.KID)
		} else {
			retired = append(retired, r.KID)
		}
	}
	return signing, retired
}

func jwksKids(t testing.TB, ks *Keyset) []string {
	t.Helper()
	var set struct{ Keys []struct{ Kid string } }
	must(t, json.Unmarshal(ks.JWKS(), &set))
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.Kid)
	}
	sort.Strings(out)
	return out
}

func TestEnsureCreatesTheFirstKeyOnce(t *testing.T) {
	for _, tc := range []struct {
		name        string
		before      func(t *testing.T, st Store) // keys already in the store
		wantCreated bool
		wantKeys    int
	}{
		{"empty store", func(*testing.T, Store) {}, true, 1},
		{"a signing key exists", func(t *testing.T, st Store) { put(t, st, t0, time.Time{}) }, false, 1},
		{"only retired keys", func(t *testing.T, st Store) { put(t, st, t0, t0.Add(time.Hour)) }, true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := openStore(t, badger.Options{})
			tc.before(t, st)
			r := NewRing(st, Options{Now: func() time.Time { return t0.Add(2 * time.Hour) }})
			created, err := r.Ensure(ctx)
			if err != nil || created != tc.wantCreated {
				t.Fatalf("first Ensure: created %v, %v; want %v", created, err, tc.wantCreated)
			}
			if created, err := r.Ensure(ctx); err != nil || created {
				t.Fatalf("second Ensure: created %v, %v; want nothing made", created, err)
			}
			signing, retired := kids(t, st)
			if len(signing) != 1 || len(signing)+len(retired) != tc.wantKeys {
				t.Fatalf("store holds signing %v, retired %v; want one signing key of %d", signing, retired, tc.wantKeys)
			}
			ks, err := r.Keyset(ctx)
			must(t, err)
			raw, err := ks.Sign(claimsAt(t0, time.Hour))
			must(t, err)
			if kid := kidOf(t, raw); kid != signing[0] {
				t.Errorf("signed by %s, want the signing key %s", kid, signing[0])
			}
		})
	}
}

// TestEnsureOnAnEncryptedStore: keys live in the store as it encrypts them at rest, and are
// the same keys after a reopen.
func TestEnsureOnAnEncryptedStore(t *testing.T) {
	dir, secret := t.TempDir(), []byte("0123456789abcdef0123456789abcdef")
	st, err := badger.Open(badger.Options{Dir: dir, EncryptionKey: secret, GCInterval: -1})
	must(t, err)
	if created, err := NewRing(st, Options{}).Ensure(ctx); err != nil || !created {
		t.Fatalf("Ensure: %v %v", created, err)
	}
	signing, _ := kids(t, st)
	must(t, st.Close())
	st = openStore(t, badger.Options{Dir: dir, EncryptionKey: secret})
	r := NewRing(st, Options{})
	if created, err := r.Ensure(ctx); err != nil || created {
		t.Fatalf("Ensure after reopen: %v %v", created, err)
	}
	ks, err := r.Keyset(ctx)
	must(t, err)
	raw, err := ks.Sign(claimsAt(time.Now(), time.Hour))
	must(t, err)
	if kid := kidOf(t, raw); len(signing) != 1 || kid != signing[0] {
		t.Errorf("after reopen signed by %s, want %v", kid, signing)
	}
}

func TestRotate(t *testing.T) {
	for _, tc := range []struct {
		name      string
		rotations int
	}{{"once", 1}, {"twice", 2}, {"three times", 3}} {
		t.Run(tc.name, func(t *testing.T) {
			st := openStore(t, badger.Options{})
			clk := &clock{now: t0}
			r := NewRing(st, Options{MaxTTL: time.Hour, Now: clk.Now})
			_, err := r.Ensure(ctx)
			must(t, err)
			ks, err := r.Keyset(ctx)
			must(t, err)
			raw, err := ks.Sign(claimsAt(clk.Now(), time.Hour))
			must(t, err)
			tokens := []string{raw} // one per signer, each still live at the end
			all := []string{kidOf(t, raw)}
			for i := range tc.rotations {
				clk.Add(time.Minute)
				prev := all[len(all)-1]
				rot, err := r.Rotate(ctx, true)
				must(t, err)
				if rot.KID == prev || rot.Replaces != prev || len(rot.Retired) != 0 || !rot.ActivatesAt.Equal(clk.Now()) {
					t.Fatalf("rotation %d: %+v, want a new kid replacing %s at once", i+1, rot, prev)
				}
				// No Invalidate from outside: the ring sees its own writes.
				ks, err := r.Keyset(ctx)
				must(t, err)
				raw, err := ks.Sign(claimsAt(clk.Now(), time.Hour))
				must(t, err)
				if kid := kidOf(t, raw); kid != rot.KID {
					t.Fatalf("rotation %d: signed by %s, want the new key %s", i+1, kid, rot.KID)
				}
				if !ks.SignerCreated().Equal(clk.Now()) {
					t.Errorf("rotation %d: signer created %v, want %v", i+1, ks.SignerCreated(), clk.Now())
				}
				tokens = append(tokens, raw)
				all = append(all, rot.KID)
			}
			ks, err = r.Keyset(ctx)
			must(t, err)
			want := append([]string(nil), all...)
			sort.Strings(want)
			if got := jwksKids(t, ks); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("JWKS kids %v, want every key %v", got, want)
			}
			for i, raw := range tokens {
				if _, err := ks.Verify(raw, "rill-authd", "rill", clk.Now()); err != nil {
					t.Errorf("token of key %d (%s) no longer verifies: %v", i, all[i], err)
				}
			}
			states := map[State][]string{}
			for _, s := range statuses(t, r) {
				states[s.State] = append(states[s.State], s.KID)
			}
			if len(states[Signing]) != 1 || states[Signing][0] != all[len(all)-1] || len(states[Verifying]) != tc.rotations || len(states) != 2 {
				t.Errorf("states after the rotations: %v", states)
			}
		})
	}
}

// TestRetiredKeysDropOut: a retired key verifies while tokens it signed can be alive, then
// leaves the keyset (and so the JWKS), also when no write tells the ring.
func TestRetiredKeysDropOut(t *testing.T) {
	const maxTTL = time.Hour
	for _, tc := range []struct {
		name    string
		retired time.Duration // before now; 0: never retired
		later   time.Duration // the clock moves on this much with no store write
		want    bool
	}{
		{"signing key", 0, 0, true},
		{"signing key, much later", 0, 48 * time.Hour, true},
		{"retired 30m ago: may have live tokens", 30 * time.Minute, 0, true},
		{"retired just inside max TTL and leeway", maxTTL + 29*time.Second, 0, true},
		{"retired 2h ago: all its tokens expired", 2 * time.Hour, 0, false},
		{"retired 30m ago, 31m later", 30 * time.Minute, 31 * time.Minute, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := openStore(t, badger.Options{})
			clk := &clock{now: time.Now()}
			r := NewRing(st, Options{MaxTTL: maxTTL, Now: clk.Now})
			current := put(t, st, clk.Now().Add(-time.Minute), time.Time{})
			kid := current
			if tc.retired != 0 {
				kid = put(t, st, clk.Now().Add(-3*time.Hour), clk.Now().Add(-tc.retired))
			}
			_, err := r.Keyset(ctx) // cached from here on
			must(t, err)
			clk.Add(tc.later)
			ks, err := r.Keyset(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := ks.PublicKey(kid); ok != tc.want {
				t.Errorf("in keyset %v, want %v", ok, tc.want)
			}
			if strings.Contains(string(ks.JWKS()), kid) != tc.want {
				t.Errorf("in JWKS %v, want %v", !tc.want, tc.want)
			}
			if _, ok := ks.PublicKey(current); !ok {
				t.Error("the signing key left the keyset")
			}
		})
	}
}

func TestJWKSShape(t *testing.T) {
	for _, tc := range []struct {
		name    string
		retired []bool // per key, oldest first
	}{{"one key", []bool{false}}, {"after a rotation", []bool{true, false}}, {"no keys", nil}} {
		t.Run(tc.name, func(t *testing.T) {
			st := openStore(t, badger.Options{})
			now := time.Now()
			r := NewRing(st, Options{Now: func() time.Time { return now }})
			want := map[string]bool{}
			for i, ret := range tc.retired {
				at := time.Time{}
				if ret {
					at = now.Add(-time.Minute)
				}
				want[put(t, st, now.Add(time.Duration(i-len(tc.retired))*time.Hour), at)] = true
			}
			ks, err := r.Keyset(ctx)
			must(t, err)
			var set map[string][]map[string]string
			must(t, json.Unmarshal(ks.JWKS(), &set))
			if len(set) != 1 || set["keys"] == nil || len(set["keys"]) != len(tc.retired) {
				t.Fatalf("JWKS %s: want {\"keys\": [%d keys]}", ks.JWKS(), len(tc.retired))
			}
			for _, k := range set["keys"] {
				var fields []string
				for f := range k {
					fields = append(fields, f)
				}
				sort.Strings(fields)
				if strings.Join(fields, ",") != "alg,e,kid,kty,n,use" {
					t.Errorf("JWK has fields %v, want exactly alg,e,kid,kty,n,use (nothing private)", fields)
				}
				if k["kty"] != "RSA" || k["use"] != "sig" || k["alg"] != "RS256" || !want[k["kid"]] {
					t.Errorf("JWK %v", k)
				}
				pub, ok := ks.PublicKey(k["kid"])
				n, errN := base64.RawURLEncoding.DecodeString(k["n"])
				e, errE := base64.RawURLEncoding.DecodeString(k["e"])
				if !ok || errN != nil || errE != nil || new(big.Int).SetBytes(n).Cmp(pub.N) != 0 || pub.N.BitLen() != Bits ||
					k["e"] != "AQAB" || new(big.Int).SetBytes(e).Int64() != int64(pub.E) {
					t.Errorf("JWK %s: n/e do not encode its %d-bit key", k["kid"], Bits)
				}
				delete(want, k["kid"])
			}
			if len(want) != 0 {
				t.Errorf("keys missing from JWKS: %v", want)
			}
		})
	}
}

func TestSignerIsTheNewest(t *testing.T) {
	for _, tc := range []struct {
		name string
		// ages of the keys in the order they are written, and whether each is retired
		ages    []time.Duration
		retired []bool
		want    int // index of the key that must sign
	}{
		{"one key", []time.Duration{time.Hour}, []bool{false}, 0},
		{"rotated", []time.Duration{2 * time.Hour, time.Hour}, []bool{true, false}, 1},
		{"written newest first", []time.Duration{time.Hour, 2 * time.Hour}, []bool{false, true}, 0},
		{"crash mid-rotation: two unretired", []time.Duration{2 * time.Hour, time.Hour}, []bool{false, false}, 1},
		{"crash mid-rotation, written newest first", []time.Duration{time.Minute, 2 * time.Hour, 3 * time.Hour}, []bool{false, false, true}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := openStore(t, badger.Options{})
			now := time.Now()
			r := NewRing(st, Options{Now: func() time.Time { return now }})
			var written []string
			for i, age := range tc.ages {
				at := time.Time{}
				if tc.retired[i] {
					at = now.Add(-time.Minute)
				}
				written = append(written, put(t, st, now.Add(-age), at))
			}
			ks, err := r.Keyset(ctx)
			must(t, err)
			raw, err := ks.Sign(claimsAt(now, time.Hour))
			must(t, err)
			if kid := kidOf(t, raw); kid != written[tc.want] {
				t.Errorf("signed by %s, want the newest signing key %s", kid, written[tc.want])
			}
			if !ks.SignerCreated().Equal(now.Add(-tc.ages[tc.want]).UTC()) {
				t.Errorf("SignerCreated %v, want %v", ks.SignerCreated(), now.Add(-tc.ages[tc.want]))
			}
		})
	}
}

// TestInvalidate: the ring serves its cached keyset until told of a change made elsewhere
// (another replica, or a direct store write).
func TestInvalidate(t *testing.T) {
	st := openStore(t, badger.Options{})
	r := NewRing(st, Options{})
	_, err := r.Ensure(ctx)
	must(t, err)
	before, err := r.Keyset(ctx)
	must(t, err)
	kid := put(t, st, time.Now(), time.Time{})
	if ks, _ := r.Keyset(ctx); ks != before {
		t.Error("keyset reloaded without a change notice")
	}
	r.Invalidate()
	ks, err := r.Keyset(ctx)
	must(t, err)
	if _, ok := ks.PublicKey(kid); !ok {
		t.Error("a key written elsewhere is missing after Invalidate")
	}
}

// TestConcurrentUse: readers always get a keyset that signs and verifies while rotations and
// invalidations run (run with -race).
func TestConcurrentUse(t *testing.T) {
	st := openStore(t, badger.Options{})
	r := NewRing(st, Options{})
	_, err := r.Ensure(ctx)
	must(t, err)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				ks, err := r.Keyset(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				raw, err := ks.Sign(claimsAt(time.Now(), time.Hour))
				if err == nil {
					_, err = ks.Verify(raw, "rill-authd", "rill", time.Now())
				}
				if err != nil {
					t.Error(err)
					return
				}
				r.Invalidate()
			}
		})
	}
	for range 2 {
		_, err := r.Rotate(ctx, true)
		must(t, err)
	}
	close(stop)
	wg.Wait()
	n := map[State]int{}
	for _, s := range statuses(t, r) {
		n[s.State]++
	}
	if n[Signing] != 1 || n[Verifying] != 2 {
		t.Errorf("states: %v", n)
	}
}
