package store

import (
	"testing"
	"time"
)

// TestAffectsDecisions: a cached decision can depend on every record but an org; a token put
// may be new constraints on a cached token (SetTokenLimits), so it counts.
func TestAffectsDecisions(t *testing.T) {
	cases := []struct {
		kind ChangeKind
		op   ChangeOp
		want bool
	}{
		{ChangeOrg, OpPut, false},
		{ChangeProject, OpPut, true},
		{ChangeToken, OpPut, true},
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

// TestResetNotice: a reset is outside the sequence, says so, and is no key change (a cache
// re-checks what it holds for it, instead of treating it as a signing-key delete).
func TestResetNotice(t *testing.T) {
	c := ResetNotice(time.Now())
	if !c.IsReset() || c.Seq != 0 || c.Kind == ChangeKey {
		t.Errorf("ResetNotice = %+v", c)
	}
	for _, k := range []ChangeKind{ChangeOrg, ChangeProject, ChangeUser, ChangeService, ChangeToken, ChangeKey} {
		if (Change{Kind: k, Op: OpDelete, ID: "*"}).IsReset() {
			t.Errorf("a %s delete is a reset", k)
		}
	}
}

func TestProjectOf(t *testing.T) {
	if org, p, ok := (Change{Kind: ChangeProject, ID: "acme/web"}).ProjectOf(); !ok || org != "acme" || p != "web" {
		t.Errorf("ProjectOf acme/web = %q %q %v", org, p, ok)
	}
	if _, _, ok := (Change{Kind: ChangeUser, ID: "acme/web"}).ProjectOf(); ok {
		t.Error("ProjectOf a user change is ok")
	}
}
