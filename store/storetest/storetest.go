// Package storetest is the conformance suite of store.Store. Every engine runs it from its own
// tests, so that all engines agree on what the rest of rill-authd relies on:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return openEmptyStore(t) })
//	}
//
// Engines that keep data across restarts also run RunDurable, with a way to reopen a closed
// store's data. The suite uses only the store package's API: no engine is special.
package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// Run runs the conformance suite. open returns a fresh, empty store each time it is called; the
// suite closes it.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	su := suite{open: open}
	for _, g := range []struct {
		name string
		run  func(*testing.T, suite)
	}{
		{"Orgs", testOrgs},
		{"Projects", testProjects},
		{"Users", testUsers},
		{"UpdateUser", testUpdateUser},
		{"Restricted", testRestricted},
		{"Services", testServices},
		{"UpdateService", testUpdateService},
		{"FailedCallsChangeNothing", testFailedCalls},
		{"Tokens", testTokens},
		{"RevokedTokens", testRevokedTokens},
		{"Cascades", testCascades},
		{"Representing", testRepresenting},
		{"RepresentingLoad", testRepresentingLoad},
		{"TokenCap", testTokenCap},
		{"MagicTokenCap", testMagicTokenCap},
		{"CountTokens", testCountTokens},
		{"TouchTokens", testTouchTokens},
		{"RecordUses", testRecordUses},
		{"ImportTokens", testImportTokens},
		{"MagicTokens", testMagicTokens},
		{"TokenLimits", testTokenLimits},
		{"Audit", testAudit},
		{"SigningKeys", testSigningKeys},
		{"Bootstrap", testBootstrap},
		{"Issuer", testIssuer},
		{"Feed", testFeed},
		{"Concurrency", testConcurrency},
		{"CanceledContext", testCanceledContext},
		{"Closed", testClosed},
		{"Load", testLoad},
		{"Text", testText},
		{"TokenPolicy", testTokenPolicy},
		{"PurgeExpired", testPurgeExpired},
		{"Outbox", testOutbox},
		{"ExpiringTokens", testExpiringTokens},
		{"DeleteTokenNotify", testDeleteTokenNotify},
		{"SigninRules", testSigninRules},
		{"DeviceCodes", testDeviceCodes},
	} {
		t.Run(g.name, func(t *testing.T) { g.run(t, su) })
	}
}

type suite struct {
	open func(t *testing.T) store.Store
}

// fresh opens a store, checks that it is empty and closes it when t ends.
func (su suite) fresh(t *testing.T) store.Store {
	t.Helper()
	s := su.open(t)
	if s == nil {
		t.Fatal("open returned no store")
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	if seq, err := s.LastSeq(t.Context()); err != nil || seq != 0 {
		t.Fatalf("a fresh store: LastSeq = %d, %v; want 0 (is open reusing data?)", seq, err)
	}
	return s
}

// now is the current time as every engine can store it: UTC, whole microseconds (PostgreSQL's
// precision).
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// val returns v, failing the test it is given if err is not nil: val(s.GetOrg(c, "x"))(t).
func val[T any](v T, err error) func(*testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// wantErr fails t unless err wraps want.
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got error %v, want %v", what, err, want)
	}
}

func newUser(email string) store.User {
	return store.User{ID: token.NewID(), Email: email, CreatedAt: now(), UpdatedAt: now()}
}

func newService(org, name string) store.Service {
	return store.Service{ID: token.NewID(), Org: org, Name: name, CreatedAt: now(), UpdatedAt: now()}
}

// newToken makes the record of a fresh token of kind k owned by owner.
func newToken(t *testing.T, k token.Kind, owner string) store.Token {
	t.Helper()
	raw, err := token.New(k)
	must(t, err)
	return store.Token{ID: raw.ID, Kind: k, OwnerID: owner, Prefix: raw.Display(), Hash: raw.Hash(), CreatedAt: now()}
}

// newTokenID is a fresh random token id, of no token in any store.
func newTokenID(t *testing.T) token.ID {
	t.Helper()
	raw, err := token.New(token.User)
	must(t, err)
	return raw.ID
}

