package adminapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/store"
	"github.com/rill-authd/rill-authd/token"
)

// Public URLs (magic tokens, rill_mgc_), after Rill's admin/server/magic_tokens.go: issue (the
// caller needs create_magic_auth_tokens on the project), list the live ones (manage_magic_auth_tokens
// lists all; create_magic_auth_tokens alone a user's own), show the current one (to its own
// token), revoke (manage, or create and its creator).
func (a *API) registerMagic(mux *http.ServeMux) {
	a.mutation(mux, "POST /v1/orgs/{org}/projects/{project}/tokens/magic", "magic_token.issue", a.issueMagic)
	a.mutation(mux, "POST /v1/organizations/{org}/projects/{project}/tokens/magic", "magic_token.issue", a.issueMagic)
	a.handle(mux, "GET /v1/orgs/{org}/projects/{project}/tokens/magic", a.listMagic)
	a.handle(mux, "GET /v1/organizations/{org}/projects/{project}/tokens/magic", a.listMagic)
	a.handle(mux, "GET /v1/magic-tokens/current", a.currentMagic)
	a.mutation(mux, "DELETE /v1/magic-tokens/{id}", "magic_token.revoke", a.revokeMagic)
	a.mutation(mux, "PATCH /v1/magic-tokens/{id}", "magic_token.edit", a.editMagic)
}

// magicAliases are the other names Rill's API gateway takes for IssueMagicAuthTokenRequest's
// fields: protojson's lowerCamelCase, which a client of Rill's API sends.
var magicAliases = map[string]string{"metricsViewFilters": "metrics_view_filters", "displayName": "display_name", "ttlMinutes": "ttl_minutes",
	"resourceType": "resource_type", "resourceName": "resource_name"}

// magicRequest is an issue request as read: ours, with the single resource and filter of
// Rill's older IssueMagicAuthTokenRequest (resource_type, resource_name, filter), deprecated
// there and still read by its gateway.
type magicRequest struct {
	apiv1.MagicTokenRequest
	ResourceType string          `json:"resource_type,omitempty"`
	ResourceName string          `json:"resource_name,omitempty"`
	Filter       json.RawMessage `json:"filter,omitempty"`
}

// decodeMagic decodes an issue request by the proto's names or Rill's JSON names, with
// ttl_minutes a number or, as protojson writes an int64, a string of digits; fields it does
// not know (org and project, which the path gives) are ignored, as Rill's gateway ignores them.
// A deprecated single resource is one more resource; a deprecated filter, with no
// metrics_view_filters, is the filter of every metrics view ("*"), as Rill applied it.
func decodeMagic(r *http.Request, req *apiv1.MagicTokenRequest) error {
	var m magicRequest
	if err := decodeRill(r.Body, &m, magicAliases, "ttl_minutes"); err != nil {
		return err
	}
	*req = m.MagicTokenRequest
	if m.ResourceName != "" {
		typ := m.ResourceType
		if typ == "" {
			typ = "explore"
		}
		req.Resources = append(req.Resources, apiv1.ResourceName{Type: typ, Name: m.ResourceName})
	}
	if len(m.Filter) > 0 && len(req.MetricsViewFilters) == 0 {
		req.MetricsViewFilters = map[string]json.RawMessage{"*": m.Filter}
	}
	return nil
}

// MaxMagicFields bounds the fields of one public URL.
const MaxMagicFields = 1000

// MaxMagicFiltersInput bounds the metrics view filters of a request as sent, before they are
// parsed (whitespace and all; stored, they take at most store.MaxMagicFilters).
const MaxMagicFiltersInput = 16 << 10

