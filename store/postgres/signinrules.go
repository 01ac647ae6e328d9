package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/rill-authd/rill-authd/store"
)

// SetSigninRules implements store.SigninRulesStore: the rules are part of the org record
// (orgs.doc, "signin_rules"; migration 0011).
func (s *DB) SetSigninRules(ctx context.Context, org string, r store.SigninRules) (store.Org, error) {
	if err := r.Validate(); err != nil {
		return store.Org{}, fmt.Errorf("set sign-in rules of org %s: %w", org, err)
	}
	o, err := s.setOrgSetting(ctx, org, func(o *store.Org) { o.SigninRules = r })
	if err != nil {
		return store.Org{}, fmt.Errorf("set sign-in rules of org %s: %w", org, err)
	}
	return o, nil
}

// setOrgSetting changes a setting the org record holds (its token policy, its sign-in rules):
// one write, an org change in the feed. Its error is the store's (unavail).
func (s *DB) setOrgSetting(ctx context.Context, org string, set func(*store.Org)) (store.Org, error) {
	var o store.Org
	err := s.write(ctx, func(w *wtx) error {
		if err := getDoc(ctx, w, &o, "SELECT doc FROM orgs WHERE name = $1 FOR UPDATE", org); err != nil {
			return fmt.Errorf("org %s: %w", org, err)
		}
		set(&o)
		doc, err := json.Marshal(o)
		if err != nil {
			return fmt.Errorf("encode org: %w", err)
		}
		if _, err := w.Exec(ctx, "UPDATE orgs SET doc = $2 WHERE name = $1", org, doc); err != nil {
			return err
		}
		w.change(store.ChangeOrg, store.OpPut, org)
		return nil
	})
	return o, unavail(err)
}
