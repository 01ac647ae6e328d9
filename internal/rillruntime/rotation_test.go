package rillruntime_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/adminapi/client"
	"github.com/rill-authd/rill-authd/internal/testenv"
)

// The runtime's 5-minute JWKS refetch limit and the 10-minute activation delay, shortened; the
// delay stays well above the limit, as in production, so a slow machine cannot make it race.
const (
	refetchEvery    = 2 * time.Second
	activationDelay = 6 * time.Second
)

// TestRotationWithoutRefusals: a scheduled rotation makes no runtime refuse a token. Runtimes
// that cache the JWKS and refetch it at most every refetchEvery, each fetching from its own
// replica (as a load balancer in front of the replicas would send it) just before the
// rotation, verify every credentials token minted on every replica, before, across and after
// the new key's activation: zero refusals. Then the emergency path (--now: refused until the
// runtime may refetch, as documented) and retiring a key (out of every replica's JWKS at once,
// its tokens refused by our check at once).
func TestRotationWithoutRefusals(t *testing.T) {
	flags := []string{"--signing-key-activation-delay", activationDelay.String()}
	t.Run("Badger", func(t *testing.T) {
		rotationWithoutRefusals(t, []*testenv.Daemon{testenv.Start(t, "", flags...)})
	})
	t.Run("PostgreSQL replicas", func(t *testing.T) {
		db, _ := testenv.PostgresDB(t, "")
		a := testenv.Start(t, "", append(flags, "--store", db)...)
		// No --public-url: b takes the issuer a recorded in the store.
		b := testenv.Start(t, "", append(flags, "--store", db)...)
		rotationWithoutRefusals(t, []*testenv.Daemon{a, b})
	})
}

