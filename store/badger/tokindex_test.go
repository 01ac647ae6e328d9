package badger

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// indexAgrees fails t unless the in-memory index holds exactly the token records in Badger,
// field for field.
func indexAgrees(t *testing.T, s *DB) {
	t.Helper()
	n := 0
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pToken), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var rec store.Token
			if err := it.Item().Value(func(b []byte) error { return decodeToken(b, &rec) }); err != nil {
				return err
			}
			n++
			got, ok := s.idx.Get(rec.ID)
			if !ok {
				return fmt.Errorf("token %s is in Badger but not in the index", rec.ID)
			}
			want := store.TokenAuth{Kind: rec.Kind, OwnerID: rec.OwnerID, Hash: rec.Hash, ExpiresAt: rec.ExpiresAt}
			if !got.ExpiresAt.Equal(want.ExpiresAt) || got.Kind != want.Kind || got.OwnerID != want.OwnerID || got.Hash != want.Hash {
				return fmt.Errorf("token %s: index has %+v, Badger %+v", rec.ID, got, want)
			}
		}
		return nil
	})
	must(t, err)
	if l := s.idx.Len(); l != n {
		t.Fatalf("index holds %d tokens, Badger %d", l, n)
	}
}

func TestTokenIndexFollowsWrites(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir})
	must(t, err)
	must(t, s.CreateOrg(ctx, store.Org{Name: "acme"}))
	must(t, s.CreateUser(ctx, store.User{ID: "u1", Email: "a@acme.com"}))
	must(t, s.CreateUser(ctx, store.User{ID: "u2", Email: "b@acme.com"}))
	must(t, s.CreateService(ctx, store.Service{ID: "s1", Org: "acme", Name: "ci", OrgRole: "viewer"}))

	exp := time.Now().Add(time.Hour).Round(0)
	usr, rawUsr := newToken(t, token.User, "u1")
	usr.ExpiresAt = exp
	must(t, s.CreateToken(ctx, usr))
	svc, rawSvc := newToken(t, token.Service, "s1")
	must(t, s.CreateToken(ctx, svc))
	gone, rawGone := newToken(t, token.User, "u2")
	must(t, s.CreateToken(ctx, gone))
	var imported []store.Token
	for range 50 {
		tk, _ := newToken(t, token.Service, "s1")
		imported = append(imported, tk)
	}
	must(t, s.ImportTokens(ctx, imported))
	indexAgrees(t, s)

	got, err := s.TokenAuth(ctx, rawUsr.ID)
	if err != nil || got.Kind != token.User || got.OwnerID != "u1" || got.Hash != rawUsr.Hash() || !got.ExpiresAt.Equal(exp) {
		t.Fatalf("user token: %+v %v", got, err)
	}
	if got, err := s.TokenAuth(ctx, rawSvc.ID); err != nil || got.Kind != token.Service || got.OwnerID != "s1" || !got.ExpiresAt.IsZero() {
		t.Fatalf("service token: %+v %v", got, err)
	}

	// Revocation, a deleted owner and a deleted service are seen at once, as revoked.
	must(t, s.DeleteToken(ctx, usr.ID))
	_, err = s.DeleteUser(ctx, "u2")
	must(t, err)
	for _, id := range []token.ID{rawUsr.ID, rawGone.ID} {
		if _, err := s.TokenAuth(ctx, id); !errors.Is(err, store.ErrRevoked) {
			t.Fatalf("TokenAuth after revoke: %v, want ErrRevoked", err)
		}
	}
	indexAgrees(t, s)
	_, err = s.DeleteService(ctx, "s1")
	must(t, err)
	if _, err := s.TokenAuth(ctx, rawSvc.ID); !errors.Is(err, store.ErrRevoked) {
		t.Fatalf("TokenAuth after service delete: %v, want ErrRevoked", err)
	}
	if l := s.idx.Len(); l != 0 {
		t.Fatalf("index holds %d tokens after every owner's were deleted", l)
	}
	unknown, _ := token.New(token.User)
	if _, err := s.TokenAuth(ctx, unknown.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown token: %v, want ErrNotFound", err)
	}

	// A reopened store loads the index from disk.
	keep, rawKeep := newToken(t, token.User, "u1")
	keep.ExpiresAt = exp
	must(t, s.CreateToken(ctx, keep))
	must(t, s.Close())
	s, err = Open(Options{Dir: dir})
	must(t, err)
	defer s.Close()
	indexAgrees(t, s)
	if got, err := s.TokenAuth(ctx, rawKeep.ID); err != nil || got.OwnerID != "u1" || !got.ExpiresAt.Equal(exp) {
		t.Fatalf("after reopen: %+v %v", got, err)
	}
	if s.idx.Len() != 1 {
		t.Fatalf("after reopen the index holds %d tokens, want 1", s.idx.Len())
	}
}

