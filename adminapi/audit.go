package adminapi

import (
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/rill-authd/rill-authd/store"
)

func (a *API) listAudit(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := c.superuser(); err != nil {
		return err
	}
	q := r.URL.Query()
	f := store.AuditFilter{Actor: q.Get("actor"), Limit: 100}
	if s := q.Get("since"); s != "" {
		if d, err := time.ParseDuration(s); err == nil {
			f.Since = a.now().Add(-d)
		} else if t, err := time.Parse(time.RFC3339, s); err == nil {
			f.Since = t
		} else {
			return errf(http.StatusBadRequest, "since %q is neither a duration (24h) nor an RFC 3339 time", s)
		}
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 10000 {
			return errf(http.StatusBadRequest, "limit %q must be a number from 1 to 10000", l)
		}
		f.Limit = n
	}
	evs, err := a.st.ListAudit(r.Context(), f)
	return writeList(w, wireList(evs, wireAuditEvent), err)
}

// tokenLabelRe reads a TokenLabel back from the start of an audit event's Detail.
var tokenLabelRe = regexp.MustCompile(`^token (rill_[a-z]{3}_[0-9A-Za-z]{1,16})…(?: ("(?:[^"\\]|\\.)*"))?`)

// TokenLabel names a token as lists do, by its display prefix and display name: the start of
// the audit Detail of a token's issue and revocation (token rill_usr_AbCdEfGhIj… "laptop").
func TokenLabel(prefix, name string) string {
	if name == "" {
		return "token " + prefix + "…"
	}
	return "token " + prefix + "… " + strconv.Quote(name)
}

// ParseTokenLabel reads the display prefix and name of a token from an audit Detail that
// starts with a TokenLabel; ok is false when it does not.
func ParseTokenLabel(detail string) (prefix, name string, ok bool) {
	m := tokenLabelRe.FindStringSubmatch(detail)
	if m == nil {
		return "", "", false
	}
	if m[2] != "" {
		if name, err := strconv.Unquote(m[2]); err == nil {
			return m[1], name, true
		}
	}
	return m[1], "", true
}
