package store

import (
	"context"
	"errors"
	"fmt"
)

// Snapshot is every record of a store, as Dump reads it and a Loader writes it: what moves a
// deployment from one engine to another. Tokens keep their ids, hashes and times; signing keys
// are in the clear here and encrypted again by the destination. Tombstones (which revoked
// tokens are remembered as revoked rather than unknown) are not part of it: in the destination
// a token revoked before the copy is unknown, and refused all the same.
type Snapshot struct {
	Orgs        []Org
	Projects    []Project
	Users       []User
	Services    []Service
	Tokens      []Token
	SigningKeys []SigningKey
	Audit       []AuditEvent
	// Issuer is the recorded issuer (a zero URL: none), which JWTs in the field carry.
	Issuer Issuer
	// Seq is the source's LastSeq when it was read (for messages).
	Seq uint64
}

// Counts are the records of a snapshot per kind, in a fixed order, for reports.
func (s *Snapshot) Counts() []KindCount {
	return []KindCount{{"orgs", len(s.Orgs)}, {"projects", len(s.Projects)}, {"users", len(s.Users)},
		{"services", len(s.Services)}, {"tokens", len(s.Tokens)}, {"signing keys", len(s.SigningKeys)},
		{"audit events", len(s.Audit)}}
}

// KindCount is how many records of one kind a snapshot holds.
type KindCount struct {
	Kind string
	N    int
}

// ErrNotEmpty is returned by Load into a store that already holds records, unless it was
// asked to replace them.
var ErrNotEmpty = errors.New("the destination store is not empty")

// Loader is implemented by engines that can bulk-load a snapshot. Load writes every record of
// snap into the store, which must hold none unless replace is set (then everything in it goes
// first), records snap's issuer (none when it has none), and marks the store bootstrapped: its
// superuser came with the snapshot. Readers of the store's feed from before the load are told
// to reload (ErrFeedTruncated; subscribers get one change deleting signing key "*", which
// drops every cache).
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
	owners := make([]string, 0, len(s.Users)+len(s.Services))
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
	return s, nil
}
