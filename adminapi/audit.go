package adminapi

import (
	"net/http"
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
