package rillimport_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	bdg "github.com/dgraph-io/badger/v4"

	"github.com/rill-authd/rill-authd/internal/testenv"
	"github.com/rill-authd/rill-authd/rillimport"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/store/badger"
	"github.com/rill-authd/rill-authd/store/postgres"
)

// oddRill is the seed with what Rill's foreign keys and its lower(name) index would have kept
// out (a database restored in part, or edited by hand): a role binding whose user is missing,
// a project binding of a missing user and one of a missing service, a token whose owner is
// missing, and orgs "Acme" and "ACME".
func oddRill(t *testing.T) (*fixture, map[string]string) {
	f := seed(t)
	db := f.db
	db.exec("SET session_replication_role = replica") // this connection skips foreign keys
	db.orgMember("Acme", "ghost@acme.io", "viewer", "{}")
	db.projectMember("Acme", "web", "phantom@acme.io", "viewer", false)
	db.exec(`INSERT INTO service_projects_roles (service_id, project_id, project_role_id)
		VALUES ($1, $2, (SELECT id FROM project_roles WHERE name = 'viewer'))`, db.id("service:Acme/gone"), db.id("project:Acme/web"))
	orphanToken := db.userToken("nobody@acme.io", "", nil, newUUID())
	db.exec("DROP INDEX orgs_name_idx")
	db.org("ACME")
	return f, map[string]string{
		"binding":         "users_orgs_roles row user_id=" + db.id("user:ghost@acme.io") + " org_id=" + db.id("org:Acme") + ": its user " + db.id("user:ghost@acme.io") + " does not exist",
		"project binding": "users_projects_roles row user_id=" + db.id("user:phantom@acme.io") + " project_id=" + db.id("project:Acme/web"),
		"service binding": "service_projects_roles row service_id=" + db.id("service:Acme/gone"),
		"token":           "user_auth_tokens row " + orphanToken.ID.String() + ": its owner, user " + db.id("user:nobody@acme.io") + ", does not exist",
		"orgs":            "orgs row " + db.id("org:ACME") + `: name "ACME" is "acme" once lower-cased, as org ` + db.id("org:Acme") + ` ("Acme") is`,
	}
}

// TestImportChecksTheWholePlanFirst: an odd Rill database (orphan bindings and token, orgs
// that collide once lower-cased) is refused before the first write on both engines, with every
// offending row named by table and id and no panic (a binding of a missing user was a
// nil-pointer panic; the orphan token was found only after orgs, projects, users and services
// were written; the orgs gave a half-written import). With --skip-orphans the orphans are left
// out and listed, but the colliding orgs still stop it; without them it goes through whole.
func TestImportChecksTheWholePlanFirst(t *testing.T) {
	for name, open := range engines(t) {
		t.Run(name, func(t *testing.T) {
			f, want := oddRill(t)
			st := open(t)
			before, _ := st.LastSeq(ctx)
			snap := read(t, f.db)
			for _, skip := range []bool{false, true} {
				_, err := rillimport.Import(ctx, st, snap, rillimport.Options{SkipOrphans: skip})
				if err == nil || !strings.Contains(err.Error(), "nothing was written") {
					t.Fatalf("SkipOrphans %v: import of an odd database: %v", skip, err)
				}
				for what, row := range want {
					if orphan := what != "orgs"; orphan && skip {
						if strings.Contains(err.Error(), row) {
							t.Errorf("SkipOrphans %v: the %s is named, but should be skipped: %v", skip, what, err)
						}
					} else if !strings.Contains(err.Error(), row) {
						t.Errorf("SkipOrphans %v: the %s is not named (%q):\n%v", skip, what, row, err)
					}
				}
				if after, _ := st.LastSeq(ctx); after != before {
					t.Fatalf("a refused import wrote: feed %d -> %d", before, after)
				}
				if orgs, _ := st.ListOrgs(ctx); len(orgs) != 0 {
					t.Fatalf("a refused import created orgs: %v", orgs)
				}
			}

			// Without the second acme, --skip-orphans imports everything else, and says what it left out.
			f.db.exec("DELETE FROM orgs WHERE name = 'ACME'")
			snap = read(t, f.db)
			if _, err := rillimport.Import(ctx, st, snap, rillimport.Options{}); err == nil || !strings.Contains(err.Error(), "--skip-orphans") {
				t.Fatalf("orphans without --skip-orphans: %v", err)
			}
			rep, err := rillimport.Import(ctx, st, snap, rillimport.Options{SkipOrphans: true})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Skipped) != 4 {
				t.Errorf("skipped %d rows, want 4: %v", len(rep.Skipped), rep.Skipped)
			}
			counts(t, rep, map[string]rillimport.Counts{"org": {Created: 2}, "project": {Created: 3}, "user": {Created: 5},
				"service": {Created: 2}, "token": {Created: 8}})
			if _, err := st.GetUserByEmail(ctx, "ghost@acme.io"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("the orphan binding's user: %v", err)
			}
		})
	}
}

// TestImportNeverUndoesARevocation: a token imported from Rill and revoked here stays out of
// every later import, however long after: its tombstone lasts 90 days, the import ledger for
// good (before, a re-import after the tombstone was gone brought the token back).
func TestImportNeverUndoesARevocation(t *testing.T) {
	// Each engine opens a store, and forgets its tombstones as 90 days would.
	engines := map[string]func(t *testing.T) (store.Store, func() store.Store){
		"badger": func(t *testing.T) (store.Store, func() store.Store) {
			dir := filepath.Join(t.TempDir(), "data")
			st, err := badger.Open(badger.Options{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			return st, func() store.Store {
				st.Close()
				raw, err := bdg.Open(bdg.DefaultOptions(dir).WithLogger(nil))
				if err != nil {
					t.Fatal(err)
				}
				if err := raw.DropPrefix([]byte("revoked/")); err != nil {
					t.Fatal(err)
				}
				raw.Close()
				again, err := badger.Open(badger.Options{Dir: dir})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { again.Close() })
				return again
			}
		},
		"postgres": func(t *testing.T) (store.Store, func() store.Store) {
			u := newDatabase(t)
			st, err := postgres.Open(ctx, postgres.Options{URL: u, MaintainInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st, func() store.Store {
				testenv.Exec(t, u, "DELETE FROM tombstones")
				return st
			}
		},
	}
	for name, open := range engines {
		t.Run(name, func(t *testing.T) {
			f := seed(t)
			st, forget := open(t)
			if _, err := rillimport.Import(ctx, st, read(t, f.db), rillimport.Options{}); err != nil {
				t.Fatal(err)
			}
			if err := st.DeleteToken(ctx, f.bob.ID); err != nil {
				t.Fatal(err)
			}
			st = forget()
			if _, err := st.GetToken(ctx, f.bob.ID); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("the tombstone was not forgotten: %v", err)
			}
			rep, err := rillimport.Import(ctx, st, read(t, f.db), rillimport.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.RevokedHere) != 1 || rep.RevokedHere[0] != f.bob.ID || rep.Counts["token"].Created != 0 {
				t.Fatalf("bob's token revoked long ago: RevokedHere %v, created %d", rep.RevokedHere, rep.Counts["token"].Created)
			}
			if _, err := st.GetToken(ctx, f.bob.ID); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("bob's token after the re-import: %v, want still gone", err)
			}
		})
	}
}
