package badger

import (
	"context"
	"fmt"

	"github.com/rill-authd/rill-authd/store"
)

// SetSigninRules implements store.SigninRulesStore: the rules are part of the org record.
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
// one write, an org change in the feed.
func (s *DB) setOrgSetting(ctx context.Context, org string, set func(*store.Org)) (store.Org, error) {
	var o store.Org
	err := s.write(ctx, func(w *wtxn) error {
		if err := getJSON(w.Txn, pOrg+org, &o); err != nil {
			return fmt.Errorf("org %s: %w", org, err)
		}
		set(&o)
		if err := putJSON(w.Txn, pOrg+org, o); err != nil {
			return err
		}
		return w.change(store.ChangeOrg, store.OpPut, org)
	})
	return o, err
}