func (a *API) issueMagic(w http.ResponseWriter, r *http.Request, c *caller) error {
	org, project := r.PathValue("org"), r.PathValue("project")
	c.aim("project:" + org + "/" + project)
	if err := c.need(org, project, policy.CreateMagicAuthTokens); err != nil {
		return errf(http.StatusForbidden, "%s is not allowed to create a magic auth token on project %s/%s (needs %s)", c.actor, org, project, policy.CreateMagicAuthTokens)
	}
	if _, err := a.st.GetProject(r.Context(), org, project); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return errf(http.StatusNotFound, "project %q not found", org+"/"+project)
		}
		return err
	}
	var req apiv1.MagicTokenRequest
	if err := decodeMagic(r, &req); err != nil {
		return err
	}
	// Charged before the filters are parsed: parsing is the costly part of a refused request.
	if err := a.chargeIssue(c); err != nil {
		return err
	}
	if !c.isUser() {
		if err := a.chargeOrg(c, org); err != nil {
			return err
		}
	}
	m, err := magicGrant(org, project, req)
	if err != nil {
		return err
	}
	// Who is limited to some resources shares only within the limit (third red team: a limited
	// editor shared what they could not see). A limit carries no row filters or field list of
	// its own, so the URL's filters and fields, which only narrow what it shows, need no check;
	// resources outside the limit do. No resources is deny-all, within any limit.
	if limit, limited := c.p.ResourceLimit(org, project); limited {
		if r, outside := policy.OutsideLimit(limit, m.Resources); outside {
			return errf(http.StatusForbidden, "%s is limited to some resources of project %s/%s and cannot share %s %q, which is outside that limit", c.actor, org, project, r.Kind, r.Name)
		}
	}
	if len(req.DisplayName) > 200 {
		return errf(http.StatusBadRequest, "display_name is longer than 200 bytes")
	}
	networks, err := allowedNetworks(req.AllowedNetworks)
	if err != nil {
		return err
	}
	origins, err := allowedOrigins(req.AllowedOrigins)
	if err != nil {
		return err
	}
	if req.TTLMinutes < 0 || req.TTLMinutes > 100*365*24*60 {
		return errf(http.StatusBadRequest, "ttl_minutes must be 0 (never expires) or a positive number of minutes up to 100 years")
	}
	if err := a.checkLifetimeIn(r.Context(), token.Magic, []string{org}, time.Duration(req.TTLMinutes)*time.Minute); err != nil {
		return err
	}
	// A user's public URL keeps the attributes the user had on the project when it was made,
	// with the runtime's view of their permissions there, so it acts as they did even after
	// they change or leave (Rill's jwtAttributesForUser, stored with the token). A service's
	// keeps none, as in Rill.
	if c.isUser() {
		m.Attributes = c.p.AttributesFor(c.p.AccessTo(org, project))
		m.CreatedByUserID, m.CreatedByEmail = c.p.ID, c.p.Email
	}
	tok, err := token.New(token.Magic)
	if err != nil {
		return err
	}
	rec := store.NewToken(tok, store.MagicOwner(org, project), strings.TrimSpace(req.DisplayName), c.actor, a.now(), time.Duration(req.TTLMinutes)*time.Minute)
	rec.Magic = m
	rec.AllowedNetworks, rec.AllowedOrigins = networks, origins
	if err := a.st.CreateMagicTokenCapped(r.Context(), rec, a.perOwner(), a.maxMagicPerProject); err != nil {
		if errors.Is(err, store.ErrInvalid) {
			return errf(http.StatusBadRequest, "%v", err)
		}
		return fmt.Errorf("store magic token: %w", a.tooManyTokens(r.Context(), c, token.Magic, rec.OwnerID, err))
	}
	a.metrics.TokenIssued(policy.KindMagic)
	out := apiv1.IssuedMagicToken{Token: tok.Encode(), MagicToken: magicInfo(rec)}
	if front := a.frontend(); front != "" {
		// Rill's URLs.MagicAuthTokenOpen (admin/urls.go): <frontend>/<org>/<project>/-/share/<token>.
		if out.URL, err = url.JoinPath(front, org, project, "-", "share", out.Token); err != nil {
			return fmt.Errorf("frontend url: %w", err)
		}
	}
	return a.answer(w, r, c, "magic_token.issue", "project:"+org+"/"+project+" token:"+rec.ID.String(), http.StatusCreated, out,
		apiv1.RillIssueMagicAuthTokenResponse{Token: out.Token, URL: out.URL})
}

