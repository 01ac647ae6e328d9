package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/rill-authd/rill-authd/token"
)

// KindMagic is the principal of a magic token (rill_mgc_): a public URL.
const KindMagic Kind = "magic"

// MagicPerms are what a magic token holds on its one project, and nowhere else: Rill's
// magic auth token claims grant read_project and read_prod on the token's project only
// (rilldata/rill admin/server/auth/claims.go, magic auth token ProjectPermissions; the
// permissions of admin/permissions.go). On the project's org it holds read_org alone, as a
// guest (OrganizationPermissionsForMagicAuthToken).
const MagicPerms = ReadProject | ReadProd

// MagicRules are the security rules of a magic token, built as Rill's
// securityRulesFromMagicAuthToken builds them (rilldata/rill admin/server/runtime_jwt.go): with
// no resources an access rule with allow false (deny-all), else one transitive access per
// resource, in order (none skipped); then a row filter per metrics view filter (the filter of
// "*" on every metrics view, Rill's older single filter; any other on that metrics view alone);
// then, when fields are given, one field access allowing exactly those. Rill ranges over a Go
// map for the filters, so its order is random; ours is by metrics view name, one of Rill's
// orders (the runtime applies every rule, so order does not change what it allows). A filter
// with an empty metrics view name, or one protojson would not read, is an error, as in Rill.
func MagicRules(resources []token.ResourceName, filters map[string]string, fields []string) ([]token.SecurityRule, error) {
	var rules []token.SecurityRule
	if len(resources) == 0 {
		rules = append(rules, token.DenyAll())
	} else {
		for _, r := range resources {
			rules = append(rules, token.Transitive(r))
		}
	}
	mvs := make([]string, 0, len(filters))
	for mv := range filters {
		mvs = append(mvs, mv)
	}
	slices.Sort(mvs)
	for _, mv := range mvs {
		if mv == "" {
			return nil, errors.New("empty metrics view name in metrics view filter")
		}
		expr, err := token.CanonicalExpression([]byte(filters[mv]))
		if err != nil {
			return nil, fmt.Errorf("metrics view %q filter: %w", mv, err)
		}
		f := &token.RuleRowFilter{Expression: json.RawMessage(expr)}
		if mv != "*" {
			f.Resources = []token.ResourceName{{Kind: token.KindMetricsView, Name: mv}}
		}
		rules = append(rules, token.SecurityRule{RowFilter: f})
	}
	if len(fields) > 0 {
		rules = append(rules, token.SecurityRule{FieldAccess: &token.RuleFieldAccess{Fields: fields, Allow: true, Exclusive: true}})
	}
	return rules, nil
}
