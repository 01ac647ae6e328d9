package console

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
)

// ttlChoices are the expiry choices of the issue forms, in minutes (0: never).
var ttlChoices = []struct {
	Minutes int
	Label   string
}{{60 * 24 * 7, "7 days"}, {60 * 24 * 30, "30 days"}, {60 * 24 * 90, "90 days"}, {60 * 24 * 365, "1 year"}, {60, "1 hour"}, {60 * 24, "1 day"}, {0, "never (not recommended)"}}

// svcTTLChoices are ttlChoices for a service token: never first, as service tokens are meant
// for production systems (an org's token policy may refuse it, saying its limit).
var svcTTLChoices = append(ttlChoices[len(ttlChoices)-1:len(ttlChoices):len(ttlChoices)], ttlChoices[:len(ttlChoices)-1]...)

type myTokensData struct {
	List       listPage
	Rows       []tokenRow
	TTLChoices any
}

// tokenRow is a token as a list shows it, its times formatted once here (the search reads
// the same text the row shows).
type tokenRow struct {
	ID, Prefix, Name, Created, Expires, LastUsed string
	// LastUsedIP and LastUsedUserAgent are where the last use came from (empty: not known).
	LastUsedIP, LastUsedUserAgent string
	Current                       bool   // the session's own token
	Networks                      string // allowed networks, space-separated ("": anywhere)
	// Acting, for a token a superuser issued to act as a user (rillctl sudo user assume),
	// names both: "acting as bob@…, by alice@…".
	Acting string
	// EditNetworks is the networks form's value: the stored networks, or after a refused edit
	// of this row what was typed, with the form open (Edit) to fix it.
	EditNetworks string
	Edit         bool
}

// keepTyped puts a refused networks edit's typed value back in its row (f: the page's flash).
func keepTyped(rows []tokenRow, f *flash) []tokenRow {
	for i := range rows {
		rows[i].EditNetworks = rows[i].Networks
		if f != nil && f.Error != "" && f.Form != nil && f.Form.Get("id") == rows[i].ID && f.Form.Has("allowed_networks") {
			rows[i].EditNetworks, rows[i].Edit = f.Form.Get("allowed_networks"), true
		}
	}
	return rows
}

func tokenRows(toks []apiv1.TokenInfo, current string) []tokenRow {
	out := make([]tokenRow, len(toks))
	for i, t := range toks {
		out[i] = tokenRow{ID: t.ID, Prefix: t.Prefix, Name: t.DisplayName, Created: when(t.CreatedAt),
			Expires: whenOr(t.ExpiresAt, "never"), LastUsed: whenOr(t.LastUsedAt, "never"), Current: t.ID == current,
			LastUsedIP: t.LastUsedIP, LastUsedUserAgent: t.LastUsedUserAgent,
			Networks: strings.Join(t.AllowedNetworks, " "), Acting: acting(&t)}
	}
	return out
}

// acting is what a list says of a token a superuser issued to act as a user ("" for others).
func acting(t *apiv1.TokenInfo) string {
	if t.RepresentingEmail == "" {
		return ""
	}
	return "acting as " + t.RepresentingEmail + ", by " + t.IssuedBy
}

// tokenText is what search looks in: what names the token (its prefix and name). Dates are
// left out, so that a number typed finds names, not the minutes of times.
func tokenText(t *apiv1.TokenInfo) string { return t.Prefix + " " + t.DisplayName + " " + acting(t) }

func (c *Console) myTokens(w http.ResponseWriter, v *view) error {
	v.Nav, v.Title = "tokens", "My tokens"
	var toks []apiv1.TokenInfo
	if err := v.call("GET", "/v1/tokens", nil, nil, &toks); err != nil {
		return err
	}
	newestFirst(toks)
	d := myTokensData{TTLChoices: ttlChoices}
	var page []apiv1.TokenInfo
	page, d.List = paginate(v.r, Prefix+"/tokens", "tokens", nil, toks, tokenText)
	d.Rows = keepTyped(tokenRows(page, v.Who.TokenID), v.Flash) // only the rows shown are formatted
	v.Data = d
	c.render(w, v, "tokens", http.StatusOK)
	return nil
}

