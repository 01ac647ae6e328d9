package keys

import (
	"sort"
	"time"

	"github.com/rill-authd/rill-authd/store"
)

// State is where a signing key is in its life.
type State string

const (
	// Next: in the JWKS, signs from its activation time. Verifiers that fetch the JWKS
	// before then know it by the time a token carries its kid.
	Next State = "next"
	// Signing: the key that signs new tokens (one at a time).
	Signing State = "signing"
	// Verifying: a later key took over; it stays in the JWKS until every token it signed
	// has expired.
	Verifying State = "verifying"
	// Expired: every token it signed has expired; out of the JWKS.
	Expired State = "expired"
	// Retired: an operator retired it; out of the JWKS at once, it verifies nothing.
	Retired State = "retired"
)

// Status is one key's place in the ring at a moment, derived from the stored times alone: every
// replica that reads the same keys at the same time decides the same, with no timer of its own.
type Status struct {
	KID         string
	CreatedAt   time.Time
	ActivatesAt time.Time // when it signs (or signed) from
	// SignsUntil is when a later key takes over (zero: no later key is scheduled).
	SignsUntil time.Time
	// VerifiesUntil is when it leaves the JWKS (zero: not scheduled; RetiredAt for a retired
	// key).
	VerifiesUntil time.Time
	RetiredAt     time.Time
	State         State
}

// Published reports whether the key is in the JWKS, and so verifies.
func (s Status) Published() bool {
	return s.State == Next || s.State == Signing || s.State == Verifying
}

// Describe says what the key's state means, in the words the admin API sends with it, so that
// rillctl and the console show one reading of a key (they once each worked out their own from
// the stored times, and disagreed after a rotation).
func (s Status) Describe() string {
	switch s.State {
	case Next:
		return "in the JWKS, not signing yet: signs from its activation"
	case Signing:
		if s.SignsUntil.IsZero() {
			return "signs new tokens; no later key is scheduled"
		}
		return "signs new tokens until a later key takes over"
	case Verifying:
		return "in the JWKS, verifies only: a later key signs; leaves when the last token it signed has expired"
	case Expired:
		return "out of the JWKS: every token it signed has expired"
	case Retired:
		return "retired: out of the JWKS, verifies nothing"
	}
	return string(s.State)
}

// activation is when rec starts to sign.
func activation(rec store.SigningKey) time.Time {
	if rec.ActivatesAt.IsZero() {
		return rec.CreatedAt
	}
	return rec.ActivatesAt
}

// Plan works out every key's state at now. keep is how long a key stays in the JWKS after it
// stopped signing: the longest life of a token it can have signed, plus leeway.
//
// The rules: retired keys take no part. The others sign in the order of their activation times
// (then creation, then kid), each until the next one's activation (or its SignedUntil, a time
// written by rotations before activation times existed, if earlier), so at most one key signs
// at any moment. A key is published from its creation until keep after it stopped signing.
func Plan(recs []store.SigningKey, now time.Time, keep time.Duration) []Status {
	live := make([]store.SigningKey, 0, len(recs))
	out := make([]Status, 0, len(recs))
	for _, r := range recs {
		if !r.RetiredAt.IsZero() {
			out = append(out, Status{KID: r.KID, CreatedAt: r.CreatedAt, ActivatesAt: activation(r), RetiredAt: r.RetiredAt,
				VerifiesUntil: r.RetiredAt, State: Retired})
			continue
		}
		live = append(live, r)
	}
	sort.SliceStable(live, func(i, j int) bool {
		ai, aj := activation(live[i]), activation(live[j])
		if !ai.Equal(aj) {
			return ai.Before(aj)
		}
		if !live[i].CreatedAt.Equal(live[j].CreatedAt) {
			return live[i].CreatedAt.Before(live[j].CreatedAt)
		}
		return live[i].KID < live[j].KID
	})
	for i, r := range live {
		st := Status{KID: r.KID, CreatedAt: r.CreatedAt, ActivatesAt: activation(r)}
		if i+1 < len(live) {
			st.SignsUntil = activation(live[i+1])
		}
		if !r.SignedUntil.IsZero() && (st.SignsUntil.IsZero() || r.SignedUntil.Before(st.SignsUntil)) {
			st.SignsUntil = r.SignedUntil
		}
		if !st.SignsUntil.IsZero() {
			st.VerifiesUntil = st.SignsUntil.Add(keep)
		}
		switch {
		case now.Before(st.ActivatesAt):
			st.State = Next
		case st.SignsUntil.IsZero() || now.Before(st.SignsUntil):
			st.State = Signing
		case now.Before(st.VerifiesUntil):
			st.State = Verifying
		default:
			st.State = Expired
		}
		out = append(out, st)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out
}

// nextChange is the first moment after now at which a state in ss changes (zero: none will
// without a write).
func nextChange(ss []Status, now time.Time) time.Time {
	var next time.Time
	for _, s := range ss {
		if s.State == Retired {
			continue
		}
		for _, t := range []time.Time{s.ActivatesAt, s.SignsUntil, s.VerifiesUntil} {
			if t.After(now) && (next.IsZero() || t.Before(next)) {
				next = t
			}
		}
	}
	return next
}
