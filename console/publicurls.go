package console

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
)

// --- public URLs

// publicURLRow is a public URL as its page lists it, its times formatted once here.
type publicURLRow struct {
	ID, Prefix, Name, Resources, CreatedBy, Created, Expires, LastUsed string
	LastUsedIP                                                         string
	Networks, Origins                                                  string // space-separated ("": anywhere)
	BeyondPolicy                                                       string
	// The edit form's values: the stored ones, or after a refused edit of this row what was
	// typed, with the form open (Edit) to fix it.
	EditNetworks, EditOrigins string
	Edit                      bool
}

func (r *publicURLRow) text() string {
	return r.Prefix + " " + r.Name + " " + r.Resources + " " + r.CreatedBy
}

type publicURLsData struct {
	Projects []string
	Project  string
	List     listPage
	Rows     []publicURLRow
}

// magicPath is the API's path of project's public URLs in v.Org.
func (v *view) magicPath(project string) string {
	return "/v1/orgs/" + url.PathEscape(v.Org) + "/projects/" + url.PathEscape(project) + "/tokens/magic"
}

// publicURLsPath is the console page of project's public URLs in v.Org.
func (v *view) publicURLsPath(project string) string {
	return Prefix + "/publicurls?" + url.Values{"org": {v.Org}, "project": {project}}.Encode()
}

// publicURLs lists a project's public URLs (rillctl public-url list), with where each may be
// opened from (allowed networks and origins), changed in place, and a revoke. The page is an org
// admin's (manage_org holds every project's manage_magic_auth_tokens), as the menu offers it;
// project editors use rillctl.
func (c *Console) publicURLs(w http.ResponseWriter, v *view) error {
	v.Nav, v.Title = "publicurls", "Public URLs"
	if err := v.useOrg("publicurls"); err != nil {
		return err
	}
	if !v.mayIn("publicurls", v.Org) {
		return &apiError{Status: http.StatusForbidden, Message: "the public URLs page needs manage_org on org " + v.Org + " (rillctl public-url list lists a project's to its editors)"}
	}
	d := publicURLsData{}
	var err error
	if d.Projects, err = v.projects(); err != nil {
		return err
	}
	d.Project = v.r.FormValue("project")
	if d.Project == "" && len(d.Projects) > 0 {
		d.Project = d.Projects[0]
	}
	var rows []publicURLRow
	if d.Project != "" {
		if !slices.Contains(d.Projects, d.Project) {
			return &apiError{Status: http.StatusNotFound, Message: "project " + d.Project + " not found in org " + v.Org}
		}
		var toks []apiv1.MagicToken
		if err := v.call("GET", v.magicPath(d.Project), nil, nil, &toks); err != nil {
			return err
		}
		slices.SortStableFunc(toks, func(a, b apiv1.MagicToken) int { return b.CreatedAt.Compare(a.CreatedAt) })
		for _, t := range toks {
			var res []string
			for _, r := range t.Resources {
				res = append(res, r.Name)
			}
			rows = append(rows, publicURLRow{ID: t.ID, Prefix: t.Prefix, Name: t.DisplayName, Resources: strings.Join(res, ", "),
				CreatedBy: t.CreatedByUserEmail, Created: when(t.CreatedAt), Expires: whenOr(t.ExpiresAt, "never"),
				LastUsed: whenOr(t.LastUsedAt, "never"), LastUsedIP: t.LastUsedIP, Networks: strings.Join(t.AllowedNetworks, " "),
				Origins: strings.Join(t.AllowedOrigins, " "), BeyondPolicy: t.BeyondPolicy})
			r := &rows[len(rows)-1]
			r.EditNetworks, r.EditOrigins = r.Networks, r.Origins
			if f := v.Flash; f != nil && f.Error != "" && f.Form != nil && f.Form.Get("id") == t.ID && (f.Form.Has("allowed_networks") || f.Form.Has("allowed_origins")) {
				r.EditNetworks, r.EditOrigins, r.Edit = f.Form.Get("allowed_networks"), f.Form.Get("allowed_origins"), true
			}
		}
	}
	keep := v.orgKeep()
	keep.Set("project", d.Project)
	d.Rows, d.List = paginate(v.r, Prefix+"/publicurls", "public URLs", keep, rows, (*publicURLRow).text)
	v.Data = d
	c.render(w, v, "publicurls", http.StatusOK)
	return nil
}

// editPublicURLLimits changes where a public URL may be opened from: its networks and origins
// (either empty: no constraint), in one PATCH.
func (c *Console) editPublicURLLimits(w http.ResponseWriter, v *view) error {
	if err := v.useOrg("publicurls"); err != nil {
		return err
	}
	f := v.r.PostForm
	back := v.publicURLsPath(f.Get("project"))
	networks, origins := networkList(f.Get("allowed_networks")), networkList(f.Get("allowed_origins"))
	if networks == nil {
		networks = []string{}
	}
	if origins == nil {
		origins = []string{}
	}
	var t apiv1.MagicToken
	if err := v.call("PATCH", "/v1/magic-tokens/"+url.PathEscape(f.Get("id")), nil,
		apiv1.TokenLimitsEdit{AllowedNetworks: &networks, AllowedOrigins: &origins}, &t); err != nil {
		return v.refused(w, back, "", err)
	}
	return v.back(w, back, &flash{Notice: "Public URL " + t.Prefix + "… may now be opened from " + whereWords(t.AllowedNetworks, t.AllowedOrigins) + "."})
}

// revokePublicURL revokes a public URL: its link stops working.
func (c *Console) revokePublicURL(w http.ResponseWriter, v *view) error {
	if err := v.useOrg("publicurls"); err != nil {
		return err
	}
	f := v.r.PostForm
	back := v.publicURLsPath(f.Get("project"))
	if err := v.call("DELETE", "/v1/magic-tokens/"+url.PathEscape(f.Get("id")), nil, nil, nil); err != nil {
		return v.refused(w, back, "", err)
	}
	return v.back(w, back, &flash{Notice: "Public URL revoked: its link is refused from now on."})
}
