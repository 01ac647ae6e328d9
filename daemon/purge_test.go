package daemon_test

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/adminapi/client"
	"github.com/rill-authd/rill-authd/internal/testenv"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/store/badger"
	"github.com/rill-authd/rill-authd/store/postgres"
	"github.com/rill-authd/rill-authd/token"
)

// purgeSeed is a store's content for the purge tests: a superuser root with a live token and a
// user token expired 2h ago, service acme/ci (org admin) with service tokens expired 2h ago,
// one expired 30 minutes ago and a live one.
type purgeSeed struct {
	snap       store.Snapshot
	root, live string     // secrets of the live tokens
	old        []token.ID // expired 2h ago: purged under a 1h retention
	oldSecrets []string
	recent     string // expired 30 minutes ago: kept
	recentID   token.ID
}

func newPurgeSeed(t *testing.T) *purgeSeed {
	t.Helper()
	now := time.Now()
	p := &purgeSeed{snap: store.Snapshot{
		Orgs:     []store.Org{{Name: "acme", CreatedAt: now}},
		Projects: []store.Project{{Org: "acme", Name: "web", CreatedAt: now}},
		Users:    []store.User{{ID: "root", Email: "root@acme.io", Superuser: true, CreatedAt: now}},
		Services: []store.Service{{ID: "ci", Org: "acme", Name: "ci", OrgRole: policy.Admin, CreatedAt: now}},
	}}
	mint := func(k token.Kind, owner string, created time.Time, ttl time.Duration) (string, token.ID) {
		raw, err := token.New(k)
		if err != nil {
			t.Fatal(err)
		}
		p.snap.Tokens = append(p.snap.Tokens, store.NewToken(raw, owner, "", "", created, ttl))
		return raw.Encode(), raw.ID
	}
	p.root, _ = mint(token.User, "root", now, 0)
	p.live, _ = mint(token.Service, "ci", now, 0)
	for i := range 6 {
		k, owner := token.Service, "ci"
		if i == 0 {
			k, owner = token.User, "root"
		}
		sec, id := mint(k, owner, now.Add(-3*time.Hour), time.Hour)
		p.old, p.oldSecrets = append(p.old, id), append(p.oldSecrets, sec)
	}
	p.recent, p.recentID = mint(token.Service, "ci", now.Add(-90*time.Minute), time.Hour)
	return p
}

var purgedLogRe = regexp.MustCompile(`purged expired tokens.*tokens"?[=:](\d+)`)

// purgedLogged sums the tokens a daemon's "purged expired tokens" lines say it purged.
func purgedLogged(t *testing.T, stderr string) int {
	t.Helper()
	n := 0
	for _, m := range purgedLogRe.FindAllStringSubmatch(stderr, -1) {
		k, err := strconv.Atoi(m[1])
		if err != nil {
			t.Fatal(err)
		}
		n += k
	}
	return n
}

// assertPurged checks, through d's API and its check, what a purge under a 1h retention
// leaves: the tokens expired 2h ago are gone from the lists and refused 401 as revoked (a
// tombstone: before the purge they were refused as expired, and a token never stored is
// unknown), while the token expired 30 minutes ago is still listed and refused as expired, and
// the live ones work.
func assertPurged(t *testing.T, d *testenv.Daemon, p *purgeSeed) {
	t.Helper()
	for _, sec := range p.oldSecrets[1:] { // service tokens: the check's target is acme/web
		if code, body, err := tryCheck(d, sec); err != nil || code != 401 || !strings.Contains(body, "token revoked") {
			t.Errorf("%s: a purged token: %d %s %v, want 401 token revoked", d.URL(), code, body, err)
		}
	}
	if _, err := client.New(d.URL(), p.oldSecrets[0]).Whoami(context.Background()); !isStatus(err, 401) || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("%s: root's purged user token: %v, want 401 revoked", d.URL(), err)
	}
	if code, body, err := tryCheck(d, p.recent); err != nil || code != 401 || !strings.Contains(body, "token expired") {
		t.Errorf("%s: the token expired 30 minutes ago: %d %s %v, want 401 token expired", d.URL(), code, body, err)
	}
	if code := checkStatus(t, d, p.live); code != 200 {
		t.Errorf("%s: the live service token: %d", d.URL(), code)
	}
	c := client.New(d.URL(), p.root)
	ids := func(ts []apiv1.TokenInfo, err error) map[string]bool {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: list: %v", d.URL(), err)
		}
		m := map[string]bool{}
		for _, tk := range ts {
			m[tk.ID] = true
		}
		return m
	}
	svc := ids(c.ListServiceTokens(context.Background(), "acme", "ci"))
	usr := ids(c.ListTokens(context.Background(), "root@acme.io"))
	for _, id := range p.old {
		if svc[id.String()] || usr[id.String()] {
			t.Errorf("%s: a purged token %s is still listed", d.URL(), id)
		}
	}
	if !svc[p.recentID.String()] || len(svc) != 2 || len(usr) != 1 {
		t.Errorf("%s: lists after the purge: service tokens %v (want the live one and the one expired 30 minutes ago), root's %v (want its live one)",
			d.URL(), svc, usr)
	}
}

