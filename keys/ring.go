package keys

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// Store is the part of the store the keys live in: keys need no more, so any engine (or a
// wrapper) will do.
type Store interface {
	PutSigningKey(ctx context.Context, k store.SigningKey) error
	ListSigningKeys(ctx context.Context) ([]store.SigningKey, error)
}

// Options configures a Ring.
type Options struct {
	// MaxTTL is the longest life of a token a key signs (default 24h): a key that stopped
	// signing keeps verifying, and stays in the JWKS, for MaxTTL plus token.Leeway.
	MaxTTL time.Duration
	// ActivationDelay is how long a rotated-in key is published before it signs (Rotate
	// without now); 0: at once. Longer than verifiers' JWKS refetch interval (the Rill
	// runtime's is 5 minutes), no verifier that cached the JWKS before a rotation meets an
	// unknown kid.
	ActivationDelay time.Duration
	Now             func() time.Time
}

// Ring is the signing keys of one store, loaded once and cached until Invalidate (the resolver
// calls it on the store's signing-key changes, so other replicas' writes show too) or until the
// next moment a key's state changes by the clock (an activation, or a key leaving the JWKS).
// Which key signs is decided from the stored times alone, so replicas agree without a timer of
// their own. It is safe for concurrent use.
type Ring struct {
	st     Store
	maxTTL time.Duration
	delay  time.Duration
	now    func() time.Time
	cur    atomic.Pointer[snapshot]
	gen    atomic.Uint64 // bumped by Invalidate, so a load that raced a change is not kept
	write  sync.Mutex    // serialises Ensure, Rotate and Retire of this replica
}

// snapshot is a loaded keyset and the moment it must be worked out again.
type snapshot struct {
	ks    *Keyset
	until time.Time // zero: good until the next change
}

