package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// testLoad: store.Dump of a populated store, loaded into an empty one, lists the same records,
// answers TokenAuth for the same tokens, is bootstrapped, and keeps its rules (unique names);
// a store with records refuses a load unless it replaces them, and a replacing load leaves
// nothing of what was there, telling subscribers and feed readers to start over.
func testLoad(t *testing.T, su suite) {
	src, c := su.fresh(t), t.Context()
	w := populate(t, src)
	admin := fullUser("root@acme.test")
	must(t, src.CreateUser(c, admin))
	used := newToken(t, token.User, admin.ID)
	used.DisplayName, used.CreatedBy, used.ExpiresAt = "laptop", "rill-authd", now().Add(time.Hour)
	used.AllowedNetworks, used.AllowedOrigins = []string{"10.0.0.0/8", "2001:db8::/32"}, []string{"https://app.example.com"}
	must(t, src.CreateToken(c, used))
	must(t, src.RecordUses(c, map[token.ID]store.TokenUse{used.ID: {At: now(), IP: "2001:db8::7", UserAgent: "rillctl/1.0"}}))
	if got := val(src.GetToken(c, used.ID))(t); got.LastUsedIP != "2001:db8::7" || got.LastUsedUserAgent != "rillctl/1.0" {
		t.Fatalf("the source's last use: %q %q", got.LastUsedIP, got.LastUsedUserAgent)
	}
	gone := newToken(t, token.User, admin.ID)
	must(t, src.CreateToken(c, gone))
	must(t, src.DeleteToken(c, gone.ID))
	must(t, src.PutSigningKey(c, newKey(t, "k1", now())))
	must(t, src.AppendAudit(c, store.AuditEvent{Time: now(), Actor: "root", Action: "token.create", Target: "user:root", Outcome: "ok"}))
	if _, err := src.Bootstrap(c, func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}

	importedAt := now()
	if l, ok := src.(store.ImportLedger); ok {
		must(t, l.MarkImported(c, []token.ID{used.ID, gone.ID}, importedAt))
		must(t, l.MarkImported(c, []token.ID{used.ID}, importedAt.Add(time.Hour))) // kept at its first time
	}
	// The outbox: one pending (claimed by a source replica), one done.
	pending := store.Notification{ID: "evt-pending", Sink: "audit", Body: []byte(`{"id":"evt-pending"}`), CreatedAt: now(), NextAt: now().Add(-time.Minute)}
	done := store.Notification{ID: "evt-done", Sink: "audit", Body: []byte(`{"id":"evt-done"}`), CreatedAt: now(), NextAt: now()}
	_, outbox := src.(store.NotificationLister)
	if outbox {
		if n, err := src.EnqueueNotifications(c, []store.Notification{pending, done}); err != nil || n != 2 {
			t.Fatalf("EnqueueNotifications: %d %v", n, err)
		}
		claimed := val(src.ClaimNotifications(c, now(), time.Hour, 0))(t)
		if len(claimed) != 2 {
			t.Fatalf("claimed %d, want 2", len(claimed))
		}
		must(t, src.FinishNotification(c, done.ID, now()))
	}
	dump := val(store.Dump(c, src))(t)
	if dump.Seq != val(src.LastSeq(c))(t) || len(dump.Tokens) != 5 || len(dump.Users) != 3 || len(dump.SigningKeys) != 1 || len(dump.Audit) != 1 {
		t.Fatalf("Dump: %+v", dump.Counts())
	}
	dst := su.fresh(t)
	l, ok := dst.(store.Loader)
	if !ok {
		t.Skipf("%T does not implement store.Loader", dst)
	}
	must(t, l.Load(c, dump, false))
	want, got := snap(t, src), snap(t, dst)
	// The feed is the destination's own: its sequence, not the source's changes.
	want.LastSeq, want.Feed, got.LastSeq, got.Feed = 0, nil, 0, nil
	sameSnapshot(t, "after Load", got, want)
	for _, tk := range append([]store.Token{w.userTok, w.svc2Tok, used}, w.svcToks...) {
		a, err := dst.TokenAuth(c, tk.ID)
		if err != nil || a.Hash != tk.Hash || a.OwnerID != tk.OwnerID || a.Kind != tk.Kind || !a.ExpiresAt.Equal(tk.ExpiresAt) ||
			(a.Limits != nil) != (len(tk.AllowedNetworks) > 0) || len(tk.AllowedNetworks) > 0 && len(a.Limits.Networks) != len(tk.AllowedNetworks) {
			t.Errorf("TokenAuth(%s) after Load: %+v, %v", tk.ID, a, err)
		}
	}
	if _, err := dst.TokenAuth(c, gone.ID); !errors.Is(err, store.ErrRevoked) {
		t.Errorf("a token revoked before the dump, after Load: %v, want revoked (its tombstone comes along)", err)
	}
	if l, ok := dst.(store.ImportLedger); ok {
		got := val(l.ImportedTokens(c))(t)
		if len(got) != 2 || len(dump.Imported) != 2 || len(dump.Tombstones) != 1 || dump.Tombstones[0].ID != gone.ID {
			t.Errorf("the import ledger after Load: %+v (dumped %+v, tombstones %+v)", got, dump.Imported, dump.Tombstones)
		}
		for _, e := range got {
			if !e.At.Equal(importedAt) {
				t.Errorf("ledger entry %s at %v, want %v", e.ID, e.At, importedAt)
			}
		}
	}
	if outbox {
		// Copied with the records, unclaimed: the pending one is due at once on the destination
		// (its source lease does not travel), the done one is not delivered again and still
		// refuses a repeat of its ID.
		if len(dump.Notifications) != 2 {
			t.Errorf("Dump carries %d notifications, want 2", len(dump.Notifications))
		}
		claimed := val(dst.ClaimNotifications(c, now(), time.Minute, 0))(t)
		if len(claimed) != 1 || claimed[0].ID != pending.ID || string(claimed[0].Body) != string(pending.Body) || !claimed[0].CreatedAt.Equal(pending.CreatedAt) {
			t.Errorf("claimable after Load: %+v, want the pending one", claimed)
		}
		if got := val(dst.GetNotification(c, done.ID))(t); got.DoneAt.IsZero() {
			t.Errorf("the done notification after Load: %+v", got)
		}
		if n, err := dst.EnqueueNotifications(c, []store.Notification{done}); err != nil || n != 0 {
			t.Errorf("enqueue of a copied ID: %d new, %v; want 0", n, err)
		}
		// The destination's own row, which a replacing load below drops with the rest.
		if n, err := dst.EnqueueNotifications(c, []store.Notification{{ID: "evt-dst", Sink: "audit", Body: []byte(`{}`), CreatedAt: now(), NextAt: now()}}); err != nil || n != 1 {
			t.Fatalf("enqueue on the destination: %d %v", n, err)
		}
	}
	ran, err := dst.Bootstrap(c, func(context.Context) error { return nil })
	if err != nil || ran {
		t.Errorf("Bootstrap after Load ran %v, %v: a loaded store is bootstrapped", ran, err)
	}
	wantErr(t, "CreateService of a loaded name", dst.CreateService(c, newService(w.org, w.svc.Name)), store.ErrConflict)
	wantErr(t, "CreateUser of a loaded email", dst.CreateUser(c, newUser(w.user.Email)), store.ErrConflict)
	more := newToken(t, token.Service, w.svc3.ID)
	must(t, dst.CreateToken(c, more))

	// A second load is refused, and changes nothing.
	before := val(dst.LastSeq(c))(t)
	wantErr(t, "Load into a store with records", l.Load(c, dump, false), store.ErrNotEmpty)
	if got := val(dst.LastSeq(c))(t); got != before {
		t.Errorf("a refused Load moved LastSeq from %d to %d", before, got)
	}

	// Replacing: a snapshot without svc and its tokens.
	var heard []store.Change
	var mu sync.Mutex
	dst.Subscribe(func(cs []store.Change) { mu.Lock(); heard = append(heard, cs...); mu.Unlock() })
	smaller := dump
	smaller.Services, smaller.Tokens = nil, nil
	for _, sv := range dump.Services {
		if sv.ID != w.svc.ID {
			smaller.Services = append(smaller.Services, sv)
		}
	}
	for _, tk := range dump.Tokens {
		if tk.OwnerID != w.svc.ID {
			smaller.Tokens = append(smaller.Tokens, tk)
		}
	}
	must(t, l.Load(c, smaller, true))
	for _, tk := range append(w.svcToks, more) {
		if _, err := dst.TokenAuth(c, tk.ID); err == nil {
			t.Errorf("token %s outlived a replacing Load without it", tk.ID)
		}
	}
	if _, err := dst.TokenAuth(c, w.userTok.ID); err != nil {
		t.Errorf("TokenAuth after a replacing Load: %v", err)
	}
	if outbox {
		if got, err := dst.(store.NotificationLister).ListNotifications(c); err != nil || len(got) != 2 {
			t.Errorf("the outbox after a replacing Load: %d rows %v, want the snapshot's 2 and not the destination's own", len(got), err)
		}
	}
	if _, err := dst.GetServiceByName(c, w.org, w.svc.Name); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a service outlived a replacing Load without it: %v", err)
	}
	if n := val(dst.CountTokens(c))(t); n[token.User] != 2 || n[token.Service] != 1 {
		t.Errorf("CountTokens after a replacing Load: %v", n)
	}
	if _, err := dst.ChangesSince(c, before, 0); !errors.Is(err, store.ErrFeedTruncated) {
		t.Errorf("ChangesSince from before a Load: %v, want ErrFeedTruncated", err)
	}
	if after := val(dst.LastSeq(c))(t); after <= before {
		t.Errorf("LastSeq went from %d to %d over a Load", before, after)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(heard) != 1 || !heard[0].IsReset() {
		t.Errorf("subscribers heard %+v of a replacing Load, want one reset notice", heard)
	}
}
