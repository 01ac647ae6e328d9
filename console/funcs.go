package console

import (
	"encoding/json"
	"html/template"
	"maps"
	"slices"
	"strconv"
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
	"plural": plural,
	"num":    num,
	// roles lists a role map as sorted "key: role" lines.
	"roles": func(m map[string]string) []string {
		out := make([]string, 0, len(m))
		for _, k := range slices.Sorted(maps.Keys(m)) {
			out = append(out, k+": "+m[k])
		}
		return out
	},
	"attrs":        attrsJSON,
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

// attrsJSON is attributes on one line, as lists show them.
func attrsJSON(m map[string]any) string {
	if len(m) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// num writes n with thousands separators (10,000).
func num(n int) string {
	s := strconv.Itoa(n)
	if n < 0 {
		return "-" + num(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// plural is one when n is exactly 1, else many: the overview's cards read "1 live user token",
// "1 check allowed", not "1 checks".
func plural(n any, one, many string) string {
	var is1 bool
	switch v := n.(type) {
	case int:
		is1 = v == 1
	case uint64:
		is1 = v == 1
	case float64:
		is1 = v == 1
	}
	if is1 {
		return one
	}
	return many
}