// newestFirst sorts tokens by creation, newest first.
func newestFirst(toks []apiv1.TokenInfo) {
	slices.SortStableFunc(toks, func(a, b apiv1.TokenInfo) int { return b.CreatedAt.Compare(a.CreatedAt) })
}

func (c *Console) issueMyToken(w http.ResponseWriter, v *view) error {
	name := strings.TrimSpace(v.r.PostForm.Get("display_name"))
	ttl, err := strconv.Atoi(v.r.PostForm.Get("ttl_minutes"))
	if err != nil {
		return v.back(w, Prefix+"/tokens", &flash{Error: "Choose when the token expires.", Field: "ttl_minutes", Form: v.r.PostForm})
	}
	if name == "" {
		return v.back(w, Prefix+"/tokens", &flash{Error: "Give the token a name, to tell it apart later.", Field: "display_name", Form: v.r.PostForm})
	}
	var issued apiv1.IssuedToken
	req := apiv1.TokenRequest{DisplayName: name, TTLMinutes: ttl, AllowedNetworks: networkList(v.r.PostForm.Get("allowed_networks"))}
	if err := v.call("POST", "/v1/tokens", nil, req, &issued); err != nil {
		field := "display_name"
		if strings.Contains(err.Error(), "allowed_networks") {
			field = "allowed_networks"
		}
		return v.refused(w, Prefix+"/tokens", field, err)
	}
	return v.back(w, Prefix+"/tokens", &flash{Notice: "Token " + issued.Prefix + "… issued.", Secret: &issued, SecretOwner: "you"})
}

func (c *Console) revokeMyToken(w http.ResponseWriter, v *view) error {
	id := v.r.PostForm.Get("id")
	var rev apiv1.Revoked
	if err := v.call("DELETE", "/v1/tokens/"+url.PathEscape(id), nil, nil, &rev); err != nil {
		return v.refused(w, Prefix+"/tokens", "", err)
	}
	return v.back(w, Prefix+"/tokens", &flash{Notice: "Token " + revokedNames(rev) + " revoked: it is refused from now on."})
}

// networkList reads a form's networks: CIDRs separated by spaces, commas or lines.
func networkList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
}

// editMyTokenNetworks changes where one of the user's tokens may be used (empty: anywhere).
func (c *Console) editMyTokenNetworks(w http.ResponseWriter, v *view) error {
	id := v.r.PostForm.Get("id")
	networks := networkList(v.r.PostForm.Get("allowed_networks"))
	if networks == nil {
		networks = []string{}
	}
	var t apiv1.TokenInfo
	if err := v.call("PATCH", "/v1/tokens/"+url.PathEscape(id), nil, apiv1.TokenLimitsEdit{AllowedNetworks: &networks}, &t); err != nil {
		return v.refused(w, Prefix+"/tokens", "", err)
	}
	return v.back(w, Prefix+"/tokens", &flash{Notice: "Token " + t.Prefix + "… may now be used from " + whereWords(t.AllowedNetworks, nil) + "."})
}

// whereWords says where a token may now be used, for a notice: "any network", "10.0.0.0/8
// only", and for a public URL the pages too ("any network, on pages of https://shop.example.com
// only").
func whereWords(networks, origins []string) string {
	where := "any network"
	if len(networks) > 0 {
		where = strings.Join(networks, ", ") + " only"
	}
	if len(origins) > 0 {
		where += ", on pages of " + strings.Join(origins, ", ") + " only"
	}
	return where
}

func revokedNames(rev apiv1.Revoked) string {
	var names []string
	for _, t := range rev.Revoked {
		n := t.Prefix + "…"
		if t.DisplayName != "" {
			n += " (" + t.DisplayName + ")"
		}
		names = append(names, n)
	}
	return strings.Join(names, ", ")
}

// --- token hygiene