// world is a small populated store: two orgs (acme-eu shares a prefix with acme, to catch
// range scans that leak), a project, two users and three services (acme/ci, acme/deploy,
// acme-eu/ci), each user and service with a token.
type world struct {
	org, org2        string
	project          store.Project
	user, user2      store.User
	svc, svc2, svc3  store.Service
	userTok, svc2Tok store.Token
	svcToks          []store.Token // svc's two tokens
}

func populate(t *testing.T, s store.Store) *world {
	t.Helper()
	c := t.Context()
	w := &world{org: "acme", org2: "acme-eu"}
	must(t, s.CreateOrg(c, store.Org{Name: w.org, CreatedAt: now()}))
	must(t, s.CreateOrg(c, store.Org{Name: w.org2, CreatedAt: now()}))
	w.project = store.Project{Org: w.org, Name: "web", CreatedAt: now()}
	must(t, s.CreateProject(c, w.project))
	w.user, w.user2 = newUser("ada@acme.test"), newUser("bob@acme.test")
	w.user.OrgRoles = map[string]policy.Role{w.org: "viewer"}
	must(t, s.CreateUser(c, w.user))
	must(t, s.CreateUser(c, w.user2))
	w.svc, w.svc2, w.svc3 = newService(w.org, "ci"), newService(w.org, "deploy"), newService(w.org2, "ci")
	for _, sv := range []store.Service{w.svc, w.svc2, w.svc3} {
		must(t, s.CreateService(c, sv))
	}
	w.userTok = newToken(t, token.User, w.user.ID)
	w.svc2Tok = newToken(t, token.Service, w.svc2.ID)
	w.svcToks = []store.Token{newToken(t, token.Service, w.svc.ID), newToken(t, token.Service, w.svc.ID)}
	for _, tk := range append([]store.Token{w.userTok, w.svc2Tok}, w.svcToks...) {
		must(t, s.CreateToken(c, tk))
	}
	return w
}

// snapshot is everything a store holds that its API lists, in a form to compare.
type snapshot struct {
	Orgs     []store.Org
	Projects map[string][]store.Project // by org
	Users    []store.User               // by id
	Services map[string][]store.Service // by org
	Tokens   map[string][]store.Token   // by owner
	Counts   map[token.Kind]uint64
	Keys     []store.SigningKey
	Audit    []store.AuditEvent
	Issuer   store.Issuer
	LastSeq  uint64
	Feed     []store.Change
}

func snap(t *testing.T, s store.Store) snapshot {
	t.Helper()
	c := t.Context()
	sn := snapshot{Projects: map[string][]store.Project{}, Services: map[string][]store.Service{}, Tokens: map[string][]store.Token{}}
	sn.Orgs = normOrgs(val(s.ListOrgs(c))(t))
	for _, o := range sn.Orgs {
		sn.Projects[o.Name] = normProjects(val(s.ListProjects(c, o.Name))(t))
		for _, p := range sn.Projects[o.Name] {
			if ts := normTokens(val(s.ListTokens(c, store.MagicOwner(p.Org, p.Name)))(t)); len(ts) > 0 {
				sn.Tokens[store.MagicOwner(p.Org, p.Name)] = ts
			}
		}
		sn.Services[o.Name] = normServices(val(s.ListServices(c, o.Name))(t))
		for _, sv := range sn.Services[o.Name] {
			sn.Tokens[sv.ID] = normTokens(val(s.ListTokens(c, sv.ID))(t))
		}
	}
	sn.Users = normUsers(val(s.ListUsers(c))(t))
	sort.Slice(sn.Users, func(i, j int) bool { return sn.Users[i].ID < sn.Users[j].ID })
	for _, u := range sn.Users {
		sn.Tokens[u.ID] = normTokens(val(s.ListTokens(c, u.ID))(t))
	}
	sn.Counts = normCounts(val(s.CountTokens(c))(t))
	sn.Keys = normKeys(val(s.ListSigningKeys(c))(t))
	sn.Audit = normAudit(val(s.ListAudit(c, store.AuditFilter{}))(t))
	sn.Issuer = val(s.GetIssuer(c))(t)
	sn.Issuer.RecordedAt = utc(sn.Issuer.RecordedAt)
	sn.LastSeq = val(s.LastSeq(c))(t)
	feed, err := s.ChangesSince(c, 0, 0)
	if !errors.Is(err, store.ErrFeedTruncated) { // after a Load: the feed starts there
		sn.Feed = normChanges(val(feed, err)(t))
	}
	return sn
}

