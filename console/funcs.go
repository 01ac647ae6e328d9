package console

import (
	"encoding/json"
	"html/template"
	"maps"
	"slices"
	"time"
)

// funcs are the templates' helpers. Times are shown in UTC, with the zone, to every reader alike.
var funcs = template.FuncMap{
	"when":   when,
	"whenOr": whenOr,
	"whenSec": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05")
	},
	"minute": func(t time.Time) string { return t.UTC().Format("15:04") },
	"since":  func(t, now time.Time) string { return now.Sub(t).Round(100 * time.Millisecond).String() },
	"count":  fmtCount,
	// roles lists a role map as sorted "key: role" lines.
	"roles": func(m map[string]string) []string {
		out := make([]string, 0, len(m))
		for _, k := range slices.Sorted(maps.Keys(m)) {
			out = append(out, k+": "+m[k])
		}
		return out
	},
	"attrs": func(m map[string]any) string {
		if len(m) == 0 {
			return "{}"
		}
		b, _ := json.Marshal(m)
		return string(b)
	},
	"orgRoles":     func() []string { return []string{"admin", "editor", "viewer", "guest"} },
	"projectRoles": func() []string { return []string{"admin", "editor", "viewer"} },
	// attrField is the attributes textarea's state: what was sent (else the current value)
	// and the error about it.
	"attrField": func(sent, errMsg, current string) map[string]string {
		v := sent
		if v == "" && errMsg == "" {
			v = current
		}
		return map[string]string{"Value": v, "Error": errMsg}
	},
}

func when(t time.Time) string { return whenOr(t, "—") }

func whenOr(t time.Time, none string) string {
	if t.IsZero() {
		return none
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}
