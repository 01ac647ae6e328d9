package store

import "testing"

// TestAffectsDecisions: a cached decision can depend on every record but a token, org or
// project that did not exist yet, so only their creation leaves caches alone.
func TestAffectsDecisions(t *testing.T) {
	cases := []struct {
		kind ChangeKind
		op   ChangeOp
		want bool
	}{
		{ChangeOrg, OpPut, false},
		{ChangeProject, OpPut, true},
		{ChangeToken, OpPut, false},
		{ChangeUser, OpPut, true},
		{ChangeService, OpPut, true},
		{ChangeKey, OpPut, true},
		{ChangeOrg, OpDelete, true},
		{ChangeProject, OpDelete, true},
		{ChangeToken, OpDelete, true},
		{ChangeUser, OpDelete, true},
		{ChangeService, OpDelete, true},
		{ChangeKey, OpDelete, true},
	}
	for _, c := range cases {
		if got := (Change{Kind: c.kind, Op: c.op}).AffectsDecisions(); got != c.want {
			t.Errorf("%s %s: AffectsDecisions = %v, want %v", c.kind, c.op, got, c.want)
		}
	}
}
