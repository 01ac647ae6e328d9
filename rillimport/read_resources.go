package rillimport

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// bindings collects every project role binding of each user, their own and their groups', with
// the resources Rill limits it to (migration 0089: restrict_resources, resources), so that
// restrict applies Rill's rule over all of them at once.
type bindings struct {
	// by user id, then project key: the user's own binding first, then the groups' by group name.
	own    map[string]map[string]policy.Grant
	groups map[string]map[string][]groupGrant
}

type groupGrant struct {
	group string
	grant policy.Grant
}

// resourcesColumns is the SELECT list part reading a binding's restriction: false and [] on a
// database from before 0089.
func (r *reader) resourcesColumns(table string) string {
	restrict, resources := "false", "'[]'::jsonb"
	if r.cols[table+".restrict_resources"] {
		restrict = "restrict_resources"
	}
	if r.cols[table+".resources"] {
		resources = "resources"
	}
	return restrict + ", " + resources + "::text"
}

// add records one binding; group is "" for the user's own.
func (b *bindings) add(uid, key, group string, g policy.Grant) {
	if group == "" {
		if b.own == nil {
			b.own = map[string]map[string]policy.Grant{}
		}
		if b.own[uid] == nil {
			b.own[uid] = map[string]policy.Grant{}
		}
		b.own[uid][key] = g
		return
	}
	if b.groups == nil {
		b.groups = map[string]map[string][]groupGrant{}
	}
	if b.groups[uid] == nil {
		b.groups[uid] = map[string][]groupGrant{}
	}
	b.groups[uid][key] = append(b.groups[uid][key], groupGrant{group, g})
}

// restrict sets each user's Restricted as Rill's getResourceRestrictionsForUser
// (admin/server/deployment.go) resolves it: restricted on a project only if every binding
// there is, to the union of their resources. It counts the restricted users' projects.
func (b *bindings) restrict(users map[string]*store.User) int {
	n := 0
	for uid, u := range users {
		keys := map[string]bool{}
		for k := range b.own[uid] {
			keys[k] = true
		}
		for k := range b.groups[uid] {
			keys[k] = true
		}
		for key := range keys {
			var gs []policy.Grant
			if g, ok := b.own[uid][key]; ok {
				gs = append(gs, g)
			}
			grp := slices.Clone(b.groups[uid][key])
			slices.SortStableFunc(grp, func(x, y groupGrant) int { return strings.Compare(x.group, y.group) })
			for _, g := range grp {
				gs = append(gs, g.grant)
			}
			restricted, resources := policy.MergeGrants(gs)
			if !restricted {
				continue
			}
			if u.Restricted == nil {
				u.Restricted = map[string]store.Restricted{}
			}
			u.Restricted[key] = store.Restricted{Resources: resources}
			n++
		}
	}
	return n
}

// parseResources reads a binding's resources JSONB: Rill's database.ResourceName list,
// [{"type": "rill.runtime.v1.Explore", "name": "..."}].
func parseResources(raw string) ([]token.ResourceName, error) {
	var rs []token.ResourceName
	if err := json.Unmarshal([]byte(raw), &rs); err != nil {
		return nil, fmt.Errorf("resources is not a list of {type, name}: %w", err)
	}
	return rs, nil
}
