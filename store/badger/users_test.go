package badger

import (
	"encoding/json"
	"reflect"
	"testing"

	bdg "github.com/dgraph-io/badger/v4"

	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
)

// TestUserRecordOfTheOldShape reads user records written before groups and attributes were per
// org (one global "groups" and "attributes"): each org the user was a member of in the record
// gets its own copy, a user in no org keeps none, and the first write stores the new shape, so
// an org joined later gets nothing of them.
func TestUserRecordOfTheOldShape(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir})
	must(t, err)
	old := map[string]string{
		"u-old": `{"id":"u-old","email":"old@acme.io","display_name":"Old","org_roles":{"acme":"viewer","victim":"admin"},` +
			`"project_roles":{"beta/web":"viewer"},"groups":["eng"],"attributes":{"tier":"gold","nested":{"k":"v"}},` +
			`"created_at":"2024-01-02T03:04:05Z","updated_at":"2024-01-02T03:04:05Z"}`,
		"u-none": `{"id":"u-none","email":"none@acme.io","groups":["eng"],"attributes":{"tier":"gold"},"superuser":true,` +
			`"created_at":"2024-01-02T03:04:05Z","updated_at":"2024-01-02T03:04:05Z"}`,
	}
	must(t, s.db.Update(func(txn *bdg.Txn) error {
		for id, rec := range old {
			var u struct{ Email string }
			if err := json.Unmarshal([]byte(rec), &u); err != nil {
				return err
			}
			if err := txn.Set([]byte(pUser+id), []byte(rec)); err != nil {
				return err
			}
			if err := txn.Set([]byte(pUserMail+u.Email), []byte(id)); err != nil {
				return err
			}
		}
		return nil
	}))

	slice := store.UserOrg{Groups: []string{"eng"}, Attributes: map[string]any{"tier": "gold", "nested": map[string]any{"k": "v"}}}
	want := map[string]store.UserOrg{"acme": slice, "victim": slice, "beta": slice}
	got, err := s.GetUser(ctx, "u-old")
	must(t, err)
	if !reflect.DeepEqual(got.Orgs, want) || got.OrgRoles["victim"] != policy.Admin || got.DisplayName != "Old" {
		t.Fatalf("GetUser of an old record: %+v", got)
	}
	// Each org's copy is its own, nested values too.
	got.Orgs["acme"].Attributes["nested"].(map[string]any)["k"] = "changed"
	if got.Orgs["victim"].Attributes["nested"].(map[string]any)["k"] != "v" {
		t.Fatal("two orgs' copies of an old record's attributes share a value")
	}
	byMail, err := s.GetUserByEmail(ctx, "old@acme.io")
	must(t, err)
	if !reflect.DeepEqual(byMail.Orgs, want) {
		t.Fatalf("GetUserByEmail of an old record: %+v", byMail.Orgs)
	}
	all, err := s.ListUsers(ctx)
	must(t, err)
	for _, u := range all {
		switch u.ID {
		case "u-old":
			if !reflect.DeepEqual(u.Orgs, want) {
				t.Errorf("ListUsers, old record: %+v", u.Orgs)
			}
		case "u-none":
			if u.Orgs != nil || !u.Superuser {
				t.Errorf("ListUsers, old record of a user in no org: %+v", u)
			}
		}
	}

	// A write stores the new shape; the org it adds gets no copy of the old global values.
	_, err = s.UpdateUser(ctx, "u-old", func(u *store.User) error {
		u.OrgRoles["third"] = policy.Viewer
		u.Orgs["acme"] = store.UserOrg{Groups: []string{"acme-only"}}
		return nil
	})
	must(t, err)
	must(t, s.Close())
	s, err = Open(Options{Dir: dir})
	must(t, err)
	defer s.Close()
	var raw map[string]json.RawMessage
	must(t, s.db.View(func(txn *bdg.Txn) error {
		item, err := txn.Get([]byte(pUser + "u-old"))
		if err != nil {
			return err
		}
		return item.Value(func(b []byte) error { return json.Unmarshal(b, &raw) })
	}))
	if _, ok := raw["groups"]; ok {
		t.Errorf("record after a write still has global groups: %s", raw["groups"])
	}
	if _, ok := raw["attributes"]; ok {
		t.Errorf("record after a write still has global attributes: %s", raw["attributes"])
	}
	got, err = s.GetUser(ctx, "u-old")
	must(t, err)
	want = map[string]store.UserOrg{"acme": {Groups: []string{"acme-only"}}, "victim": slice, "beta": slice}
	if !reflect.DeepEqual(got.Orgs, want) || got.OrgRoles["third"] != policy.Viewer {
		t.Fatalf("after a write and a reopen: %+v", got)
	}
}
