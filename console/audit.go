package console

import (
	"bufio"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
)

type member struct {
	apiv1.User
	OrgRole      string
	ProjectRoles []string // "project: role" in this org
	Attributes   string
}

func (c *Console) members(w http.ResponseWriter, v *view) error {
	v.Nav, v.Title = "members", "Members"
	if err := v.useOrg(); err != nil {
		return err
	}
	if v.Org == "" {
		return &apiError{Status: http.StatusForbidden, Message: "you are a member of no org"}
	}
	var users []apiv1.User
	if err := v.call("GET", "/v1/users", url.Values{"org": {v.Org}}, nil, &users); err != nil {
		return err
	}
	out := make([]member, 0, len(users))
	for _, u := range users {
		m := member{User: u, OrgRole: u.OrgRoles[v.Org], Attributes: prettyJSON(u.Attributes)}
		if len(u.Attributes) == 0 {
			m.Attributes = ""
		}
		for k, r := range u.ProjectRoles {
			if p, ok := strings.CutPrefix(k, v.Org+"/"); ok {
				m.ProjectRoles = append(m.ProjectRoles, p+": "+r)
			}
		}
		slices.Sort(m.ProjectRoles)
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b member) int { return strings.Compare(a.Email, b.Email) })
	v.Data = out
	c.render(w, v, "members", http.StatusOK)
	return nil
}

// --- audit log

const auditPageSize = 50

type auditQuery struct {
	Actor, Action, Target, Outcome, From, To string
	from, to                                 time.Time
	Page                                     int
}

type auditData struct {
	Q          auditQuery
	Events     []apiv1.AuditEvent
	Total      int
	Page, Last int
	PrevURL    string
	NextURL    string
	CSVURL     string
	Capped     bool
}

// timeLayout is what <input type="datetime-local"> sends; the console reads it as UTC.
const timeLayout = "2006-01-02T15:04"

func parseAuditQuery(q url.Values) (auditQuery, string) {
	a := auditQuery{Actor: strings.TrimSpace(q.Get("actor")), Action: strings.TrimSpace(q.Get("action")),
		Target: strings.TrimSpace(q.Get("target")), Outcome: q.Get("outcome"), From: q.Get("from"), To: q.Get("to")}
	a.Page, _ = strconv.Atoi(q.Get("page"))
	a.Page = max(a.Page, 1)
	var err error
	if a.From != "" {
		if a.from, err = time.Parse(timeLayout, a.From); err != nil {
			return a, "“From” is not a date and time (YYYY-MM-DDTHH:MM)."
		}
	}
	if a.To != "" {
		if a.to, err = time.Parse(timeLayout, a.To); err != nil {
			return a, "“To” is not a date and time (YYYY-MM-DDTHH:MM)."
		}
	}
	return a, ""
}

func (a auditQuery) values() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"actor": a.Actor, "action": a.Action, "target": a.Target, "outcome": a.Outcome, "from": a.From, "to": a.To} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

func (a auditQuery) match(e apiv1.AuditEvent) bool {
	switch {
	case a.Actor != "" && !strings.Contains(e.Actor, a.Actor),
		a.Action != "" && !strings.Contains(e.Action, a.Action),
		a.Target != "" && !strings.Contains(e.Target, a.Target),
		a.Outcome == "ok" && e.Outcome != "ok",
		a.Outcome == "denied" && !strings.HasPrefix(e.Outcome, "denied"),
		a.Outcome == "other" && (e.Outcome == "ok" || strings.HasPrefix(e.Outcome, "denied")),
		!a.to.IsZero() && e.Time.After(a.to):
		return false
	}
	return true
}

// auditLimit is how many of the newest events the console reads per query (the API's most).
const auditLimit = 10000

