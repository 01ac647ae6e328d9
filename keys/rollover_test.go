package keys

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/store/badger"
	"github.com/rill-authd/rill-authd/token"
)

// signerOf signs a token with r's keyset and returns its kid.
func signerOf(t testing.TB, r *Ring, at time.Time) (kid, raw string) {
	t.Helper()
	ks, err := r.Keyset(ctx)
	must(t, err)
	raw, err = ks.Sign(claimsAt(at, time.Hour))
	must(t, err)
	return kidOf(t, raw), raw
}

func stateOf(t testing.TB, r *Ring, kid string) State {
	t.Helper()
	for _, s := range statuses(t, r) {
		if s.KID == kid {
			return s.State
		}
	}
	t.Fatalf("no key %s", kid)
	return ""
}

// TestScheduledRotation: a rotation publishes the new key at once and makes it sign only after
// the activation delay. Two rings on one store (two replicas) switch at the same moment by the
// clock alone, with no write and no Invalidate at the activation; the old key verifies until its
// tokens expired.
func TestScheduledRotation(t *testing.T) {
	const delay, maxTTL = 10 * time.Minute, time.Hour
	st := openStore(t, badger.Options{})
	clk := &clock{now: t0}
	a := NewRing(st, Options{MaxTTL: maxTTL, ActivationDelay: delay, Now: clk.Now})
	b := NewRing(st, Options{MaxTTL: maxTTL, ActivationDelay: time.Hour, Now: clk.Now}) // its own delay does not matter
	_, err := a.Ensure(ctx)
	must(t, err)
	old, _ := signerOf(t, b, clk.Now()) // b has it cached from here

	clk.Add(time.Minute)
	rot, err := a.Rotate(ctx, false)
	must(t, err)
	if rot.Replaces != old || !rot.ActivatesAt.Equal(clk.Now().Add(delay)) || len(rot.Retired) != 0 {
		t.Fatalf("rotation %+v: want a key replacing %s at %v", rot, old, clk.Now().Add(delay))
	}
	b.Invalidate() // as the change feed does
	var oldTokens []string
	for _, step := range []struct {
		name  string
		after time.Duration // since the rotation
		want  string
	}{
		{"right after the rotation", 0, old},
		{"a second before the activation", delay - time.Second, old},
		{"at the activation", delay, rot.KID},
		{"later", delay + time.Minute, rot.KID},
	} {
		clk.now = t0.Add(time.Minute + step.after)
		for name, r := range map[string]*Ring{"a": a, "b": b} {
			kid, raw := signerOf(t, r, clk.Now())
			if kid != step.want {
				t.Errorf("%s, replica %s: signed by %s, want %s", step.name, name, kid, step.want)
			}
			if kid == old {
				oldTokens = append(oldTokens, raw)
			}
			ks, _ := r.Keyset(ctx)
			if got := jwksKids(t, ks); !slices.Contains(got, rot.KID) || !slices.Contains(got, old) {
				t.Errorf("%s, replica %s: JWKS %v, want both keys", step.name, name, got)
			}
		}
	}
	if s := stateOf(t, b, old); s != Verifying {
		t.Errorf("the old key is %s after the activation, want verifying", s)
	}
	// A second scheduled rotation while one waits is refused, and writes nothing.
	clk.now = t0.Add(2 * time.Minute)
	n := len(statuses(t, a))
	if _, err := a.Rotate(ctx, false); !errors.Is(err, ErrRotationPending) || !strings.Contains(err.Error(), rot.KID) || !strings.Contains(err.Error(), "--now") {
		t.Errorf("a second scheduled rotation: %v, want ErrRotationPending naming %s and --now", err, rot.KID)
	}
	if len(statuses(t, a)) != n {
		t.Error("the refused rotation wrote a key")
	}
	// The old key's tokens verify until maxTTL (+ leeway) after it stopped signing, then it
	// leaves the JWKS of both rings, again by the clock alone.
	clk.now = t0.Add(time.Minute + delay + maxTTL - time.Second)
	for _, r := range []*Ring{a, b} {
		ks, _ := r.Keyset(ctx)
		for _, raw := range oldTokens[:1] {
			if _, err := ks.Verify(raw, "rill-authd", "rill", t0.Add(time.Minute)); err != nil {
				t.Errorf("a token of the old key no longer verifies before its keys' time is up: %v", err)
			}
		}
	}
	clk.now = t0.Add(time.Minute + delay + maxTTL + token.Leeway)
	for _, r := range []*Ring{a, b} {
		ks, _ := r.Keyset(ctx)
		if got := jwksKids(t, ks); len(got) != 1 || got[0] != rot.KID {
			t.Errorf("JWKS %v after every old token expired, want only %s", got, rot.KID)
		}
	}
}

