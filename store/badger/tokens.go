package badger

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	bdg "github.com/dgraph-io/badger/v4"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

func (s *DB) CreateToken(ctx context.Context, t store.Token) error {
	return s.CreateTokenCapped(ctx, t, 0)
}

// CreateTokenCapped implements store.Store. The owner's live tokens are counted from the token
// index, which holding wmu is exactly the committed state; expired tokens do not count.
func (s *DB) CreateTokenCapped(ctx context.Context, t store.Token, max int) error {
	if err := store.CheckFields("token "+t.ID.String(), t); err != nil {
		return fmt.Errorf("create token: %w", err)
	}
	err := s.write(ctx, func(w *wtxn) error {
		if ok, err := exists(w.Txn, ownerKey(t.Kind, t.OwnerID)); err != nil || !ok {
			return orNotFound(err, "token owner %s", t.OwnerID)
		}
		if max > 0 {
			live := 0
			for _, id := range s.idx.Owned(t.Kind, t.OwnerID) {
				if ta, ok := s.idx.Get(id); ok && (ta.ExpiresAt.IsZero() || ta.ExpiresAt.After(w.now)) {
					live++
				}
			}
			if live >= max {
				return fmt.Errorf("owner %s holds %d live tokens, the most allowed: %w", t.OwnerID, max, store.ErrTooManyTokens)
			}
		}
		if err := addToken(w, &t); err != nil {
			return err
		}
		return addTokenCount(w.Txn, t.Kind, 1)
	})
	if err != nil {
		return fmt.Errorf("create token: %w", err)
	}
	return nil
}

// CreateMagicTokenCapped implements store.Store. The project's live public URLs come from the
// token index; their creators from the records, read only when the project holds at least
// perCreator (fewer cannot put one creator at the cap), so the reads are bounded by perProject.
func (s *DB) CreateMagicTokenCapped(ctx context.Context, t store.Token, perCreator, perProject int) error {
	if t.Kind != token.Magic {
		return fmt.Errorf("create public URL %s: a %s token: %w", t.ID, t.Kind, store.ErrInvalid)
	}
	if err := store.CheckFields("token "+t.ID.String(), t); err != nil {
		return fmt.Errorf("create token: %w", err)
	}
	err := s.write(ctx, func(w *wtxn) error {
		if ok, err := exists(w.Txn, ownerKey(t.Kind, t.OwnerID)); err != nil || !ok {
			return orNotFound(err, "token owner %s", t.OwnerID)
		}
		var live []token.ID
		for _, id := range s.idx.Owned(t.Kind, t.OwnerID) {
			if ta, ok := s.idx.Get(id); ok && (ta.ExpiresAt.IsZero() || ta.ExpiresAt.After(w.now)) {
				live = append(live, id)
			}
		}
		if perProject > 0 && len(live) >= perProject {
			return fmt.Errorf("project %s holds %d live public URLs, the most allowed: %w", t.OwnerID, perProject, store.ErrProjectFull)
		}
		if perCreator > 0 && len(live) >= perCreator {
			mine := 0
			for _, id := range live {
				var o store.Token
				if err := getToken(w.Txn, id, &o); err != nil {
					if errors.Is(err, store.ErrNotFound) {
						continue
					}
					return err
				}
				if o.CreatedBy == t.CreatedBy {
					mine++
				}
			}
			if mine >= perCreator {
				return fmt.Errorf("%s holds %d live public URLs of project %s, the most allowed: %w", t.CreatedBy, perCreator, t.OwnerID, store.ErrTooManyTokens)
			}
		}
		if err := addToken(w, &t); err != nil {
			return err
		}
		return addTokenCount(w.Txn, t.Kind, 1)
	})
	if err != nil {
		return fmt.Errorf("create token: %w", err)
	}
	return nil
}

// ownerKey is the record key of a token's owner.
func ownerKey(k token.Kind, owner string) string {
	switch k {
	case token.Service:
		return pService + owner
	case token.Magic: // a magic token's owner is its project (store.MagicOwner)
		return pProject + owner
	}
	return pUser + owner
}