// NewRing returns the ring of st's keys.
func NewRing(st Store, o Options) *Ring {
	if o.MaxTTL == 0 {
		o.MaxTTL = 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Ring{st: st, maxTTL: o.MaxTTL, delay: max(o.ActivationDelay, 0), now: o.Now}
}

// Invalidate drops the cached keyset; the next use reloads it from the store.
func (r *Ring) Invalidate() {
	r.gen.Add(1)
	r.cur.Store(nil)
}

// keep is how long a key stays published after it stopped signing.
func (r *Ring) keep() time.Duration { return r.maxTTL + token.Leeway }

// Keyset returns the published keys (Plan) and the one that signs now.
func (r *Ring) Keyset(ctx context.Context) (*Keyset, error) {
	old := r.cur.Load()
	if old != nil && (old.until.IsZero() || r.now().Before(old.until)) {
		return old.ks, nil
	}
	gen := r.gen.Load()
	recs, err := r.st.ListSigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	s, err := r.build(recs)
	if err != nil {
		return nil, err
	}
	if r.cur.CompareAndSwap(old, s) && r.gen.Load() != gen {
		r.cur.CompareAndSwap(s, nil) // a change landed while we read: do not keep what may predate it
	}
	return s.ks, nil
}

func (r *Ring) build(recs []store.SigningKey) (*snapshot, error) {
	now := r.now()
	plan := Plan(recs, now, r.keep())
	byKID := make(map[string]*Key, len(recs))
	for _, rec := range recs {
		if st := statusOf(plan, rec.KID); !st.Published() {
			continue // retired or expired: not even parsed
		}
		k, err := FromRecord(rec)
		if err != nil {
			return nil, err
		}
		byKID[k.KID] = &k
	}
	return &snapshot{ks: fromPlan(plan, byKID), until: nextChange(plan, now)}, nil
}

func statusOf(plan []Status, kid string) Status {
	for _, s := range plan {
		if s.KID == kid {
			return s
		}
	}
	return Status{}
}

// Status lists every key in the store and its state now, oldest first, read afresh.
func (r *Ring) Status(ctx context.Context) ([]Status, error) {
	recs, err := r.st.ListSigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	return Plan(recs, r.now(), r.keep()), nil
}

// Ensure creates a key that signs at once if no key signs now.
func (r *Ring) Ensure(ctx context.Context) (created bool, err error) {
	r.write.Lock()
	defer r.write.Unlock()
	recs, err := r.st.ListSigningKeys(ctx)
	if err != nil {
		return false, fmt.Errorf("ensure signing key: %w", err)
	}
	for _, st := range Plan(recs, r.now(), r.keep()) {
		if st.State == Signing {
			return false, nil
		}
	}
	if _, err := r.add(ctx, r.now().UTC(), time.Time{}); err != nil {
		return false, fmt.Errorf("ensure signing key: %w", err)
	}
	return true, nil
}

// Errors of Rotate and Retire that are the caller's to fix.
var (
	// ErrRotationPending: a rotated-in key is waiting for its activation; another scheduled
	// rotation would only push it back.
	ErrRotationPending = errors.New("a rotation is already scheduled")
	// ErrKeySigns: the key signs new tokens now, so retiring it would leave none that signs.
	ErrKeySigns = errors.New("the key signs new tokens now")
	// ErrUnknownKey: no key has that kid.
	ErrUnknownKey = errors.New("no signing key has that kid")
)

// Rotation names the new key, when it signs, the key it takes over from, and the scheduled keys
// an immediate rotation retired.
type Rotation struct {
	KID         string
	ActivatesAt time.Time
	Replaces    string   // the key that signed at the rotation ("" without one)
	Retired     []string // never nil
}

// Rotate adds a key. Scheduled (now false): it is published at once and signs after the ring's
// ActivationDelay; the key that signs keeps signing until then, and verifying until its tokens
// expired. Immediate (now true), for a key that must stop signing at once: the new key signs at
// once, and any scheduled key, which has signed nothing, is retired with it. A scheduled
// rotation while another waits is refused (ErrRotationPending).
func (r *Ring) Rotate(ctx context.Context, now bool) (Rotation, error) {
	r.write.Lock()
	defer r.write.Unlock()
	recs, err := r.st.ListSigningKeys(ctx)
	if err != nil {
		return Rotation{}, fmt.Errorf("rotate signing key: %w", err)
	}
	at := r.now().UTC()
	plan := Plan(recs, at, r.keep())
	rot := Rotation{Retired: []string{}}
	var pending []Status
	for _, st := range plan {
		switch st.State {
		case Signing:
			rot.Replaces = st.KID
		case Next:
			pending = append(pending, st)
		}
	}
	activates := time.Time{}
	if !now && r.delay > 0 {
		if len(pending) > 0 {
			p := pending[len(pending)-1]
			return Rotation{}, fmt.Errorf("%w: key %s signs from %s; rotate again after that, or now with --now", ErrRotationPending,
				p.KID, p.ActivatesAt.UTC().Format(time.RFC3339))
		}
		activates = at.Add(r.delay)
	}
	// The new key first: a crash before the retires below leaves a key that signs, never none.
	k, err := r.add(ctx, at, activates)
	if err != nil {
		return Rotation{}, fmt.Errorf("rotate signing key: %w", err)
	}
	rot.KID, rot.ActivatesAt = k.KID, activation(store.SigningKey{CreatedAt: k.CreatedAt, ActivatesAt: k.ActivatesAt})
	if now {
		for _, p := range pending {
			if err := r.retire(ctx, recs, p.KID, at); err != nil {
				return Rotation{}, fmt.Errorf("rotate signing key: retire the scheduled key %s: %w", p.KID, err)
			}
			rot.Retired = append(rot.Retired, p.KID)
		}
	}
	r.Invalidate()
	return rot, nil
}

// Retire takes a key out of the JWKS at once: tokens it signed are refused from then on (here
// at once; by a verifier once it refetches the JWKS). The key that signs now cannot be retired
// (ErrKeySigns): rotate with now first, so that another key signs, then retire it. Retiring a
// retired key changes nothing. It returns the key's status after.
func (r *Ring) Retire(ctx context.Context, kid string) (Status, error) {
	r.write.Lock()
	defer r.write.Unlock()
	recs, err := r.st.ListSigningKeys(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("retire signing key: %w", err)
	}
	at := r.now().UTC()
	st := statusOf(Plan(recs, at, r.keep()), kid)
	switch st.State {
	case "":
		return Status{}, fmt.Errorf("%w: %q", ErrUnknownKey, kid)
	case Retired:
		return st, nil
	case Signing:
		return Status{}, fmt.Errorf("%w: key %s would leave no key that signs; make another key sign first "+
			"(rillctl admin rotate-signing-key --now), then retire it", ErrKeySigns, kid)
	}
	if err := r.retire(ctx, recs, kid, at); err != nil {
		return Status{}, fmt.Errorf("retire signing key %s: %w", kid, err)
	}
	r.Invalidate()
	st.State, st.RetiredAt, st.VerifiesUntil = Retired, at, at
	return st, nil
}

func (r *Ring) retire(ctx context.Context, recs []store.SigningKey, kid string, at time.Time) error {
	for _, rec := range recs {
		if rec.KID == kid {
			rec.RetiredAt = at
			return r.st.PutSigningKey(ctx, rec)
		}
	}
	return fmt.Errorf("%w: %q", ErrUnknownKey, kid)
}

// add generates a key created at now that signs from activates (zero: at once) and stores it;
// it drops the cache itself so the ring's own writes show even where no change feed
// invalidates it.
func (r *Ring) add(ctx context.Context, now, activates time.Time) (Key, error) {
	k, err := Generate(now)
	if err != nil {
		return Key{}, err
	}
	k.ActivatesAt = activates
	rec, err := k.Record()
	if err != nil {
		return Key{}, err
	}
	if err := r.st.PutSigningKey(ctx, rec); err != nil {
		return Key{}, err
	}
	r.Invalidate()
	return k, nil
}