// hygieneRow is one token as the hygiene page lists it, with its owner and what is wrong.
type hygieneRow struct {
	apiv1.TokenInfo
	Owner    string // service name or user email
	Ref      string // what the revoke form sends: svc|name|id or usr|email|id
	Findings []string
}

// text is what search looks in: the token's prefix, owner and name, and the findings.
func (h *hygieneRow) text() string {
	return h.Prefix + " " + h.Owner + " " + h.DisplayName + " " + strings.Join(h.Findings, " ")
}

type hygieneData struct {
	List                                  listPage
	Rows                                  []hygieneRow
	Days                                  int
	Show                                  string
	Never, Unused, Expiring, NoExpiry, In int
	Beyond                                int // tokens outliving their org's token policy
	UsersIncluded                         bool
}

// hygiene lists the org's tokens that need a look: never used, unused for Days, expiring within
// 7 days, without expiry, beyond the org's token policy. Service tokens and public URLs need
// manage_org on the org (the API's rule); users' tokens are listed to superusers only, as only
// they may manage another user's tokens.
func (c *Console) hygiene(w http.ResponseWriter, v *view) error {
	v.Nav, v.Title = "hygiene", "Token hygiene"
	if err := v.useOrg("hygiene"); err != nil {
		return err
	}
	days, err := strconv.Atoi(v.r.FormValue("days"))
	if err != nil || days < 1 || days > 3650 {
		days = 30
	}
	d := hygieneData{Days: days, Show: v.r.FormValue("show"), UsersIncluded: v.Who.Superuser}
	var svcs []apiv1.Service
	if err := v.call("GET", "/v1/orgs/"+url.PathEscape(v.Org)+"/services", nil, nil, &svcs); err != nil {
		return err
	}
	var all []hygieneRow
	for _, s := range svcs {
		var toks []apiv1.TokenInfo
		if err := v.call("GET", "/v1/orgs/"+url.PathEscape(v.Org)+"/services/"+url.PathEscape(s.Name)+"/tokens", nil, nil, &toks); err != nil {
			return err
		}
		for _, t := range toks {
			all = append(all, hygieneRow{TokenInfo: t, Owner: "service " + s.Name, Ref: "svc|" + s.Name + "|" + t.ID})
		}
	}
	// Public URLs too (an org admin manages every project's): a link that never expires, or
	// outlives the org's policy for public URLs, needs a look as much as a token does.
	projects, err := v.projects()
	if err != nil {
		return err
	}
	for _, p := range projects {
		var urls []apiv1.MagicToken
		if err := v.call("GET", v.magicPath(p), nil, nil, &urls); err != nil {
			return err
		}
		for _, m := range urls {
			t := apiv1.TokenInfo{ID: m.ID, Prefix: m.Prefix, Kind: "magic", DisplayName: m.DisplayName, CreatedAt: m.CreatedAt, ExpiresAt: m.ExpiresAt,
				LastUsedAt: m.LastUsedAt, LastUsedIP: m.LastUsedIP, LastUsedUserAgent: m.LastUsedUserAgent, BeyondPolicy: m.BeyondPolicy}
			all = append(all, hygieneRow{TokenInfo: t, Owner: "public URL of " + p, Ref: "mgc|" + p + "|" + m.ID})
		}
	}
	if v.Who.Superuser {
		var users []apiv1.User
		if err := v.call("GET", "/v1/users", url.Values{"org": {v.Org}}, nil, &users); err != nil {
			return err
		}
		for _, u := range users {
			var toks []apiv1.TokenInfo
			if err := v.call("GET", "/v1/tokens", url.Values{"user_email": {u.Email}}, nil, &toks); err != nil {
				return err
			}
			for _, t := range toks {
				all = append(all, hygieneRow{TokenInfo: t, Owner: "user " + u.Email, Ref: "usr|" + u.Email + "|" + t.ID})
			}
		}
	}
	now := v.c.now()
	var flagged []hygieneRow
	for _, row := range all {
		var f []string
		if row.LastUsedAt.IsZero() {
			f = append(f, "never used")
			d.Never++
		} else if now.Sub(row.LastUsedAt) > time.Duration(days)*24*time.Hour {
			f = append(f, "unused for over "+strconv.Itoa(days)+" days")
			d.Unused++
		}
		if row.ExpiresAt.IsZero() {
			f = append(f, "no expiry")
			d.NoExpiry++
		} else if row.ExpiresAt.Sub(now) < 7*24*time.Hour {
			f = append(f, "expires within 7 days")
			d.Expiring++
		}
		if row.BeyondPolicy != "" {
			f = append(f, "beyond the token policy: "+row.BeyondPolicy)
			d.Beyond++
		}
		row.Findings = f
		if len(f) > 0 && d.matches(row) {
			flagged = append(flagged, row)
		}
	}
	d.In = len(all)
	keep := v.orgKeep()
	if d.Show != "" {
		keep.Set("show", d.Show)
	}
	keep.Set("days", strconv.Itoa(days))
	d.Rows, d.List = paginate(v.r, Prefix+"/hygiene", "tokens", keep, flagged, (*hygieneRow).text)
	v.Data = d
	c.render(w, v, "hygiene", http.StatusOK)
	return nil
}