// addToken writes a new token record and its owner index entry; the caller keeps the counts.
func addToken(w *wtxn, t *store.Token) error {
	id := t.ID.String()
	if ok, err := exists(w.Txn, pToken+id); err != nil || ok {
		return orConflict(err, "token %s", id)
	}
	if err := w.Set([]byte(pTokOwner+t.OwnerID+"/"+id), nil); err != nil {
		return err
	}
	if err := setIssuerKey(w.Txn, t); err != nil {
		return err
	}
	if err := putToken(w.Txn, t); err != nil {
		return err
	}
	return w.tokenAdded(*t)
}

// deleteTokenKeys deletes a token record and its owner index entry and leaves a tombstone
// saying why, with its change; the caller keeps the counts.
func deleteTokenKeys(w *wtxn, id token.ID, owner, why string) error {
	if err := removeToken(w, id, owner, why); err != nil {
		return err
	}
	return w.tokenRemoved(id)
}

// removeToken is deleteTokenKeys without the change: for the tokens of a deleted owner, which
// its own delete revokes.
func removeToken(w *wtxn, id token.ID, owner, why string) error {
	sid := id.String()
	if err := w.Delete([]byte(pTokOwner + owner + "/" + sid)); err != nil {
		return err
	}
	if err := tombstone(w.Txn, sid, why); err != nil {
		return err
	}
	return w.Delete([]byte(pToken + sid))
}

// ownedTokenID is the token id that ends k, a key of owner's token index (pTokOwner<owner>/<id>).
func ownedTokenID(k []byte, owner string) (token.ID, error) {
	id, err := token.ParseID(strings.TrimPrefix(string(k), pTokOwner+owner+"/"))
	if err != nil {
		return id, fmt.Errorf("%w: owner index key %q: %w", errCorrupt, k, err)
	}
	return id, nil
}

// Compact merges the LSM tree into one level, so reads look in few tables. Run it after a large
// ImportTokens; Badger's background compaction gets there too, only later.
func (s *DB) Compact() error {
	if err := s.db.Flatten(2); err != nil {
		return fmt.Errorf("compact store: %w", err)
	}
	return nil
}

// importBatch bounds the records of one import transaction (a variable for tests).
var importBatch = 10_000

