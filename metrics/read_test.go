package metrics

import "testing"

func TestCheckTotals(t *testing.T) {
	var none *Metrics
	if got := none.CheckTotals(); got.Allowed != 0 || got.Reasons == nil {
		t.Fatalf("nil metrics: %+v", got)
	}
	m := New()
	m.Check(ResultAllowed, KindUser, "ok", 0)
	m.Check(ResultAllowed, KindService, "ok", 0)
	m.Check(ResultDenied, KindUser, "revoked", 0)
	m.Check(ResultDenied, KindNone, "missing", 0)
	m.Check(ResultDenied, KindNone, "missing", 0)
	m.Check(ResultError, KindUser, "unavailable", 0)
	got := m.CheckTotals()
	if got.Allowed != 2 || got.Denied != 3 || got.Errors != 1 ||
		got.Reasons["missing"] != 2 || got.Reasons["revoked"] != 1 || got.Reasons["unavailable"] != 1 || got.Reasons["ok"] != 0 {
		t.Fatalf("totals: %+v", got)
	}
}