func rotationWithoutRefusals(t *testing.T, ds []*testenv.Daemon) {
	ctx := context.Background()
	issuer := ds[0].URL()
	for i, d := range ds {
		if !strings.Contains(d.Stderr(), "issuer="+issuer) {
			t.Fatalf("replica %d does not mint with the recorded issuer %s:\n%s", i, issuer, d.Stderr())
		}
	}
	su := client.New(issuer, ds[0].Token)
	if _, err := su.CreateOrg(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := su.CreateProject(ctx, "acme", "web"); err != nil {
		t.Fatal(err)
	}
	mint := func(d *testenv.Daemon) string {
		t.Helper()
		code, _, b := do(t, "POST", d.URL()+"/v1/orgs/acme/projects/web/credentials", ds[0].Token, `{"user_email":"end@customer.io","ttl_seconds":600}`)
		if code != 200 {
			t.Fatalf("credentials on %s: %d %s", d.URL(), code, b)
		}
		var out struct{ AccessToken string }
		if err := json.Unmarshal(b, &out); err != nil || out.AccessToken == "" {
			t.Fatalf("credentials on %s: %s (%v)", d.URL(), b, err)
		}
		return out.AccessToken
	}
	kidOf := func(raw string) string { k, _ := (&jwtClaims{}).Header(raw)["kid"].(string); return k }
	runtimes := make([]*audience, len(ds))
	for i, d := range ds {
		runtimes[i] = &audience{issuerURL: issuer, audienceURL: "rill-runtime", jwksURL: d.URL() + "/.well-known/jwks.json", minRefetch: refetchEvery}
	}
	oldTok := mint(ds[0])
	oldKID := kidOf(oldTok)

	// Every runtime has just fetched the JWKS: the worst moment for a rotation.
	for _, rt := range runtimes {
		if err := rt.refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}
	rotated := time.Now()
	rot, err := client.New(ds[len(ds)-1].URL(), ds[0].Token).RotateSigningKey(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if rot.Replaces != oldKID || rot.KID == oldKID || rot.ActivatesAt.Before(rotated.Add(activationDelay-time.Second)) || rot.ActivatesAt.After(time.Now().Add(activationDelay)) {
		t.Fatalf("rotation %+v: want a new key replacing %s, signing %s from now", rot, oldKID, activationDelay)
	}
	refusals, checked, byKID := 0, 0, map[string]int{}
	for end := rot.ActivatesAt.Add(2 * refetchEvery); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		for _, d := range ds {
			before := time.Now()
			raw := mint(d)
			kid := kidOf(raw)
			byKID[kid]++
			if kid == rot.KID && before.Before(rot.ActivatesAt.Add(-time.Second)) {
				t.Errorf("a token minted at %s, before the activation at %s, carries the new kid", before, rot.ActivatesAt)
			}
			for i, rt := range runtimes {
				checked++
				if _, err := rt.parseAndValidate(raw); err != nil {
					refusals++
					t.Errorf("runtime %d refused a token of kid %s minted at %s (rotation at %s, activation at %s): %v",
						i, kid, before.Format(time.StampMilli), rotated.Format(time.StampMilli), rot.ActivatesAt.Format(time.StampMilli), err)
				}
			}
		}
	}
	t.Logf("%d checks across the rotation, %d refusals; tokens by kid %v", checked, refusals, byKID)
	if byKID[oldKID] == 0 || byKID[rot.KID] == 0 {
		t.Fatalf("tokens by kid %v: want both the old key (before the activation) and the new one (after)", byKID)
	}
	if _, err := runtimes[0].parseAndValidate(oldTok); err != nil {
		t.Errorf("a token of the old key after the activation: %v", err)
	}
	states := keyStates(t, su)
	if states[oldKID] != "verifying" || states[rot.KID] != "signing" {
		t.Errorf("signing keys after the activation: %v", states)
	}

	// Emergency: --now signs at once. A runtime that fetched the JWKS a moment before refuses
	// the new tokens until it may refetch (the documented cost); one free to refetch takes them.
	newTok := mint(ds[0])
	cached := &audience{issuerURL: issuer, audienceURL: "rill-runtime", jwksURL: issuer + "/.well-known/jwks.json", minRefetch: time.Hour}
	if err := cached.refresh(ctx); err != nil {
		t.Fatal(err)
	}
	now, err := su.RotateSigningKey(ctx, true)
	if err != nil || now.Replaces != rot.KID || len(now.Retired) != 0 {
		t.Fatalf("rotate --now: %+v %v", now, err)
	}
	for _, d := range ds {
		var raw string
		waitFor(t, "replica "+d.URL()+" signs with the emergency key", func() bool { raw = mint(d); return kidOf(raw) == now.KID })
		if _, err := cached.parseAndValidate(raw); !errors.Is(err, errRateLimited) {
			t.Errorf("a runtime that had just fetched the JWKS took a token of the emergency key: %v", err)
		}
		free, err := openAudience(ctx, issuer, "rill-runtime")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := free.parseAndValidate(raw); err != nil {
			t.Errorf("a runtime that refetches refused a token of the emergency key: %v", err)
		}
	}

	// Retire: the key that signs cannot be; the one it replaced leaves every replica's JWKS at
	// once, and our check refuses its tokens (accepted, and cached, a moment before).
	if _, err := su.RetireSigningKey(ctx, now.KID); err == nil || !strings.Contains(err.Error(), "rotate-signing-key --now") {
		t.Errorf("retiring the key that signs: %v, want a refusal that says to rotate with --now first", err)
	}
	for _, d := range ds {
		if code, _, _ := do(t, "GET", d.URL()+"/ext_authz/v1/orgs/acme/projects/web/runtime/api/x", newTok, ""); code != 200 {
			t.Fatalf("our check on %s refuses a token of the replaced key before the retire: %d", d.URL(), code)
		}
	}
	k, err := client.New(ds[len(ds)-1].URL(), ds[0].Token).RetireSigningKey(ctx, rot.KID)
	if err != nil || k.State != "retired" || k.RetiredAt.IsZero() {
		t.Fatalf("retire %s: %+v %v", rot.KID, k, err)
	}
	for _, d := range ds {
		waitFor(t, "replica "+d.URL()+" drops the retired key from its JWKS", func() bool {
			_, _, b := do(t, "GET", d.URL()+"/.well-known/jwks.json", "", "")
			return !strings.Contains(string(b), rot.KID) && strings.Contains(string(b), now.KID)
		})
		if code, _, _ := do(t, "GET", d.URL()+"/ext_authz/v1/orgs/acme/projects/web/runtime/api/x", newTok, ""); code != http.StatusUnauthorized {
			t.Errorf("our check on %s after the retire: %d, want 401", d.URL(), code)
		}
	}
	fresh, err := openAudience(ctx, issuer, "rill-runtime")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.parseAndValidate(newTok); err == nil || !strings.Contains(err.Error(), "is not in the JWKS") {
		t.Errorf("a runtime that fetched the JWKS after the retire: %v, want the kid unknown", err)
	}
	if _, err := su.RetireSigningKey(ctx, "no-such-kid"); err == nil || !strings.Contains(err.Error(), "no signing key has that kid") {
		t.Errorf("retire an unknown kid: %v", err)
	}
	states = keyStates(t, su)
	if states[oldKID] != "verifying" || states[rot.KID] != "retired" || states[now.KID] != "signing" {
		t.Errorf("signing keys at the end: %v", states)
	}
}

func keyStates(t *testing.T, c *client.Client) map[string]string {
	t.Helper()
	ks, err := c.SigningKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, k := range ks {
		out[k.KID] = k.State
	}
	return out
}

// waitFor polls cond for up to 10s (a replica follows the feed within milliseconds; the
// margin is for a loaded machine), failing t with what if it never holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
	}
}