// magicGrant checks a request's resources, filters and fields as Rill's IssueMagicAuthToken
// does: each filter must be an expression protojson reads, and their protojson (what is
// stored) at most 1 KiB in all (magicAuthTokenMetricsViewFilterMaxSize).
func magicGrant(org, project string, req apiv1.MagicTokenRequest) (*store.Magic, error) {
	resources, err := resourceNames(req.Resources)
	if err != nil {
		return nil, err
	}
	m := &store.Magic{Org: org, Project: project, Resources: resources, State: req.State}
	if len(req.MetricsViewFilters) > 0 {
		m.Filters = make(map[string]string, len(req.MetricsViewFilters))
	}
	// What is stored is at most 1 KiB; what is parsed to find that out is bounded too, so a
	// megabyte of filter costs no more than a read.
	raw := 0
	for _, f := range req.MetricsViewFilters {
		raw += len(f)
	}
	if raw > MaxMagicFiltersInput {
		return nil, errf(http.StatusBadRequest, "metrics view filters are %d bytes as sent, more than %d (stored, they may take at most %d)", raw, MaxMagicFiltersInput, store.MaxMagicFilters)
	}
	for _, mv := range slices.Sorted(maps.Keys(req.MetricsViewFilters)) {
		if mv != "*" {
			if err := resourceName(mv); err != nil {
				return nil, errf(http.StatusBadRequest, "metrics view filter: %v", err.(*Error).Message)
			}
		}
		raw := req.MetricsViewFilters[mv]
		if len(raw) == 0 || string(raw) == "null" {
			continue
		}
		x, err := token.CanonicalExpression(raw)
		if err != nil {
			return nil, errf(http.StatusBadRequest, "metrics view %q filter: %v", mv, err)
		}
		m.Filters[mv] = string(x)
	}
	if len(m.Filters) == 0 {
		m.Filters = nil
	}
	if n := m.FiltersSize(); n > store.MaxMagicFilters {
		return nil, errf(http.StatusBadRequest, "metrics view filter size exceeds limit (got %d bytes, but the limit is %d bytes)", n, store.MaxMagicFilters)
	}
	if len(req.Fields) > MaxMagicFields {
		return nil, errf(http.StatusBadRequest, "at most %d fields, not %d", MaxMagicFields, len(req.Fields))
	}
	for _, f := range req.Fields {
		if err := resourceName(strings.TrimSpace(f)); err != nil {
			return nil, errf(http.StatusBadRequest, "field: %v", err.(*Error).Message)
		}
		m.Fields = append(m.Fields, strings.TrimSpace(f))
	}
	if len(req.State) > 64<<10 {
		return nil, errf(http.StatusBadRequest, "state is longer than 64 KiB")
	}
	// The rules the runtime will get must encode (CanonicalExpression passed, so this is a
	// last check that nothing stored can fail a check later).
	rules, err := policy.MagicRules(m.Resources, m.Filters, m.Fields)
	if err == nil {
		_, err = token.EncodeSec(rules)
	}
	if err != nil {
		return nil, errf(http.StatusBadRequest, "%v", err)
	}
	return m, nil
}

// magicInfo is the API's view of a magic token record.
func magicInfo(t store.Token) apiv1.MagicToken {
	out := apiv1.MagicToken{ID: t.ID.String(), Prefix: t.Prefix, DisplayName: t.DisplayName, CreatedAt: t.CreatedAt,
		ExpiresAt: t.ExpiresAt, LastUsedAt: t.LastUsedAt, LastUsedIP: t.LastUsedIP, LastUsedUserAgent: t.LastUsedUserAgent, Resources: []apiv1.ResourceName{},
		AllowedNetworks: t.AllowedNetworks, AllowedOrigins: t.AllowedOrigins}
	if m := t.Magic; m != nil {
		out.Org, out.Project, out.Fields, out.State, out.Attributes = m.Org, m.Project, m.Fields, m.State, m.Attributes
		out.CreatedByUserID, out.CreatedByUserEmail = m.CreatedByUserID, m.CreatedByEmail
		for _, r := range m.Resources {
			out.Resources = append(out.Resources, apiv1.ResourceName{Type: r.Kind, Name: r.Name})
		}
		if len(m.Filters) > 0 {
			out.MetricsViewFilters = make(map[string]json.RawMessage, len(m.Filters))
			for mv, f := range m.Filters {
				out.MetricsViewFilters[mv] = json.RawMessage(f)
			}
		}
	}
	return out
}