// sameSnapshot fails t, naming each part that differs, unless got and want are equal.
func sameSnapshot(t *testing.T, what string, got, want snapshot) {
	t.Helper()
	g, w := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := range g.NumField() {
		if !reflect.DeepEqual(g.Field(i).Interface(), w.Field(i).Interface()) {
			t.Errorf("%s: %s differ\n got %+v\nwant %+v", what, g.Type().Field(i).Name, g.Field(i).Interface(), w.Field(i).Interface())
		}
	}
}

// Normalization: engines may return times in another location and empty maps or slices as
// nil; neither is a difference.

func utc(t time.Time) time.Time { return t.UTC() }

func normMap[M ~map[K]V, K comparable, V any](m M) M {
	if len(m) == 0 {
		return nil
	}
	return m
}

func normSlice[S ~[]E, E any](s S) S {
	if len(s) == 0 {
		return nil
	}
	return s
}

func each[T any](xs []T, f func(T) T) []T {
	if len(xs) == 0 {
		return nil
	}
	out := make([]T, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}

func normOrg(o store.Org) store.Org { o.CreatedAt = utc(o.CreatedAt); return o }
func normProject(p store.Project) store.Project {
	p.CreatedAt = utc(p.CreatedAt)
	return p
}

func normUser(u store.User) store.User {
	u.OrgRoles, u.ProjectRoles = normMap(u.OrgRoles), normMap(u.ProjectRoles)
	if len(u.Orgs) == 0 {
		u.Orgs = nil
	} else {
		orgs := make(map[string]store.UserOrg, len(u.Orgs))
		for org, s := range u.Orgs {
			orgs[org] = store.UserOrg{Groups: normSlice(s.Groups), Attributes: normMap(s.Attributes)}
		}
		u.Orgs = orgs
	}
	u.CreatedAt, u.UpdatedAt = utc(u.CreatedAt), utc(u.UpdatedAt)
	return u
}

func normService(s store.Service) store.Service {
	s.ProjectRoles, s.Attributes = normMap(s.ProjectRoles), normMap(s.Attributes)
	s.CreatedAt, s.UpdatedAt = utc(s.CreatedAt), utc(s.UpdatedAt)
	return s
}

func normToken(t store.Token) store.Token {
	t.CreatedAt, t.ExpiresAt, t.LastUsedAt = utc(t.CreatedAt), utc(t.ExpiresAt), utc(t.LastUsedAt)
	return t
}

func normKey(k store.SigningKey) store.SigningKey {
	k.CreatedAt, k.ActivatesAt, k.SignedUntil, k.RetiredAt = utc(k.CreatedAt), utc(k.ActivatesAt), utc(k.SignedUntil), utc(k.RetiredAt)
	return k
}

func normEvent(e store.AuditEvent) store.AuditEvent { e.Time = utc(e.Time); return e }
func normChange(c store.Change) store.Change        { c.Time = utc(c.Time); return c }

func normOrgs(os []store.Org) []store.Org                { return each(os, normOrg) }
func normProjects(ps []store.Project) []store.Project    { return each(ps, normProject) }
func normUsers(us []store.User) []store.User             { return each(us, normUser) }
func normServices(ss []store.Service) []store.Service    { return each(ss, normService) }
func normTokens(ts []store.Token) []store.Token          { return each(ts, normToken) }
func normKeys(ks []store.SigningKey) []store.SigningKey  { return each(ks, normKey) }
func normAudit(es []store.AuditEvent) []store.AuditEvent { return each(es, normEvent) }
func normChanges(cs []store.Change) []store.Change       { return each(cs, normChange) }
func normCounts(m map[token.Kind]uint64) map[token.Kind]uint64 {
	out := map[token.Kind]uint64{token.User: m[token.User], token.Service: m[token.Service]}
	for k, n := range m {
		if n != 0 {
			out[k] = n
		}
	}
	return out
}

// same fails t unless got equals want once normalized with norm.
func same[T any](t *testing.T, what string, got, want T, norm func(T) T) {
	t.Helper()
	if g, w := norm(got), norm(want); !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, g, w)
	}
}