func (d *hygieneData) matches(row hygieneRow) bool {
	want := map[string]string{"never": "never used", "unused": "unused for", "expiring": "expires within", "noexpiry": "no expiry", "beyond": "beyond the token policy"}[d.Show]
	if want == "" {
		return true
	}
	for _, f := range row.Findings {
		if strings.HasPrefix(f, want) {
			return true
		}
	}
	return false
}

// hygieneRevoke revokes the selected tokens, each by its own API request (so each is
// authorized and audited on its own).
func (c *Console) hygieneRevoke(w http.ResponseWriter, v *view) error {
	if err := v.useOrg("hygiene"); err != nil {
		return err
	}
	back := v.orgPath(Prefix + "/hygiene")
	refs := v.r.PostForm["ref"]
	if len(refs) == 0 {
		return v.back(w, back, &flash{Error: "Select at least one token to revoke."})
	}
	var done []string
	for _, ref := range refs {
		kind, owner, id, ok := splitRef(ref)
		if !ok {
			return v.back(w, back, &flash{Error: "A selected token could not be read; reload the page."})
		}
		var rev apiv1.Revoked
		var err error
		switch kind {
		case "svc":
			err = v.call("DELETE", "/v1/orgs/"+url.PathEscape(v.Org)+"/services/"+url.PathEscape(owner)+"/tokens/"+url.PathEscape(id), nil, nil, &rev)
		case "mgc":
			var m apiv1.MagicToken
			if err = v.call("DELETE", "/v1/magic-tokens/"+url.PathEscape(id), nil, nil, &m); err == nil {
				rev.Revoked = []apiv1.TokenInfo{{ID: m.ID, Prefix: m.Prefix, DisplayName: m.DisplayName}}
			}
		default:
			err = v.call("DELETE", "/v1/tokens/"+url.PathEscape(id), url.Values{"user_email": {owner}}, nil, &rev)
		}
		if err != nil {
			if st := statusOf(err); st == 0 || st == http.StatusUnauthorized || st == http.StatusForbidden && len(done) == 0 {
				return err
			}
			msg := err.(*apiError).Message
			if len(done) > 0 {
				msg = "Revoked " + strings.Join(done, ", ") + "; then stopped: " + msg
			}
			return v.back(w, back, &flash{Error: msg})
		}
		done = append(done, revokedNames(rev))
	}
	return v.back(w, back, &flash{Notice: "Revoked " + strconv.Itoa(len(done)) + " token(s): " + strings.Join(done, ", ") + "."})
}

func splitRef(ref string) (kind, owner, id string, ok bool) {
	parts := strings.Split(ref, "|")
	if len(parts) != 3 || (parts[0] != "svc" && parts[0] != "usr" && parts[0] != "mgc") || parts[1] == "" || parts[2] == "" {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}
