package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rill-authd/rill-authd/token"
)

// Snapshot is every record of a store, as Dump reads it and a Loader writes it: what moves a
// deployment from one engine to another. Tokens keep their ids, hashes and times; signing keys
// are in the clear here and encrypted again by the destination. Tombstones (which revoked
// tokens are remembered as revoked rather than unknown, and why) and the ledger of the tokens
// imports brought (so that a revocation here is never undone by a later import) move too.
type Snapshot struct {
	Orgs        []Org
	Projects    []Project
	Users       []User
	Services    []Service
	Tokens      []Token
	SigningKeys []SigningKey
	Audit       []AuditEvent
	// Issuer is the recorded issuer (a zero URL: none), which JWTs in the field carry.
	Issuer     Issuer
	Tombstones []Tombstone
	// Imported lists every token id an import ever brought (see ImportLedger).
	Imported []ImportedToken
	// Notifications is the outbox, pending and done (see NotificationLister); leases are the
	// source's replicas' and do not travel (Load writes them unclaimed).
	Notifications []Notification
	// Seq is the source's LastSeq when it was read (for messages).
	Seq uint64
}

// Counts are the records of a snapshot per kind, in a fixed order, for reports: copy-store and
// restore say what they moved in the same words.
func (s *Snapshot) Counts() []KindCount {
	return []KindCount{{"org", len(s.Orgs)}, {"project", len(s.Projects)}, {"user", len(s.Users)},
		{"service", len(s.Services)}, {"token", len(s.Tokens)}, {"tombstone", len(s.Tombstones)},
		{"imported token id", len(s.Imported)}, {"signing key", len(s.SigningKeys)}, {"audit event", len(s.Audit)},
		{"notification", len(s.Notifications)}}
}

// KindCount is how many records of one kind a snapshot holds.
type KindCount struct {
	Kind string // singular: "org", "signing key"
	N    int
}

// String is the count with the kind in the right number: "1 org", "2 signing keys".
func (k KindCount) String() string {
	if k.N == 1 {
		return "1 " + k.Kind
	}
	return fmt.Sprintf("%d %ss", k.N, k.Kind)
}

// Tombstone is a revoked token, remembered as revoked (and why) rather than unknown for the
// engines' tombstone period after At.
type Tombstone struct {
	ID  token.ID  `json:"id"`
	Why string    `json:"why"`
	At  time.Time `json:"at"`
}

// ImportedToken is an entry of the import ledger: a token id an import brought, and when.
type ImportedToken struct {
	ID token.ID  `json:"id"`
	At time.Time `json:"at"`
}

// TombstoneLister is implemented by engines that can list their tombstones (both do), so that
// Dump carries them.
type TombstoneLister interface {
	// ListTombstones returns the tombstones still in their period, in no particular order.
	ListTombstones(ctx context.Context) ([]Tombstone, error)
}

// ImportLedger remembers, for good, every token id an import (import-rill) brought into the
// store. A token in the ledger that the store no longer has was revoked here (by its holder,
// an admin, or with its owner), however long ago: the next import must not bring it back,
// after the tombstone is gone as before. Both engines implement it.
type ImportLedger interface {
	// MarkImported adds ids to the ledger (ids already in it keep their time).
	MarkImported(ctx context.Context, ids []token.ID, at time.Time) error
	// ImportedTokens returns the whole ledger, in no particular order.
	ImportedTokens(ctx context.Context) ([]ImportedToken, error)
}

// ErrNotEmpty is returned by Load into a store that already holds records, unless it was
// asked to replace them.
var ErrNotEmpty = errors.New("the destination store is not empty")

// Loader is implemented by engines that can bulk-load a snapshot. Load writes every record of
// snap into the store, which must hold none unless replace is set (then everything in it goes
// first), records snap's issuer (none when it has none), and marks the store bootstrapped: its
// superuser came with the snapshot. Readers of the store's feed from before the load are told
// to reload (ErrFeedTruncated; subscribers get one store.ResetNotice, on which caches re-check
// every entry).
type Loader interface {
	Load(ctx context.Context, snap Snapshot, replace bool) error
}

// dumpAttempts bounds the rereads of a source that keeps changing while it is dumped.
const dumpAttempts = 3

// Dump reads every record of st through the Store interface. It reads the feed's sequence
// before and after, and reads again when a write came between, so the snapshot is one
// consistent state of the store (last-used times and audit events, which are not in the feed,
// may be a moment newer than the rest).
func Dump(ctx context.Context, st Store) (Snapshot, error) {
	for range dumpAttempts {
		before, err := st.LastSeq(ctx)
		if err != nil {
			return Snapshot{}, fmt.Errorf("dump: %w", err)
		}
		snap, err := dumpOnce(ctx, st)
		if err != nil {
			return Snapshot{}, fmt.Errorf("dump: %w", err)
		}
		after, err := st.LastSeq(ctx)
		if err != nil {
			return Snapshot{}, fmt.Errorf("dump: %w", err)
		}
		if before == after {
			snap.Seq = after
			return snap, nil
		}
	}
	return Snapshot{}, fmt.Errorf("dump: the store changed while it was read, %d times: stop the daemons writing to it and try again", dumpAttempts)
}

func dumpOnce(ctx context.Context, st Store) (Snapshot, error) {
	var s Snapshot
	var err error
	if s.Orgs, err = st.ListOrgs(ctx); err != nil {
		return s, err
	}
	for _, o := range s.Orgs {
		ps, err := st.ListProjects(ctx, o.Name)
		if err != nil {
			return s, err
		}
		s.Projects = append(s.Projects, ps...)
		ss, err := st.ListServices(ctx, o.Name)
		if err != nil {
			return s, err
		}
		s.Services = append(s.Services, ss...)
	}
	if s.Users, err = st.ListUsers(ctx); err != nil {
		return s, err
	}
	owners := make([]string, 0, len(s.Users)+len(s.Services)+len(s.Projects))
	for _, p := range s.Projects { // the owners of magic tokens (public URLs)
		owners = append(owners, MagicOwner(p.Org, p.Name))
	}
	for _, u := range s.Users {
		owners = append(owners, u.ID)
	}
	for _, sv := range s.Services {
		owners = append(owners, sv.ID)
	}
	for _, id := range owners {
		ts, err := st.ListTokens(ctx, id)
		if err != nil {
			return s, err
		}
		s.Tokens = append(s.Tokens, ts...)
	}
	if s.SigningKeys, err = st.ListSigningKeys(ctx); err != nil {
		return s, err
	}
	if s.Audit, err = st.ListAudit(ctx, AuditFilter{}); err != nil {
		return s, err
	}
	if s.Issuer, err = st.GetIssuer(ctx); err != nil {
		return s, err
	}
	if tl, ok := st.(TombstoneLister); ok {
		if s.Tombstones, err = tl.ListTombstones(ctx); err != nil {
			return s, err
		}
	}
	if il, ok := st.(ImportLedger); ok {
		if s.Imported, err = il.ImportedTokens(ctx); err != nil {
			return s, err
		}
	}
	if nl, ok := st.(NotificationLister); ok {
		if s.Notifications, err = nl.ListNotifications(ctx); err != nil {
			return s, err
		}
		for i := range s.Notifications {
			s.Notifications[i].LeaseUntil = time.Time{}
		}
	}
	return s, nil
}