// assertTombstoned checks, on the store itself after the daemons stopped, that every purged
// token is tombstoned as expired: GetToken says revoked (what import-rill reads to leave a token
// out, RevokedHere) and a dump (what copy-store and backups carry to a new store) holds the
// tombstone; the token expired 30 minutes ago is still a record.
func assertTombstoned(t *testing.T, st store.Store, p *purgeSeed) {
	t.Helper()
	ctx := context.Background()
	for _, id := range p.old {
		if _, err := st.GetToken(ctx, id); !errors.Is(err, store.ErrRevoked) || !strings.Contains(err.Error(), store.ExpiredWhy) {
			t.Errorf("GetToken of purged %s: %v, want revoked: expired", id, err)
		}
	}
	if _, err := st.GetToken(ctx, p.recentID); err != nil {
		t.Errorf("the token expired 30 minutes ago: %v", err)
	}
	snap, err := store.Dump(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	tombs := map[token.ID]string{}
	for _, tb := range snap.Tombstones {
		tombs[tb.ID] = tb.Why
	}
	for _, id := range p.old {
		if tombs[id] != store.ExpiredWhy {
			t.Errorf("dump: tombstone of purged %s: %q, want %q", id, tombs[id], store.ExpiredWhy)
		}
	}
	if len(snap.Tombstones) != len(p.old) || len(snap.Tokens) != len(p.snap.Tokens)-len(p.old) {
		t.Errorf("dump: %d tombstones and %d tokens, want %d and %d", len(snap.Tombstones), len(snap.Tokens), len(p.old), len(p.snap.Tokens)-len(p.old))
	}
}

// TestPurgeExpiredAtStartBadger: a daemon started with --expired-token-retention 1h on a store
// holding tokens expired 2h ago purges them at start (not 5 minutes later): gone from the
// lists, refused as revoked, tombstoned in the store; one expired 30 minutes ago is kept.
func TestPurgeExpiredAtStartBadger(t *testing.T) {
	p := newPurgeSeed(t)
	dir := t.TempDir()
	st, err := badger.Open(badger.Options{Dir: dir, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Load(context.Background(), p.snap, false); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	d := testenv.Start(t, dir, "--expired-token-retention", "1h")
	last := p.oldSecrets[len(p.oldSecrets)-1]
	if within(30*time.Second, func() bool { _, body, err := tryCheck(d, last); return err == nil && strings.Contains(body, "revoked") }) < 0 {
		t.Fatalf("the daemon did not purge the tokens expired 2h ago within 30s:\n%s", d.Stderr())
	}
	assertPurged(t, d, p)
	d.Stop(t)
	if n := purgedLogged(t, d.Stderr()); n != len(p.old) {
		t.Errorf("the daemon logged %d tokens purged, want %d:\n%s", n, len(p.old), d.Stderr())
	}
	if strings.Contains(d.Stderr(), "purging expired tokens") {
		t.Errorf("the purge logged an error:\n%s", d.Stderr())
	}
	st, err = badger.Open(badger.Options{Dir: dir, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	assertTombstoned(t, st, p)
}

// TestPurgeExpiredAtStartTwoReplicas: two daemons started at once with
// --expired-token-retention 1h on one PostgreSQL database holding tokens expired 2h ago both
// purge at start: neither logs an error, each token is purged once (one delete in the feed,
// and the tokens their logs say they purged add up), both refuse the tokens as revoked and list
// them no more, and both keep the one expired 30 minutes ago.
func TestPurgeExpiredAtStartTwoReplicas(t *testing.T) {
	p := newPurgeSeed(t)
	db, _ := testenv.PostgresDB(t, "")
	ctx := context.Background()
	pg, err := postgres.Open(ctx, postgres.Options{URL: db, MaintainInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := pg.Load(ctx, p.snap, false); err != nil {
		t.Fatal(err)
	}
	pg.Close()
	ds := []*testenv.Daemon{
		testenv.Spawn(t, "", "--store", db, "--expired-token-retention", "1h"),
		testenv.Spawn(t, "", "--store", db, "--expired-token-retention", "1h"),
	}
	last := p.oldSecrets[len(p.oldSecrets)-1]
	for _, d := range ds {
		d.WaitStarted(t)
		if within(30*time.Second, func() bool { _, body, err := tryCheck(d, last); return err == nil && strings.Contains(body, "revoked") }) < 0 {
			t.Fatalf("%s did not refuse a token expired 2h ago as revoked within 30s:\n%s", d.URL(), d.Stderr())
		}
	}
	for _, d := range ds {
		assertPurged(t, d, p)
	}
	var ids []string
	for _, id := range p.old {
		ids = append(ids, "'"+id.String()+"'")
	}
	in := "(" + strings.Join(ids, ",") + ")"
	if n := query[int64](t, db, "SELECT count(*) FROM changes WHERE kind = 'token' AND op = 'delete' AND id IN "+in); n != int64(len(p.old)) {
		t.Errorf("token deletes of the purged tokens in the feed: %d, want one each (%d)", n, len(p.old))
	}
	if n := query[int64](t, db, "SELECT count(*) FROM changes WHERE kind = 'token' AND op = 'delete'"); n != int64(len(p.old)) {
		t.Errorf("token deletes in the feed: %d, want only the %d purged", n, len(p.old))
	}
	purged := 0
	for _, d := range ds {
		d.Stop(t)
		purged += purgedLogged(t, d.Stderr())
		if strings.Contains(d.Stderr(), "purging expired tokens") || strings.Contains(d.Stderr(), "level=ERROR") {
			t.Errorf("%s logged an error:\n%s", d.URL(), d.Stderr())
		}
	}
	if purged != len(p.old) {
		t.Errorf("the daemons logged %d tokens purged, want %d (each once):\n%s\n%s", purged, len(p.old), ds[0].Stderr(), ds[1].Stderr())
	}
	pg, err = postgres.Open(ctx, postgres.Options{URL: db, MaintainInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	assertTombstoned(t, pg, p)
}
