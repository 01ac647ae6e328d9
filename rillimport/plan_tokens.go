package rillimport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// planTokens decides which tokens to create and, with Prune, which to revoke. Tokens never
// change in Rill (it only records their use), so a token already here with other facts is a
// conflict, not an update.
func (p *planned) planTokens(ctx context.Context, st store.Store, snap *Snapshot, opts Options, users []store.User,
	services map[string]store.Service, pruneUsers, pruneServices map[string]bool, problem func(string, ...any)) error {
	// The tokens the store holds for every owner an import can touch.
	have := map[token.ID]store.Token{}
	owners := map[string]bool{}
	for _, u := range snap.Users {
		owners[u.ID] = true
	}
	for _, s := range snap.Services {
		owners[s.ID] = true
	}
	for _, u := range users {
		if u.CreatedBy == CreatedBy {
			owners[u.ID] = true
		}
	}
	for _, s := range services {
		if s.CreatedBy == CreatedBy {
			owners[s.ID] = true
		}
	}
	for _, owner := range slices.Sorted(maps.Keys(owners)) {
		ts, err := st.ListTokens(ctx, owner)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read the store: tokens of %s: %w", owner, err)
		}
		for _, t := range ts {
			have[t.ID] = t
		}
	}
	inRill := map[token.ID]bool{}
	for _, t := range snap.Tokens {
		inRill[t.ID] = true
		old, ok := have[t.ID]
		if !ok {
			got, err := st.GetToken(ctx, t.ID)
			switch {
			case errors.Is(err, store.ErrRevoked):
				p.report.RevokedHere = append(p.report.RevokedHere, t.ID)
				continue
			case errors.Is(err, store.ErrNotFound):
				p.tokens = append(p.tokens, t)
				p.act(KindToken, OpCreate, fmt.Sprintf("%s %s of %s", t.Kind, t.ID, t.OwnerID))
				continue
			case err != nil:
				return fmt.Errorf("read the store: token %s: %w", t.ID, err)
			}
			old = got
		}
		if old.Kind != t.Kind || old.OwnerID != t.OwnerID || !old.Hash.Equal(t.Hash) || !old.ExpiresAt.Equal(t.ExpiresAt) {
			problem("token %s: the store has it with another owner, secret or expiry than Rill (%s of %s here, %s of %s in Rill)",
				t.ID, old.Kind, old.OwnerID, t.Kind, t.OwnerID)
			continue
		}
		p.report.Counts[KindToken].Unchanged++
	}
	if !opts.Prune {
		return nil
	}
	for _, id := range slices.SortedFunc(maps.Keys(have), func(a, b token.ID) int { return bytes.Compare(a[:], b[:]) }) {
		t := have[id]
		switch {
		case pruneUsers[t.OwnerID] || pruneServices[t.OwnerID]:
			// Revoked with its owner, whoever issued it.
			p.act(KindToken, OpPrune, fmt.Sprintf("%s %s of %s (with its owner)", t.Kind, t.ID, t.OwnerID))
		case t.CreatedBy == CreatedBy && !inRill[t.ID]:
			p.pruneTokens = append(p.pruneTokens, t)
			p.act(KindToken, OpPrune, fmt.Sprintf("%s %s of %s", t.Kind, t.ID, t.OwnerID))
		}
	}
	return nil
}

// orderWrites orders ws so that each one's key is free (ready) when it runs, given what
// earlier ones free and take (done); it returns those it could not order.
func orderWrites[W any](ws []W, ready func(W) bool, done func(W)) (ordered, stuck []W) {
	for len(ws) > 0 {
		var rest []W
		for _, w := range ws {
			if ready(w) {
				done(w)
				ordered = append(ordered, w)
			} else {
				rest = append(rest, w)
			}
		}
		if len(rest) == len(ws) {
			return ordered, rest
		}
		ws = rest
	}
	return ordered, nil
}

func sortedServices(m map[string]store.Service) []store.Service {
	out := slices.Collect(maps.Values(m))
	sort.Slice(out, func(i, j int) bool { return out[i].Org+"/"+out[i].Name < out[j].Org+"/"+out[j].Name })
	return out
}