// ImportTokens stores many token records in few transactions: every owner is checked first,
// then the records are written in batches that each commit atomically. It is for bulk loads
// (migrations, benchmarks); a failure part-way leaves the earlier batches in place and says how
// many were written.
func (s *DB) ImportTokens(ctx context.Context, ts []store.Token) error {
	for i := range ts {
		if err := store.CheckFields("token "+ts[i].ID.String(), ts[i]); err != nil {
			return fmt.Errorf("import tokens: %w", err)
		}
	}
	owners := map[string]bool{}
	err := s.view(func(txn *bdg.Txn) error {
		for _, t := range ts {
			owner := ownerKey(t.Kind, t.OwnerID)
			if owners[owner] {
				continue
			}
			if ok, err := exists(txn, owner); err != nil || !ok {
				return orNotFound(err, "token owner %s", t.OwnerID)
			}
			owners[owner] = true
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("import tokens: %w", err)
	}
	written := 0
	batch := importBatch
	for written < len(ts) {
		end := min(written+batch, len(ts))
		err := s.importOnce(ctx, ts[written:end])
		if errors.Is(err, bdg.ErrTxnTooBig) && batch > 1 {
			batch /= 2 // too much for one transaction: retry this part in halves
			continue
		}
		if err != nil {
			return fmt.Errorf("import tokens: %d of %d written: %w", written, len(ts), err)
		}
		written = end
	}
	return nil
}

// importOnce writes ts in one transaction. It holds wmu for that batch only, so tokens can be
// issued and revoked between the batches of a long import.
func (s *DB) importOnce(ctx context.Context, ts []store.Token) error {
	return s.write(ctx, func(w *wtxn) error {
		added := map[token.Kind]int64{}
		for i := range ts {
			if err := addToken(w, &ts[i]); err != nil {
				return err
			}
			added[ts[i].Kind]++
		}
		for k, c := range added {
			if err := addTokenCount(w.Txn, k, c); err != nil {
				return err
			}
		}
		return nil
	})
}

// GetToken returns the token, or an error wrapping ErrRevoked (for a tombstoned token) or
// ErrNotFound.
func (s *DB) GetToken(_ context.Context, id token.ID) (store.Token, error) {
	var t store.Token
	if why, ok := s.dying.get(id); ok {
		return t, fmt.Errorf("get token %s: %s: %w", id, why, store.ErrRevoked)
	}
	err := s.view(func(txn *bdg.Txn) error {
		err := getToken(txn, id, &t)
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		why, terr := getString(txn, pRevoked+id.String())
		if terr == nil {
			return fmt.Errorf("%s: %w", why, store.ErrRevoked)
		}
		return err
	})
	if err != nil {
		return t, fmt.Errorf("get token %s: %w", id, err)
	}
	return t, nil
}

func (s *DB) ListTokens(_ context.Context, owner string) ([]store.Token, error) {
	var out []store.Token
	err := s.view(func(txn *bdg.Txn) error {
		if ok, err := exists(txn, pPurge+owner); err != nil || ok {
			return err // a deleted owner whose tokens are being purged has none
		}
		return scan(txn, pTokOwner+owner+"/", func(k, _ []byte) error {
			id, err := ownedTokenID(k, owner)
			if err != nil {
				return err
			}
			var t store.Token
			if err := getToken(txn, id, &t); err != nil {
				return fmt.Errorf("token of %s: %w", owner, err)
			}
			out = append(out, t)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, err
}

func (s *DB) DeleteToken(ctx context.Context, id token.ID) error {
	err := s.write(ctx, func(w *wtxn) error {
		var t store.Token
		if err := getToken(w.Txn, id, &t); err != nil {
			return fmt.Errorf("token %s: %w", id, err)
		}
		if err := deleteTokenKeys(w, id, t.OwnerID, "revoked"); err != nil {
			return err
		}
		if err := dropIssuerKey(w.Txn, &t); err != nil {
			return err
		}
		return addTokenCount(w.Txn, t.Kind, -1)
	})
	if err != nil {
		return fmt.Errorf("delete token: %w", err)
	}
	return nil
}

// SetTokenLimits implements store.Store.
func (s *DB) SetTokenLimits(ctx context.Context, id token.ID, networks, origins []string) (store.Token, error) {
	var t store.Token
	err := s.write(ctx, func(w *wtxn) error {
		if why, ok := s.dying.get(id); ok {
			return fmt.Errorf("token %s: %s: %w", id, why, store.ErrRevoked)
		}
		if err := getToken(w.Txn, id, &t); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				if why, err := getString(w.Txn, pRevoked+id.String()); err == nil {
					return fmt.Errorf("token %s: %s: %w", id, why, store.ErrRevoked)
				}
			}
			return fmt.Errorf("token %s: %w", id, err)
		}
		t.AllowedNetworks, t.AllowedOrigins = networks, origins
		if err := store.CheckFields("token "+id.String(), &t); err != nil {
			return err
		}
		if err := putToken(w.Txn, &t); err != nil {
			return err
		}
		return w.tokenAdded(t)
	})
	if err != nil {
		return store.Token{}, fmt.Errorf("set token limits: %w", err)
	}
	return t, nil
}

// TokenAuth returns what a check needs of a live token, from memory. The index holds every live
// token, so for one it lacks only the tombstone is read, to say whether it was revoked or never
// existed.
func (s *DB) TokenAuth(_ context.Context, id token.ID) (store.TokenAuth, error) {
	if t, ok := s.idx.Get(id); ok {
		return t, nil
	}
	if why, ok := s.dying.get(id); ok {
		return store.TokenAuth{}, fmt.Errorf("get token %s: %s: %w", id, why, store.ErrRevoked)
	}
	err := s.view(func(txn *bdg.Txn) error {
		why, err := getString(txn, pRevoked+id.String())
		if err == nil {
			return fmt.Errorf("%s: %w", why, store.ErrRevoked)
		}
		return err
	})
	return store.TokenAuth{}, fmt.Errorf("get token %s: %w", id, err)
}

// TouchTokens implements store.CheckReader.
func (s *DB) TouchTokens(ctx context.Context, used map[token.ID]time.Time) error {
	uses := make(map[token.ID]store.TokenUse, len(used))
	for id, at := range used {
		uses[id] = store.TokenUse{At: at}
	}
	return s.RecordUses(ctx, uses)
}

// RecordUses implements store.CheckReader. It holds wmu like every other writer of token
// records: otherwise its writes conflict with a revoke's transaction, which can then fail.
func (s *DB) RecordUses(ctx context.Context, uses map[token.ID]store.TokenUse) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.update(ctx, func(txn *bdg.Txn) error {
		for id, u := range uses {
			var t store.Token
			err := getToken(txn, id, &t)
			if errors.Is(err, store.ErrNotFound) {
				continue // revoked since it was used
			}
			if err != nil {
				return err
			}
			if u.At.After(t.LastUsedAt) {
				t.LastUsedAt = u.At
				if u.HasWhere() {
					u = u.Clean()
					t.LastUsedIP, t.LastUsedUserAgent = u.IP, u.UserAgent
				}
				if err := putToken(txn, &t); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// setIssuerKey indexes a token that represents its owner under its issuer (store.Token.IssuedBy),
// for ListIssuedTokens and the issuer's delete. The tokens of a deleted owner leave their issuer
// keys behind (the purge does not read each record): readers of the index skip them, and the
// issuer's delete drops them.
func setIssuerKey(txn *bdg.Txn, t *store.Token) error {
	if t.IssuedBy == "" {
		return nil
	}
	return txn.Set([]byte(pTokIssuer+t.IssuedBy+"/"+t.ID.String()), nil)
}

// dropIssuerKey deletes t's entry in the issuer index, if it has one: for the deletes that read
// the record anyway (revoke, expiry purge).
func dropIssuerKey(txn *bdg.Txn, t *store.Token) error {
	if t.IssuedBy == "" {
		return nil
	}
	return txn.Delete([]byte(pTokIssuer + t.IssuedBy + "/" + t.ID.String()))
}

// issuedTokens lists the ids under issuer in the issuer index, live or not.
func issuedTokens(txn *bdg.Txn, issuer string) ([]token.ID, error) {
	var ids []token.ID
	pre := pTokIssuer + issuer + "/"
	err := scan(txn, pre, func(k, _ []byte) error {
		id, err := token.ParseID(strings.TrimPrefix(string(k), pre))
		if err != nil {
			return fmt.Errorf("%w: issuer index key %q: %w", errCorrupt, k, err)
		}
		ids = append(ids, id)
		return nil
	})
	return ids, err
}

// ListIssuedTokens implements store.Store.
func (s *DB) ListIssuedTokens(_ context.Context, issuer string) ([]store.Token, error) {
	if issuer == "" {
		return nil, nil
	}
	var out []store.Token
	err := s.view(func(txn *bdg.Txn) error {
		ids, err := issuedTokens(txn, issuer)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if _, dying := s.dying.get(id); dying {
				continue
			}
			var t store.Token
			err := getToken(txn, id, &t)
			if errors.Is(err, store.ErrNotFound) {
				continue // revoked with its owner: a key left behind
			}
			if err != nil {
				return fmt.Errorf("token issued by %s: %w", issuer, err)
			}
			if ok, err := exists(txn, pPurge+t.OwnerID); err != nil || ok {
				if err != nil {
					return err
				}
				continue
			}
			out = append(out, t)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list tokens issued by %s: %w", issuer, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}

// deleteIssuedTokens revokes, inside w, the tokens issuer issued to act as others (each with its
// own change) and clears the issuer's index, for the issuer's delete.
func deleteIssuedTokens(w *wtxn, issuer string) error {
	ids, err := issuedTokens(w.Txn, issuer)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := w.Delete([]byte(pTokIssuer + issuer + "/" + id.String())); err != nil {
			return err
		}
		var t store.Token
		err := getToken(w.Txn, id, &t)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("token issued by %s: %w", issuer, err)
		}
		if err := deleteTokenKeys(w, id, t.OwnerID, "issuer deleted"); err != nil {
			return err
		}
		if err := addTokenCount(w.Txn, t.Kind, -1); err != nil {
			return err
		}
	}
	return nil
}