func (a *API) listMagic(w http.ResponseWriter, r *http.Request, c *caller) error {
	org, project := r.PathValue("org"), r.PathValue("project")
	perms := c.p.AccessTo(org, project).Perms
	manage := perms.Has(policy.ManageMagicAuthTokens)
	if !manage && (!perms.Has(policy.CreateMagicAuthTokens) || !c.isUser()) {
		return errf(http.StatusForbidden, "%s is not allowed to manage magic auth tokens on project %s/%s", c.actor, org, project)
	}
	proj, err := a.st.GetProject(r.Context(), org, project)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return errf(http.StatusNotFound, "project %q not found", org+"/"+project)
		}
		return err
	}
	pg, err := parsePage(r)
	if err != nil {
		return err
	}
	ts, err := a.st.ListTokens(r.Context(), store.MagicOwner(org, project))
	if err != nil {
		return err
	}
	now := a.now()
	var live []store.Token
	for _, t := range ts {
		// Rill's FindMagicAuthTokensWithUser: not expired, not internal; a creator's own only
		// without manage_magic_auth_tokens.
		if t.Kind != token.Magic || t.Magic == nil || t.Magic.Internal || t.Expired(now) {
			continue
		}
		if !manage && t.Magic.CreatedByUserID != c.p.ID {
			continue
		}
		live = append(live, t)
	}
	if !rillShape(r) {
		// Marked as user and service tokens are: URLs that outlive the org's policy for them.
		o, err := a.st.GetOrg(r.Context(), org)
		if err != nil {
			return fmt.Errorf("read the token policy of org %s: %w", org, err)
		}
		ps := map[string]store.TokenPolicy{org: o.TokenPolicy}
		out := wireList(live, magicInfo)
		for i := range out {
			out[i].BeyondPolicy = BeyondWords(token.Magic, out[i].CreatedAt, out[i].ExpiresAt, []string{org}, ps)
		}
		return writeList(w, out, nil)
	}
	// Rill's ListMagicAuthTokens pages by id (FindMagicAuthTokensWithUser: id after the page
	// token's, in order of id).
	slices.SortFunc(live, func(x, y store.Token) int { return strings.Compare(x.ID.String(), y.ID.String()) })
	from, to, next := pg.cut(len(live), func(i int) string { return live[i].ID.String() })
	out := apiv1.RillListMagicAuthTokensResponse{Tokens: []apiv1.RillMagicAuthToken{}, NextPageToken: next}
	for _, t := range live[from:to] {
		out.Tokens = append(out.Tokens, rillMagic(t, proj.ID))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// projectID is the id of the project of a public URL ("" if it is gone).
func (a *API) projectID(r *http.Request, t store.Token) (string, error) {
	if t.Magic == nil {
		return "", nil
	}
	p, err := a.st.GetProject(r.Context(), t.Magic.Org, t.Magic.Project)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	return p.ID, err
}

func (a *API) currentMagic(w http.ResponseWriter, r *http.Request, c *caller) error {
	if c.p.Kind != policy.KindMagic {
		return errf(http.StatusForbidden, "request was not made with a magic auth token")
	}
	t, err := a.st.GetToken(r.Context(), c.tid)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrRevoked) {
			return errf(http.StatusNotFound, "magic auth token not found")
		}
		return err
	}
	var pid string
	if rillShape(r) {
		if pid, err = a.projectID(r, t); err != nil {
			return err
		}
	}
	return a.answer(w, r, c, "", "", http.StatusOK, magicInfo(t), apiv1.RillGetCurrentMagicAuthTokenResponse{Token: rillMagic(t, pid)})
}

// managedMagic loads the public URL the path's {id} names, for a caller who may change or
// revoke it (verb says which): manage_magic_auth_tokens on its project, or its creator while
// they may create them. The audit target names it.
func (a *API) managedMagic(r *http.Request, c *caller, verb string) (store.Token, error) {
	ref := r.PathValue("id")
	c.aim("token:" + ref)
	id, err := token.ParseID(ref)
	if err != nil {
		return store.Token{}, errf(http.StatusBadRequest, "%q is not a magic token id (a UUID, as public-url list shows it)", ref)
	}
	t, err := a.st.GetToken(r.Context(), id)
	if err != nil || t.Kind != token.Magic || t.Magic == nil {
		if err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrRevoked) {
			return store.Token{}, errf(http.StatusNotFound, "magic auth token %s not found", id)
		}
		return store.Token{}, err
	}
	org, project := t.Magic.Org, t.Magic.Project
	c.target = "project:" + org + "/" + project + " token:" + id.String()
	perms := c.p.AccessTo(org, project).Perms
	if !perms.Has(policy.ManageMagicAuthTokens) {
		// Without manage, only its creator may, and only while they may create them.
		creator := c.isUser() && t.Magic.CreatedByUserID != "" && t.Magic.CreatedByUserID == c.p.ID
		if !perms.Has(policy.CreateMagicAuthTokens) || !creator {
			return store.Token{}, errf(http.StatusForbidden, "%s is not allowed to %s this magic auth token", c.actor, verb)
		}
	}
	return t, nil
}

func (a *API) revokeMagic(w http.ResponseWriter, r *http.Request, c *caller) error {
	t, err := a.managedMagic(r, c, "revoke")
	if err != nil {
		return err
	}
	id := t.ID
	if err := a.st.DeleteToken(r.Context(), id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return errf(http.StatusNotFound, "magic auth token %s not found", id)
		}
		return err
	}
	a.metrics.TokensRevoked(policy.KindMagic, 1)
	return a.answer(w, r, c, "magic_token.revoke", c.target, http.StatusOK, magicInfo(t), apiv1.RillEmpty{})
}
