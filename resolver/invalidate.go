package resolver

import (
	"context"
	"errors"
	"time"

	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// apply drops what each change can affect, and nothing else (store.Change says what each
// names): a token's revocation that token; a user or service change that owner's tokens and
// the JWTs it issued; a token's put (new constraints) that token; a project change our JWTs for that project (their audience) and every
// memoized decision about it; a signing-key change the keys and our JWTs verified with them.
// A new token or org affects nothing cached. A reset drops nothing: every entry is re-checked
// against the store on its next use (see recheck).
func (r *Resolver) apply(cs []store.Change) {
	for _, c := range cs {
		switch {
		case c.IsReset():
			if r.keys != nil {
				r.keys.Invalidate()
			}
			r.cache.reset(r.now())
		case c.Kind == store.ChangeToken:
			// A delete revokes the token; a put of a token already cached changed it (its
			// constraints: store.SetTokenLimits). A new token is in no cache: dropping it costs
			// a map lookup.
			if id, err := token.ParseID(c.ID); err == nil { // else no bearer token names it
				r.cache.drop(id)
			}
		case c.Kind == store.ChangeUser || c.Kind == store.ChangeService:
			if ids := r.cache.dropDep(dep{depOwner, c.ID}); len(ids) > 0 && c.Op == store.OpPut {
				select {
				case r.refresh <- ids:
				default: // best effort: they are read on their next check instead
				}
			}
		case c.Kind == store.ChangeProject:
			if org, project, ok := c.ProjectOf(); ok {
				r.cache.dropProject(org, project)
			} else {
				r.cache.invalidate()
			}
		case c.Kind == store.ChangeKey:
			if r.keys != nil {
				r.keys.Invalidate()
			}
			r.cache.dropDep(dep{kind: depKeys})
		case c.Kind == store.ChangeOrg:
			// Orgs are only created, and no decision reads the org record.
		default:
			r.cache.invalidate() // a kind this resolver does not know: drop everything
		}
	}
}

// refreshBatch bounds the tokens of one owner change read again ahead of their next check.
const refreshBatch = 1024

// refreshLoop reads again, off the check path, the tokens a changed owner had cached, so they
// are cached again, as the store now says, before their next check: a store that becomes
// unreachable right after an owner's change does not cost that owner its cached principal.
func (r *Resolver) refreshLoop() {
	defer r.bg.Done()
	for {
		select {
		case <-r.stop:
			return
		case ids := <-r.refresh:
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			// One read of the owner for all its tokens (all of one owner's kind and id).
			gen, epoch := r.cache.gen.Load(), r.cache.epoch.Load()
			owners := map[string]*policy.Principal{}
			for i, id := range ids {
				if i == refreshBatch || ctx.Err() != nil {
					break
				}
				if _, err := r.loadAt(ctx, id, gen, epoch, owners); err != nil && !IsAuthError(err) {
					break // the store is failing: leave the rest to their checks
				}
			}
			cancel()
		}
	}
}

// recheck re-reads a token cached before a reset. A refusal (revoked, unknown, owner gone)
// holds at once; a store that cannot be reached leaves the old entry answered as it was, for
// MaxStaleness after the reset, trying again every RecheckInterval (and reading, meanwhile, only
// the token's check facts, which the engines keep in memory, so a revocation still counts).
func (r *Resolver) recheck(ctx context.Context, id token.ID, old *entry) (*entry, error) {
	now := r.now()
	if !r.mayServeStale(now) {
		return r.load(ctx, id)
	}
	if now.UnixNano() < old.retry.Load() {
		if _, err := r.st.TokenAuth(ctx, id); errors.Is(err, store.ErrRevoked) {
			return nil, ErrRevoked
		} else if errors.Is(err, store.ErrNotFound) {
			return nil, ErrUnknown
		}
		r.cache.staleServed.Add(1)
		return old, nil
	}
	r.cache.rechecks.Add(1)
	e, err := r.load(ctx, id)
	if err == nil || IsAuthError(err) {
		if err != nil {
			r.cache.drop(id)
		}
		return e, err
	}
	old.retry.Store(now.Add(r.opts.RecheckInterval).UnixNano())
	r.log.Warn("re-checking a cached token after a store reset failed; answering as before", "token_id", id.String(), "err", err)
	r.cache.staleServed.Add(1)
	return old, nil
}

// mayServeStale reports whether an entry from before the last reset may still be answered
// when its re-check cannot reach the store.
func (r *Resolver) mayServeStale(now time.Time) bool {
	limit := time.Duration(r.maxStale.Load())
	return limit > 0 && now.Sub(time.Unix(0, r.cache.resetAt.Load())) <= limit
}
