package console

import (
	"bufio"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rill-authd/rill-authd/adminapi"
	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/token"
)

type member struct {
	apiv1.User
	OrgRole string
	// Provisioned: the org role is the sign-in rules' (see apiv1.UserOrg).
	Provisioned  *apiv1.Provisioned
	ProjectRoles []string // "project: role" in this org
	Attributes   string
}

type membersData struct {
	List    listPage
	Members []member
}

// text is what search looks in: what the member's row shows.
func (m *member) text() string {
	t := m.Email + " " + m.DisplayName + " " + m.OrgRole + " " + strings.Join(m.ProjectRoles, " ") + " " + strings.Join(m.Groups, " ") + " " + m.Attributes
	if m.Superuser {
		t += " superuser"
	}
	return t
}

func (c *Console) members(w http.ResponseWriter, v *view) error {
	v.Nav, v.Title = "members", "Members"
	if err := v.useOrg("members"); err != nil {
		return err
	}
	var users []apiv1.User
	if err := v.call("GET", "/v1/users", url.Values{"org": {v.Org}}, nil, &users); err != nil {
		return err
	}
	all := make([]member, 0, len(users))
	for _, u := range users {
		m := member{User: u, OrgRole: u.OrgRoles[v.Org], Provisioned: u.Orgs[v.Org].Provisioned, Attributes: prettyJSON(u.Attributes)}
		if len(u.Attributes) == 0 {
			m.Attributes = ""
		}
		for k, r := range u.ProjectRoles {
			if p, ok := strings.CutPrefix(k, v.Org+"/"); ok {
				m.ProjectRoles = append(m.ProjectRoles, p+": "+r)
			}
		}
		slices.Sort(m.ProjectRoles)
		all = append(all, m)
	}
	slices.SortFunc(all, func(a, b member) int { return strings.Compare(a.Email, b.Email) })
	d := membersData{}
	d.Members, d.List = paginate(v.r, Prefix+"/members", "members", v.orgKeep(), all, (*member).text)
	v.Data = d
	c.render(w, v, "members", http.StatusOK)
	return nil
}

// --- audit log

type auditQuery struct {
	Actor, Action, Target, Outcome, From, To string
	from, to                                 time.Time
}

type auditData struct {
	Q      auditQuery
	List   listPage
	Events []auditRow
	CSVURL string
	Capped bool
}

// auditRow is an event as the table shows it: its tokens named as lists name them.
type auditRow struct {
	apiv1.AuditEvent
	Target, Detail []textPart
}

