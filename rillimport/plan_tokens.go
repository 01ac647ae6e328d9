package rillimport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

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
	for _, p := range snap.Projects { // the owners of magic tokens (public URLs)
		owners[store.MagicOwner(p.Org, p.Name)] = true
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
	if opts.Prune {
		// Projects are never pruned, so a project Rill deleted is still here: its imported
		// public URLs must go all the same.
		orgs, err := st.ListOrgs(ctx)
		if err != nil {
			return fmt.Errorf("read the store: orgs: %w", err)
		}
		for _, o := range orgs {
			ps, err := st.ListProjects(ctx, o.Name)
			if err != nil {
				return fmt.Errorf("read the store: projects of %s: %w", o.Name, err)
			}
			for _, p := range ps {
				owners[store.MagicOwner(p.Org, p.Name)] = true
			}
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
	// The ledger of what earlier imports brought: one of those the store no longer has was
	// revoked here, however long ago (its tombstone may be gone).
	ledger := map[token.ID]bool{}
	if l, ok := st.(store.ImportLedger); ok {
		entries, err := l.ImportedTokens(ctx)
		if err != nil {
			return fmt.Errorf("read the store: %w", err)
		}
		for _, e := range entries {
			ledger[e.ID] = true
		}
	}
	name := ownerNames(snap, users, services)
	inRill := map[token.ID]bool{}
	for _, t := range snap.Tokens {
		inRill[t.ID] = true
		old, ok := have[t.ID]
		if !ok {
			got, err := st.GetToken(ctx, t.ID)
			switch {
			case errors.Is(err, store.ErrRevoked), errors.Is(err, store.ErrNotFound) && ledger[t.ID]:
				p.report.RevokedHere = append(p.report.RevokedHere, t.ID)
				p.imported = append(p.imported, t.ID)
				continue
			case errors.Is(err, store.ErrNotFound):
				p.tokens = append(p.tokens, t)
				p.imported = append(p.imported, t.ID)
				p.act(KindToken, OpCreate, tokenWhat(t, name))
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
		if old.CreatedBy == CreatedBy {
			p.imported = append(p.imported, t.ID)
		}
	}
	if !opts.Prune {
		return nil
	}
	for _, id := range slices.SortedFunc(maps.Keys(have), func(a, b token.ID) int { return bytes.Compare(a[:], b[:]) }) {
		t := have[id]
		switch {
		case pruneUsers[t.OwnerID] || pruneServices[t.OwnerID]:
			// Revoked with its owner, whoever issued it.
			p.act(KindToken, OpPrune, tokenWhat(t, name)+" (with its owner)")
		case t.CreatedBy == CreatedBy && !inRill[t.ID]:
			p.pruneTokens = append(p.pruneTokens, t)
			p.act(KindToken, OpPrune, tokenWhat(t, name))
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

// ownerNames names every owner a token of the import can have, by id: a user by email, a
// service as org/name, from Rill's snapshot first, then from the store.
func ownerNames(snap *Snapshot, users []store.User, services map[string]store.Service) map[string]string {
	name := map[string]string{}
	for _, u := range users {
		name[u.ID] = u.Email
	}
	for _, s := range services {
		name[s.ID] = "service " + s.Org + "/" + s.Name
	}
	for _, u := range snap.Users {
		name[u.ID] = u.Email
	}
	for _, s := range snap.Services {
		name[s.ID] = "service " + s.Org + "/" + s.Name
	}
	return name
}

// tokenWhat names a token in a report by its id and whose it is ("0046… of ada@acme.test",
// "7288… of service acme/ci"), so that a report says whose tokens change.
func tokenWhat(t store.Token, name map[string]string) string {
	owner := name[t.OwnerID]
	if owner == "" {
		owner = ownerWord(t.Kind) + " " + t.OwnerID
	}
	return fmt.Sprintf("%s of %s", t.ID, owner)
}

// markImported records the import's tokens in the store's ledger (see store.ImportLedger).
func (p *planned) markImported(ctx context.Context, st store.Store) error {
	l, ok := st.(store.ImportLedger)
	if !ok || len(p.imported) == 0 {
		return nil
	}
	if err := l.MarkImported(ctx, p.imported, time.Now().UTC()); err != nil {
		return fmt.Errorf("record the imported tokens: %w", err)
	}
	return nil
}
