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
	if err := store.CheckFields("sign-in rules", r); err != nil {
		return store.Org{}, fmt.Errorf("set sign-in rules of org %s: %w", org, err)
	}
	var o store.Org
	err := s.write(ctx, func(w *wtxn) error {
		if err := getJSON(w.Txn, pOrg+org, &o); err != nil {
			return fmt.Errorf("org %s: %w", org, err)
		}
		o.SigninRules = r
		if err := putJSON(w.Txn, pOrg+org, o); err != nil {
			return err
		}
		return w.change(store.ChangeOrg, store.OpPut, org)
	})
	if err != nil {
		return store.Org{}, fmt.Errorf("set sign-in rules of org %s: %w", org, err)
	}
	return o, nil
}