// auditTimeLayouts are what From and To take: UTC, 24-hour, ISO 8601 (a space or a T between
// date and time; seconds optional; a date alone).
var auditTimeLayouts = []string{"2006-01-02 15:04", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02"}

// timeLayout is how the fields show a time again.
const timeLayout = "2006-01-02 15:04"

// parseUTC reads a From or To field as UTC. A To names its whole minute (or day): the events
// in it are kept.
func parseUTC(label, s string, to bool) (time.Time, string, error) {
	t := strings.TrimSpace(s)
	for _, z := range []string{"Z", "z", " UTC", "UTC", " utc"} {
		t = strings.TrimSuffix(t, z)
	}
	for i, l := range auditTimeLayouts {
		v, err := time.ParseInLocation(l, t, time.UTC)
		if err != nil {
			continue
		}
		shown := v.Format(timeLayout)
		if l == "2006-01-02" {
			shown = v.Format(l)
		} else if i >= 2 {
			shown = v.Format("2006-01-02 15:04:05")
		}
		if to {
			switch {
			case l == "2006-01-02":
				v = v.Add(24*time.Hour - 1)
			case i < 2:
				v = v.Add(time.Minute - 1)
			default:
				v = v.Add(time.Second - 1)
			}
		}
		return v, shown, nil
	}
	return time.Time{}, s, fmt.Errorf("“%s” must be a date and time in UTC, 24-hour, as YYYY-MM-DD HH:MM (like 2026-01-02 15:04) or YYYY-MM-DD; %q is not one", label, s)
}

func parseAuditQuery(q url.Values) (auditQuery, string) {
	a := auditQuery{Actor: strings.TrimSpace(q.Get("actor")), Action: strings.TrimSpace(q.Get("action")),
		Target: strings.TrimSpace(q.Get("target")), Outcome: q.Get("outcome"), From: q.Get("from"), To: q.Get("to")}
	var err error
	if strings.TrimSpace(a.From) != "" {
		if a.from, a.From, err = parseUTC("From", a.From, false); err != nil {
			return a, err.Error()
		}
	}
	if strings.TrimSpace(a.To) != "" {
		if a.to, a.To, err = parseUTC("To", a.To, true); err != nil {
			return a, err.Error()
		}
	}
	if !a.from.IsZero() && !a.to.IsZero() && a.to.Before(a.from) {
		return a, "“To” (" + a.To + ") is before “From” (" + a.From + ")."
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
	d.Capped = capped
	q := a.values()
	d.CSVURL = Prefix + "/audit.csv?" + q.Encode()
	var page []apiv1.AuditEvent
	page, d.List = paginate(v.r, Prefix+"/audit", "events", q, evs, nil)
	d.Events = c.nameTokens(v, evs, page)
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

// textPart is a piece of an audit cell: text, or a token named as lists name it (display
// prefix and name), its UUID kept in the title.
type textPart struct {
	Text             string
	Prefix, Name, ID string // a token
}

// tokenName is a token's display prefix and display name.
type tokenName struct{ Prefix, Name string }

var uuidRe = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// nameTokens makes the rows of page (a page of all, the events read): every token an event
// names by UUID is named as lists name it. Names come from the label the API writes in the
// Detail of a token's issue and revocation (so a revoked token keeps its name: an issue names
// the token in its later events too), then, for events without one (older events, the
// token.use summaries), from the store while the token lives. A token known by neither keeps
// its UUID.
func (c *Console) nameTokens(v *view, all, page []apiv1.AuditEvent) []auditRow {
	known := map[string]tokenName{}
	for _, e := range all {
		if p, n, ok := adminapi.ParseTokenLabel(e.Detail); ok {
			if m := tokenRef.FindStringSubmatch(e.Target); m != nil {
				known[m[1]] = tokenName{p, n}
			}
		}
	}
	lookup := func(id string) (tokenName, bool) {
		if n, ok := known[id]; ok {
			return n, n.Prefix != ""
		}
		known[id] = tokenName{} // asked once per page
		if c.o.Store == nil {
			return tokenName{}, false
		}
		tid, err := token.ParseID(id)
		if err != nil {
			return tokenName{}, false
		}
		t, err := c.o.Store.GetToken(v.r.Context(), tid)
		if err != nil {
			return tokenName{}, false
		}
		known[id] = tokenName{t.Prefix, t.DisplayName}
		return known[id], true
	}
	rows := make([]auditRow, len(page))
	for i, e := range page {
		detail := e.Detail
		if _, _, ok := adminapi.ParseTokenLabel(detail); ok && tokenRef.MatchString(e.Target) {
			// The target names the token now: the label need not be said twice.
			if _, after, found := strings.Cut(detail, "; "); found {
				detail = after
			} else {
				detail = ""
			}
		}
		rows[i] = auditRow{AuditEvent: e, Target: split(e.Target, tokenRef, lookup), Detail: split(detail, uuidRe, lookup)}
	}
	return rows
}

// tokenRef is a token named in an audit target.
var tokenRef = regexp.MustCompile(`token:(` + uuidRe.String() + `)`)

// split cuts s at the matches of re (its first group, or the whole match, a token's UUID) into
// text and the tokens lookup can name.
func split(s string, re *regexp.Regexp, lookup func(string) (tokenName, bool)) []textPart {
	var out []textPart
	last := 0
	for _, m := range re.FindAllStringSubmatchIndex(s, -1) {
		idLo, idHi := m[0], m[1]
		if len(m) >= 4 && m[2] >= 0 {
			idLo, idHi = m[2], m[3]
		}
		n, ok := lookup(s[idLo:idHi])
		if !ok {
			continue
		}
		if m[0] > last {
			out = append(out, textPart{Text: s[last:m[0]]})
		}
		out = append(out, textPart{Prefix: n.Prefix, Name: n.Name, ID: s[idLo:idHi]})
		last = m[1]
	}
	if last < len(s) {
		out = append(out, textPart{Text: s[last:]})
	}
	return out
}
