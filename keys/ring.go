package keys

import (
	"context"
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
	// MaxTTL is the longest life of a token a key signs (default 24h): a retired key keeps
	// verifying, and stays in the JWKS, for MaxTTL plus token.Leeway after it retired.
	MaxTTL time.Duration
	Now    func() time.Time
}

// Ring is the signing keys of one store, loaded once and cached until Invalidate (the resolver
// calls it on the store's signing-key changes, so other replicas' writes show too) or until a
// retired key in it runs out its time. It is safe for concurrent use.
type Ring struct {
	st     Store
	maxTTL time.Duration
	now    func() time.Time
	cur    atomic.Pointer[snapshot]
	gen    atomic.Uint64 // bumped by Invalidate, so a load that raced a change is not kept
	write  sync.Mutex    // serialises Ensure and Rotate
}

// snapshot is a loaded keyset and the moment its oldest retired key must leave it.
type snapshot struct {
	ks    *Keyset
	until time.Time // zero: no retired key, good until the next change
}

// NewRing returns the ring of st's keys.
func NewRing(st Store, o Options) *Ring {
	if o.MaxTTL == 0 {
		o.MaxTTL = 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Ring{st: st, maxTTL: o.MaxTTL, now: o.Now}
}

// Invalidate drops the cached keyset; the next use reloads it from the store.
func (r *Ring) Invalidate() {
	r.gen.Add(1)
	r.cur.Store(nil)
}

// Keyset returns the keys that can still have live tokens: every unretired key, and each
// retired one until MaxTTL (plus leeway) after it retired.
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
	s := &snapshot{}
	keep := r.maxTTL + token.Leeway
	oldest := r.now().Add(-keep)
	var keys []Key
	for _, rec := range recs {
		if !rec.RetiredAt.IsZero() {
			if rec.RetiredAt.Before(oldest) {
				continue // every token it signed has expired
			}
			if drop := rec.RetiredAt.Add(keep); s.until.IsZero() || drop.Before(s.until) {
				s.until = drop
			}
		}
		k, err := FromRecord(rec)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	s.ks = NewKeyset(keys)
	return s, nil
}

// Ensure creates the first signing key if the store has none that signs.
func (r *Ring) Ensure(ctx context.Context) (created bool, err error) {
	r.write.Lock()
	defer r.write.Unlock()
	recs, err := r.st.ListSigningKeys(ctx)
	if err != nil {
		return false, fmt.Errorf("ensure signing key: %w", err)
	}
	for _, rec := range recs {
		if rec.RetiredAt.IsZero() {
			return false, nil
		}
	}
	if _, err := r.add(ctx, r.now()); err != nil {
		return false, fmt.Errorf("ensure signing key: %w", err)
	}
	return true, nil
}

// Rotation names the new signing key and the keys it retired.
type Rotation struct {
	KID     string
	Retired []string // never nil
}

// Rotate makes a new key sign and retires every key that signed before; those keep verifying
// until the tokens they signed have expired.
func (r *Ring) Rotate(ctx context.Context) (Rotation, error) {
	r.write.Lock()
	defer r.write.Unlock()
	recs, err := r.st.ListSigningKeys(ctx)
	if err != nil {
		return Rotation{}, fmt.Errorf("rotate signing key: %w", err)
	}
	now := r.now().UTC()
	// The new key first: a crash between the writes leaves two signing keys, never none.
	k, err := r.add(ctx, now)
	if err != nil {
		return Rotation{}, fmt.Errorf("rotate signing key: %w", err)
	}
	rot := Rotation{KID: k.KID, Retired: []string{}}
	for _, rec := range recs {
		if rec.RetiredAt.IsZero() {
			rec.RetiredAt = now
			if err := r.st.PutSigningKey(ctx, rec); err != nil {
				return Rotation{}, fmt.Errorf("rotate signing key: retire %s: %w", rec.KID, err)
			}
			rot.Retired = append(rot.Retired, rec.KID)
		}
	}
	r.Invalidate()
	return rot, nil
}

// add generates a key and stores it; it drops the cache itself so the ring's own writes show
// even where no change feed invalidates it.
func (r *Ring) add(ctx context.Context, now time.Time) (Key, error) {
	k, err := Generate(now)
	if err != nil {
		return Key{}, err
	}
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