// events reads the newest auditLimit events since From from the API (superusers only) and keeps
// the matching ones, newest first.
func (v *view) events(a auditQuery) ([]apiv1.AuditEvent, bool, error) {
	q := url.Values{"limit": {strconv.Itoa(auditLimit)}}
	if !a.from.IsZero() {
		q.Set("since", a.from.UTC().Format(time.RFC3339))
	}
	var evs []apiv1.AuditEvent
	if err := v.call("GET", "/v1/audit", q, nil, &evs); err != nil {
		return nil, false, err
	}
	out := make([]apiv1.AuditEvent, 0, len(evs))
	for i := len(evs) - 1; i >= 0; i-- {
		if a.match(evs[i]) {
			out = append(out, evs[i])
		}
	}
	return out, len(evs) == auditLimit, nil
}

func (c *Console) audit(w http.ResponseWriter, v *view) error {
	v.Nav, v.Title = "audit", "Audit log"
	a, bad := parseAuditQuery(v.r.URL.Query())
	d := auditData{Q: a}
	if bad != "" {
		v.Flash = &flash{Error: bad}
		v.Data = d
		c.render(w, v, "audit", http.StatusBadRequest)
		return nil
	}
	evs, capped, err := v.events(a)
	if err != nil {
		return err
	}
	d.Total, d.Capped = len(evs), capped
	d.Last = max(1, (len(evs)+auditPageSize-1)/auditPageSize)
	d.Page = min(a.Page, d.Last)
	d.Events = evs[min((d.Page-1)*auditPageSize, len(evs)):min(d.Page*auditPageSize, len(evs))]
	q := a.values()
	d.CSVURL = Prefix + "/audit.csv?" + q.Encode()
	if d.Page > 1 {
		q.Set("page", strconv.Itoa(d.Page-1))
		d.PrevURL = Prefix + "/audit?" + q.Encode()
	}
	if d.Page < d.Last {
		q.Set("page", strconv.Itoa(d.Page+1))
		d.NextURL = Prefix + "/audit?" + q.Encode()
	}
	v.Data = d
	c.render(w, v, "audit", http.StatusOK)
	return nil
}

// auditCSV exports every event the filters match (not only one page).
func (c *Console) auditCSV(w http.ResponseWriter, r *http.Request) {
	c.page(func(w http.ResponseWriter, v *view) error {
		a, bad := parseAuditQuery(v.r.URL.Query())
		if bad != "" {
			return &apiError{Status: http.StatusBadRequest, Message: bad}
		}
		evs, _, err := v.events(a)
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="rill-authd-audit.csv"`)
		bw := bufio.NewWriter(w)
		writeCSVRow(bw, "time", "actor", "action", "target", "outcome", "detail")
		for _, e := range evs {
			writeCSVRow(bw, e.Time.UTC().Format(time.RFC3339Nano), e.Actor, e.Action, e.Target, e.Outcome, e.Detail)
		}
		return bw.Flush()
	})(w, r)
}

// writeCSVRow writes one RFC 4180 record with every field quoted and defused (cell), so a
// spreadsheet reads each field as text however it splits the line.
func writeCSVRow(w *bufio.Writer, fields ...string) {
	for i, f := range fields {
		if i > 0 {
			w.WriteByte(',')
		}
		w.WriteByte('"')
		w.WriteString(strings.ReplaceAll(cell(f), `"`, `""`))
		w.WriteByte('"')
	}
	w.WriteString("\r\n")
}

// csvSeparators are the characters a spreadsheet may split a CSV line on (its locale's list
// separator, a tab, a pipe) or that end a quoted part of a cell: what follows one of them may
// start a cell of its own.
const csvSeparators = ",;\t|\r\n\""

// cell defuses a value a spreadsheet would run as a formula (CSV injection): a = + - @ tab or CR
// at the start or after any separator (csvSeparators) gets a quote before it. Defusing only the
// start was not enough: "x;=1+1;@evil" is three cells, two of them formulas, to a spreadsheet
// that splits on ';' (third red team).
func cell(s string) string {
	var b strings.Builder
	start := true
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if start && strings.IndexByte("=+-@\t\r", ch) >= 0 {
			b.WriteByte('\'')
		}
		b.WriteByte(ch)
		start = strings.IndexByte(csvSeparators, ch) >= 0
	}
	return b.String()
}