// TestTokenIndexUnderConcurrentWrites races creates, revokes and owner deletes against reads;
// at the end the index and Badger agree and no revoked token is readable.
func TestTokenIndexUnderConcurrentWrites(t *testing.T) {
	s := memStore(t)
	must(t, s.CreateOrg(ctx, store.Org{Name: "acme"}))
	for i := range 4 {
		must(t, s.CreateService(ctx, store.Service{ID: fmt.Sprint("s", i), Org: "acme", Name: fmt.Sprint("svc-", i), OrgRole: "viewer"}))
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		revoked []token.ID
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				tk, raw := newToken(t, token.Service, fmt.Sprint("s", w))
				if err := s.CreateToken(ctx, tk); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.TokenAuth(ctx, raw.ID); err != nil {
					t.Errorf("token just created: %v", err)
				}
				if i%2 == 0 {
					if err := s.DeleteToken(ctx, tk.ID); err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					revoked = append(revoked, raw.ID)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Add(1)
	go func() { // a reader hammering the index meanwhile, for the race detector
		defer wg.Done()
		for range 2000 {
			mu.Lock()
			var id token.ID
			if len(revoked) > 0 {
				id = revoked[len(revoked)-1]
			}
			mu.Unlock()
			_, _ = s.TokenAuth(ctx, id)
		}
	}()
	wg.Wait()
	indexAgrees(t, s)
	for _, id := range revoked {
		if _, err := s.TokenAuth(ctx, id); !errors.Is(err, store.ErrRevoked) {
			t.Fatalf("revoked token %s: %v", id, err)
		}
	}
	if got := s.idx.Len(); got != 4*20 {
		t.Fatalf("index holds %d tokens, want 80", got)
	}
	_, err := s.DeleteService(ctx, "s0")
	must(t, err)
	indexAgrees(t, s)
}

// TestDeleteOwnerWithManyTokens deletes owners with more tokens than one Badger transaction
// holds: the delete succeeds, every token is refused as revoked, counts and index follow, and a
// purge cut short (as by a crash) is finished when the store opens.
func TestDeleteOwnerWithManyTokens(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir})
	must(t, err)
	must(t, s.CreateOrg(ctx, store.Org{Name: "acme"}))
	must(t, s.CreateService(ctx, store.Service{ID: "s1", Org: "acme", Name: "ci"}))
	must(t, s.CreateUser(ctx, store.User{ID: "u1", Email: "a@acme.com"}))
	must(t, s.CreateService(ctx, store.Service{ID: "s2", Org: "acme", Name: "keep"}))
	const many = 10_000 // 3 writes a token: more than the 26,214 one transaction holds
	mk := func(kind token.Kind, owner string, n int) []token.ID {
		var recs []store.Token
		var ids []token.ID
		for range n {
			tk, raw := newToken(t, kind, owner)
			recs, ids = append(recs, tk), append(ids, raw.ID)
		}
		must(t, s.ImportTokens(ctx, recs))
		return ids
	}
	svcIDs, usrIDs, keepIDs := mk(token.Service, "s1", many), mk(token.User, "u1", many), mk(token.Service, "s2", 10)

	// The premise: one transaction cannot delete them all.
	txn := s.db.NewTransaction(true)
	if _, err := deleteOwnedTokens(&wtxn{Txn: txn}, token.Service, "s1", "x", 0); !errors.Is(err, badger.ErrTxnTooBig) {
		t.Fatalf("deleting %d tokens in one transaction: %v, want ErrTxnTooBig", many, err)
	}
	txn.Discard()

	// Caches are told when the owner is gone, before its tokens are purged, and by then every
	// one of them is out of the index and refused as revoked: a cached token stops at once.
	refusedAtNotice, tombstonedAtNotice := -1, 0
	s.Subscribe(func(cs []store.Change) {
		if c := cs[0]; c.Kind == store.ChangeService && c.Op == store.OpDelete && c.ID == "s1" {
			refusedAtNotice = 0
			for _, id := range svcIDs {
				if _, err := s.TokenAuth(ctx, id); errors.Is(err, store.ErrRevoked) && strings.Contains(err.Error(), "service deleted") {
					refusedAtNotice++
				}
				if _, ok := s.dying.get(id); !ok {
					tombstonedAtNotice++
				}
			}
		}
	})
	if n, err := s.DeleteService(ctx, "s1"); err != nil || n != many {
		t.Fatalf("DeleteService revoked %d tokens (%v), want %d", n, err, many)
	}
	if refusedAtNotice != many {
		t.Fatalf("the service's deletion was announced with %d of its %d tokens refused as revoked, want all", refusedAtNotice, many)
	}
	if tombstonedAtNotice == many {
		t.Fatal("the service's deletion was announced after its tokens were purged, want before")
	}
	if n, err := s.DeleteUser(ctx, "u1"); err != nil || n != many {
		t.Fatalf("DeleteUser revoked %d tokens (%v), want %d", n, err, many)
	}
	for _, ids := range [][]token.ID{svcIDs, usrIDs} {
		for _, id := range []token.ID{ids[0], ids[many/2], ids[many-1]} {
			if _, err := s.TokenAuth(ctx, id); !errors.Is(err, store.ErrRevoked) {
				t.Fatalf("token of a deleted owner: %v, want ErrRevoked", err)
			}
		}
	}
	if _, err := s.GetService(ctx, "s1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted service: %v", err)
	}
	counts, err := s.CountTokens(ctx)
	must(t, err)
	if counts[token.Service] != 10 || counts[token.User] != 0 {
		t.Fatalf("counts after delete: %v, want 10 svc and 0 usr", counts)
	}
	indexAgrees(t, s)

	// Cut a purge short: the owner is gone and its marker written in one transaction, the
	// tokens not yet deleted.
	err = s.db.Update(func(txn *badger.Txn) error {
		if err := txn.Delete([]byte(pService + "s2")); err != nil {
			return err
		}
		return txn.Set([]byte(pPurge+"s2"), []byte("svc\x00service deleted"))
	})
	must(t, err)
	must(t, s.Close())
	s, err = Open(Options{Dir: dir})
	must(t, err)
	defer s.Close()
	if _, err := s.TokenAuth(ctx, keepIDs[0]); !errors.Is(err, store.ErrRevoked) {
		t.Fatalf("token of a purged owner after reopen: %v, want ErrRevoked", err)
	}
	if counts, _ := s.CountTokens(ctx); counts[token.Service] != 0 {
		t.Fatalf("counts after the purge resumed: %v", counts)
	}
	indexAgrees(t, s)
	left := 0
	must(t, s.view(func(txn *badger.Txn) error {
		return scan(txn, pPurge, func(_, _ []byte) error { left++; return nil })
	}))
	if left != 0 {
		t.Fatalf("%d purge markers left after open", left)
	}
}