func counts(t *testing.T, s store.Store) map[token.Kind]uint64 {
	t.Helper()
	return normCounts(val(s.CountTokens(t.Context()))(t))
}

func wantCounts(t *testing.T, s store.Store, usr, svc uint64) {
	t.Helper()
	if got := counts(t, s); got[token.User] != usr || got[token.Service] != svc {
		t.Errorf("CountTokens = %v, want %d %s and %d %s", got, usr, token.User, svc, token.Service)
	}
}

func lastSeq(t *testing.T, s store.Store) uint64 {
	t.Helper()
	return val(s.LastSeq(t.Context()))(t)
}

// recorder subscribes to a store and keeps every batch it hears of, checking as they come that
// the sequence is gapless and increasing.
type recorder struct {
	t       *testing.T
	mu      sync.Mutex
	batches [][]store.Change
	next    uint64 // the Seq the next change must have
}

func record(t *testing.T, s store.Store) *recorder {
	t.Helper()
	r := &recorder{t: t, next: lastSeq(t, s) + 1}
	s.Subscribe(r.add)
	return r
}

func (r *recorder) add(cs []store.Change) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(cs) == 0 {
		r.t.Errorf("subscriber called with no changes")
	}
	for _, c := range cs {
		if c.Seq == 0 && !c.IsReset() {
			continue // told ahead of its turn: it comes again in order (store.Change)
		}
		if c.Seq != r.next {
			r.t.Errorf("subscriber got seq %d (%s %s %s), want %d", c.Seq, c.Kind, c.Op, c.ID, r.next)
		}
		r.next = c.Seq + 1
	}
	r.batches = append(r.batches, slices.Clone(cs))
}

// targeted fails t unless c names what a cache must drop for it, as store.Change says: a token
// by an id a bearer token can carry, a project by "org/name", anything else by a non-empty id;
// and no reset is ever in the feed.
func targeted(t *testing.T, what string, c store.Change) {
	t.Helper()
	switch c.Kind {
	case store.ChangeToken:
		if _, err := token.ParseID(c.ID); err != nil {
			t.Errorf("%s: token change %q does not name a token id: %v", what, c.ID, err)
		}
	case store.ChangeProject:
		if org, name, ok := c.ProjectOf(); !ok || org == "" || name == "" {
			t.Errorf("%s: project change %q does not name org/project", what, c.ID)
		}
	case store.ChangeOrg, store.ChangeUser, store.ChangeService, store.ChangeKey:
		if c.ID == "" {
			t.Errorf("%s: %s change names nothing", what, c.Kind)
		}
	default:
		t.Errorf("%s: change of kind %q in the feed", what, c.Kind)
	}
	if c.Op != store.OpPut && c.Op != store.OpDelete {
		t.Errorf("%s: change op %q", what, c.Op)
	}
	if c.IsReset() || c.Seq == 0 {
		t.Errorf("%s: a notice outside the sequence (%+v) in the feed", what, c)
	}
}

// mark is where the batches heard so far end.
func (r *recorder) mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.batches)
}

// since returns the batches heard after m.
func (r *recorder) since(m int) [][]store.Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.batches[m:])
}

func (r *recorder) all() []store.Change { return slices.Concat(r.since(0)...) }

// desc names a change without its Seq and Time, for comparing against expectations.
func desc(c store.Change) string { return fmt.Sprintf("%s %s %s", c.Kind, c.Op, c.ID) }

func descs(cs []store.Change) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = desc(c)
	}
	return out
}

func put(k store.ChangeKind, id string) string { return fmt.Sprintf("%s %s %s", k, store.OpPut, id) }
func del(k store.ChangeKind, id string) string { return fmt.Sprintf("%s %s %s", k, store.OpDelete, id) }

// sameSet reports whether a and b hold the same values (as many of each), in any order.
func sameSet[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	n := make(map[T]int, len(a))
	for _, v := range a {
		n[v]++
	}
	for _, v := range b {
		if n[v]--; n[v] < 0 {
			return false
		}
	}
	return true
}

var errBoom = errors.New("boom")

func contains(err error, s string) bool { return err != nil && strings.Contains(err.Error(), s) }
