package console

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// perPage is how many rows a list page shows: a list of 10,000 rows is read whole from the API
// (in-process) and searched here, but only a page of it is rendered.
const perPage = 50

// listPage is the search box and pager of one list: ?q= keeps the rows whose shown text
// contains every word of it (any case); ?page= picks a page of perPage rows.
type listPage struct {
	Path  string     // the page, for the search form's action
	Keep  url.Values // the page's other parameters (org, filters), kept by search and pager
	Q     string
	Total int // rows in the list
	Found int // rows matching Q
	Page  int
	Last  int
	First int // 1-based number of the first row shown (0: none)
	Until int // number of the last row shown
	Prev  string
	Next  string
	Label string // what the rows are ("tokens"), for the search box's label
}

// Of is n and the rows' noun, singular for one: "1 token", "10,000 tokens".
func (l listPage) Of(n int) string {
	if n == 1 {
		return "1 " + strings.TrimSuffix(l.Label, "s")
	}
	return num(n) + " " + l.Label
}

// ClearURL is the list without the search.
func (l listPage) ClearURL() string {
	if len(l.Keep) == 0 {
		return l.Path
	}
	return l.Path + "?" + l.Keep.Encode()
}

// Searching reports whether a search narrowed the list.
func (l listPage) Searching() bool { return l.Q != "" }

// Paged reports whether the list has more than one page.
func (l listPage) Paged() bool { return l.Last > 1 }

// KeepFields are the hidden fields the search form sends again.
func (l listPage) KeepFields() []struct{ Name, Value string } {
	var out []struct{ Name, Value string }
	for k, vs := range l.Keep {
		for _, v := range vs {
			out = append(out, struct{ Name, Value string }{k, v})
		}
	}
	return out
}

// searchWords is q lowered and split into words: a row matches when its text has them all.
func searchWords(q string) []string { return strings.Fields(strings.ToLower(q)) }

func matches(words []string, text string) bool {
	if len(words) == 0 {
		return true
	}
	text = strings.ToLower(text)
	for _, w := range words {
		if !strings.Contains(text, w) {
			return false
		}
	}
	return true
}

// paginate searches rows (text gives a row's searchable text: what its row shows) and cuts
// out the page r asks for (?q=, ?page=); keep holds the page's other parameters. A nil text
// is a list that is filtered otherwise (the audit log's fields): it is paged only.
func paginate[T any](r *http.Request, path, label string, keep url.Values, rows []T, text func(*T) string) ([]T, listPage) {
	q := strings.TrimSpace(r.FormValue("q"))
	if text == nil {
		q = ""
	}
	l := listPage{Path: path, Keep: keep, Q: q, Total: len(rows), Label: label}
	found := rows
	if words := searchWords(q); len(words) > 0 && text != nil {
		found = make([]T, 0, len(rows)/4)
		for i := range rows {
			if matches(words, text(&rows[i])) {
				found = append(found, rows[i])
			}
		}
	}
	l.Found = len(found)
	l.Last = max(1, (len(found)+perPage-1)/perPage)
	page, _ := strconv.Atoi(r.FormValue("page"))
	l.Page = min(max(page, 1), l.Last)
	lo, hi := (l.Page-1)*perPage, min(l.Page*perPage, len(found))
	if lo < hi {
		l.First, l.Until = lo+1, hi
	}
	link := func(p int) string {
		v := url.Values{}
		for k, vs := range keep {
			v[k] = vs
		}
		if q != "" {
			v.Set("q", q)
		}
		if p > 1 {
			v.Set("page", strconv.Itoa(p))
		}
		if len(v) == 0 {
			return path
		}
		return path + "?" + v.Encode()
	}
	if l.Page > 1 {
		l.Prev = link(l.Page - 1)
	}
	if l.Page < l.Last {
		l.Next = link(l.Page + 1)
	}
	return found[lo:hi], l
}

// orgKeep is the parameters that keep a list page on its org.
func (v *view) orgKeep() url.Values { return url.Values{"org": {v.Org}} }