// TestEmergencyRotation: with now, the new key signs at once, the key that signed keeps
// verifying, and a scheduled key (which signed nothing) is retired.
func TestEmergencyRotation(t *testing.T) {
	st := openStore(t, badger.Options{})
	clk := &clock{now: t0}
	r := NewRing(st, Options{ActivationDelay: 10 * time.Minute, Now: clk.Now})
	_, err := r.Ensure(ctx)
	must(t, err)
	old, oldTok := signerOf(t, r, clk.Now())
	clk.Add(time.Minute)
	scheduled, err := r.Rotate(ctx, false)
	must(t, err)
	clk.Add(time.Minute)
	rot, err := r.Rotate(ctx, true)
	must(t, err)
	if rot.Replaces != old || !rot.ActivatesAt.Equal(clk.Now()) || len(rot.Retired) != 1 || rot.Retired[0] != scheduled.KID {
		t.Fatalf("emergency rotation %+v: want a key signing now replacing %s, retiring %s", rot, old, scheduled.KID)
	}
	for _, later := range []time.Duration{0, 10 * time.Minute, time.Hour} { // past the scheduled key's activation too
		clk.now = t0.Add(2*time.Minute + later)
		if kid, _ := signerOf(t, r, clk.Now()); kid != rot.KID {
			t.Errorf("%v after: signed by %s, want %s", later, kid, rot.KID)
		}
	}
	clk.now = t0.Add(3 * time.Minute)
	ks, _ := r.Keyset(ctx)
	if got := jwksKids(t, ks); slices.Contains(got, scheduled.KID) || !slices.Contains(got, old) {
		t.Errorf("JWKS %v: want the old key, not the retired scheduled one", got)
	}
	if _, err := ks.Verify(oldTok, "rill-authd", "rill", clk.Now()); err != nil {
		t.Errorf("a token of the replaced key: %v", err)
	}
	if s := stateOf(t, r, scheduled.KID); s != Retired {
		t.Errorf("the scheduled key is %s, want retired", s)
	}
}

// TestRetire: the key that signs cannot be retired; any other leaves the JWKS at once and its
// tokens fail; a retired scheduled key never signs; unknown kids and repeats are handled.
func TestRetire(t *testing.T) {
	st := openStore(t, badger.Options{})
	clk := &clock{now: t0}
	r := NewRing(st, Options{ActivationDelay: 10 * time.Minute, Now: clk.Now})
	_, err := r.Ensure(ctx)
	must(t, err)
	first, firstTok := signerOf(t, r, clk.Now())

	if _, err := r.Retire(ctx, first); !errors.Is(err, ErrKeySigns) || !strings.Contains(err.Error(), "rotate-signing-key --now") {
		t.Errorf("retiring the signing key: %v, want ErrKeySigns pointing at rotate-signing-key --now", err)
	}
	if _, err := r.Retire(ctx, "no-such-kid"); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("retiring an unknown kid: %v", err)
	}
	if s := stateOf(t, r, first); s != Signing {
		t.Fatalf("after the refusals the key is %s", s)
	}

	// A scheduled key, retired, never signs.
	clk.Add(time.Minute)
	sched, err := r.Rotate(ctx, false)
	must(t, err)
	if _, err := r.Retire(ctx, sched.KID); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Hour)
	if kid, _ := signerOf(t, r, clk.Now()); kid != first {
		t.Errorf("after the retired scheduled key's activation: signed by %s, want %s", kid, first)
	}
	// Nothing waits now, so a scheduled rotation is allowed again.
	if _, err := r.Rotate(ctx, false); err != nil {
		t.Errorf("a rotation after the scheduled key was retired: %v", err)
	}

	// The compromised path: rotate now, then retire the old key: out of the JWKS at once, its
	// tokens refused, with no Invalidate from outside.
	rot, err := r.Rotate(ctx, true)
	must(t, err)
	st1, err := r.Retire(ctx, first)
	if err != nil || st1.State != Retired || !st1.RetiredAt.Equal(clk.Now()) {
		t.Fatalf("retire the replaced key: %+v %v", st1, err)
	}
	ks, _ := r.Keyset(ctx)
	if got := jwksKids(t, ks); slices.Contains(got, first) || !slices.Contains(got, rot.KID) {
		t.Errorf("JWKS %v after the retire", got)
	}
	if _, err := ks.Verify(firstTok, "rill-authd", "rill", clk.Now()); !errors.Is(err, token.ErrJWTUnknownKey) {
		t.Errorf("a token of the retired key: %v, want unknown key", err)
	}
	// Again: nothing changes, no error.
	again, err := r.Retire(ctx, first)
	if err != nil || !again.RetiredAt.Equal(st1.RetiredAt) {
		t.Errorf("retiring it again: %+v %v", again, err)
	}
}

// TestPlan: the states, by the stored times alone.
func TestPlan(t *testing.T) {
	const keep = time.Hour
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	key := func(kid string, created, activates int) store.SigningKey {
		k := store.SigningKey{KID: kid, CreatedAt: at(created)}
		if activates >= 0 {
			k.ActivatesAt = at(activates)
		}
		return k
	}
	legacy := key("legacy", 0, -1)
	legacy.SignedUntil = at(5)
	retired := key("r", 1, -1)
	retired.RetiredAt = at(2)
	for _, tc := range []struct {
		name string
		keys []store.SigningKey
		now  int
		want string // kid=state, by creation
		next int    // minutes; -1 none
	}{
		{"one key", []store.SigningKey{key("a", 0, -1)}, 10, "a=signing", -1},
		{"a scheduled key", []store.SigningKey{key("a", 0, -1), key("b", 10, 20)}, 15, "a=signing b=next", 20},
		{"at its activation", []store.SigningKey{key("a", 0, -1), key("b", 10, 20)}, 20, "a=verifying b=signing", 80},
		{"its tokens expired", []store.SigningKey{key("a", 0, -1), key("b", 10, 20)}, 80, "a=expired b=signing", -1},
		{"written out of order", []store.SigningKey{key("b", 10, 20), key("a", 0, -1)}, 30, "a=verifying b=signing", 80},
		{"an emergency key activates before a scheduled one", []store.SigningKey{key("a", 0, -1), key("b", 10, 40), key("c", 12, -1)}, 20,
			"a=verifying b=next c=signing", 40},
		{"legacy: stopped signing before keys had activations", []store.SigningKey{legacy, key("n", 5, -1)}, 30, "legacy=verifying n=signing", 65},
		{"legacy: only a stopped key", []store.SigningKey{legacy}, 30, "legacy=verifying", 65},
		{"a retired key takes no part", []store.SigningKey{key("a", 0, -1), retired}, 30, "a=signing r=retired", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := Plan(tc.keys, at(tc.now), keep)
			var got []string
			for _, s := range plan {
				got = append(got, s.KID+"="+string(s.State))
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("states %v, want %s", got, tc.want)
			}
			next := nextChange(plan, at(tc.now))
			if (tc.next < 0) != next.IsZero() || (tc.next >= 0 && !next.Equal(at(tc.next))) {
				t.Errorf("next change %v, want minute %d", next, tc.next)
			}
		})
	}
}

// TestKeysFromBeforeActivationTimes: a store written before keys had activation times holds the
// old signing key with retired_at (when a rotation stopped it signing). Read now, that key is
// one that stopped signing and verifies until its tokens expired, not a retired (withdrawn) one,
// so an upgrade right after a rotation refuses no token.
func TestKeysFromBeforeActivationTimes(t *testing.T) {
	st := openStore(t, badger.Options{})
	clk := &clock{now: t0}
	r := NewRing(st, Options{MaxTTL: time.Hour, Now: clk.Now})
	old, cur := mustKey(t, t0.Add(-2*time.Hour)), mustKey(t, t0.Add(-10*time.Minute))
	tok, err := NewKeyset([]Key{old}).Sign(claimsAt(t0.Add(-15*time.Minute), time.Hour))
	must(t, err)
	for _, k := range []Key{old, cur} {
		rec, err := k.Record()
		must(t, err)
		doc, err := json.Marshal(map[string]any{"kid": rec.KID, "private_key": rec.PrivateKey, "created_at": rec.CreatedAt})
		must(t, err)
		if k.KID == old.KID { // as the old code wrote a rotation's retire
			doc, err = json.Marshal(map[string]any{"kid": rec.KID, "private_key": rec.PrivateKey, "created_at": rec.CreatedAt, "retired_at": cur.CreatedAt})
			must(t, err)
		}
		var back store.SigningKey
		must(t, json.Unmarshal(doc, &back))
		must(t, st.PutSigningKey(ctx, back))
	}
	recs, err := st.ListSigningKeys(ctx)
	must(t, err)
	if len(recs) != 2 || !recs[0].SignedUntil.Equal(cur.CreatedAt) || !recs[0].RetiredAt.IsZero() {
		t.Fatalf("the old record read as %+v", recs[0])
	}
	ks, err := r.Keyset(ctx)
	must(t, err)
	if _, err := ks.Verify(tok, "rill-authd", "rill", t0); err != nil {
		t.Errorf("a token of the key an old rotation stopped: %v", err)
	}
	if kid, _ := signerOf(t, r, t0); kid != cur.KID {
		t.Errorf("signed by %s, want %s", kid, cur.KID)
	}
	if s := stateOf(t, r, old.KID); s != Verifying {
		t.Errorf("the old key is %s, want verifying", s)
	}
}
