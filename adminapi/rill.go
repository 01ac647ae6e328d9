package adminapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/store"
)

// The routes whose method and path are those of Rill's admin API gateway (rilldata/rill
// proto/rill/admin/v1/api.proto: the public URL, iframe, credentials, service and service
// token RPCs, RevokeCurrentAuthToken) answer as that gateway does, in apiv1's Rill* shapes,
// with 200 on success as grpc-gateway answers every call, unless the request asks for our own
// shape with apiv1.MediaType in Accept (rillctl and the console do). Their request bodies take
// the proto's and the JSON (lowerCamelCase) names, and ignore fields they do not know, as the
// gateway's protojson reading does (DiscardUnknown).

// rillShape reports whether r gets Rill's answer rather than ours.
func rillShape(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		if strings.Contains(v, apiv1.MediaType) {
			return false
		}
	}
	return true
}

// answer writes Rill's answer (200, as the gateway) or ours (with status), as r asks.
func (a *API) answer(w http.ResponseWriter, r *http.Request, c *caller, action, target string, status int, ours, rill any) error {
	v := ours
	if rillShape(r) {
		status, v = http.StatusOK, rill
	}
	if action == "" {
		writeJSON(w, status, v)
		return nil
	}
	return a.audited(w, r, c, action, target, status, v)
}

// decodeRill decodes a request body into v, a struct of apiv1, the way Rill's gateway reads a
// message: each field by its name in v (the proto's name) or by an alias (its JSON name, or
// Rill's name for it), never both; null as absent; fields v does not have ignored. An int64
// that protojson writes as a string of digits is taken for the fields named in int64s.
func decodeRill(body io.Reader, v any, aliases map[string]string, int64s ...string) error {
	var fields map[string]json.RawMessage
	if err := decodeFrom(body, &fields); err != nil {
		return err
	}
	for alias, name := range aliases {
		val, ok := fields[alias]
		if !ok {
			continue
		}
		delete(fields, alias)
		if string(val) == "null" {
			continue
		}
		if other, both := fields[name]; both && string(other) != "null" {
			return errf(http.StatusBadRequest, "give %s or %s, not both", name, alias)
		}
		fields[name] = val
	}
	known := jsonNames(reflect.TypeOf(v).Elem())
	for k, val := range fields {
		if !known[k] || string(val) == "null" {
			delete(fields, k)
		}
	}
	for _, k := range int64s {
		if val := fields[k]; len(val) > 2 && val[0] == '"' {
			var digits string
			if json.Unmarshal(val, &digits) == nil {
				if n, err := strconv.ParseInt(digits, 10, 64); err == nil {
					fields[k] = json.RawMessage(strconv.FormatInt(n, 10)) // "007" is 7, not the invalid JSON 007
				}
			}
		}
	}
	b, err := json.Marshal(fields)
	if err != nil {
		return fmt.Errorf("request body: %w", err)
	}
	return decodeFrom(bytes.NewReader(b), v)
}

// jsonNames is the set of JSON names of a struct's fields.
func jsonNames(t reflect.Type) map[string]bool {
	out := map[string]bool{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "" && f.Anonymous && f.Type.Kind() == reflect.Struct:
			for k := range jsonNames(f.Type) {
				out[k] = true
			}
		case name != "" && name != "-":
			out[name] = true
		}
	}
	return out
}

// DefaultPageSize and MaxPageSize bound a page of a list in Rill's shape, as Rill's
// validPageSize and its page_size rule (lte: 1000) do.
const (
	DefaultPageSize = 20
	MaxPageSize     = 1000
)

// page is where a list in Rill's shape starts and how long it is: pageSize (or page_size) and
// pageToken (or page_token), the opaque token of a previous answer's nextPageToken.
type page struct {
	size  int
	after string // the id the previous page ended at
}

func parsePage(r *http.Request) (page, error) {
	q := r.URL.Query()
	get := func(names ...string) string {
		for _, n := range names {
			if v := q.Get(n); v != "" {
				return v
			}
		}
		return ""
	}
	p := page{size: DefaultPageSize}
	if s := get("pageSize", "page_size"); s != "" {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil || n > MaxPageSize {
			return p, errf(http.StatusBadRequest, "pageSize must be a whole number from 0 to %d, not %q", MaxPageSize, s)
		}
		if n > 0 {
			p.size = int(n)
		}
	}
	if s := get("pageToken", "page_token"); s != "" {
		b, err := base64.RawURLEncoding.DecodeString(s)
		after, ok := strings.CutPrefix(string(b), "after:")
		if err != nil || !ok || after == "" {
			return p, errf(http.StatusBadRequest, "pageToken %q is not one this API gave", s)
		}
		p.after = after
	}
	return p, nil
}

// cut returns the page of ids (sorted) and the token of the next one ("" when none is left).
func (p page) cut(n int, id func(int) string) (from, to int, next string) {
	for from < n && p.after != "" && id(from) <= p.after {
		from++
	}
	to = min(from+p.size, n)
	if to < n {
		next = base64.RawURLEncoding.EncodeToString([]byte("after:" + id(to-1)))
	}
	return from, to, next
}

// rillMagic is a public URL as Rill's MagicAuthToken (admin/server/magic_tokens.go
// magicAuthTokenToPB), of the project with id projectID.
func rillMagic(t store.Token, projectID string) apiv1.RillMagicAuthToken {
	out := apiv1.RillMagicAuthToken{ID: t.ID.String(), ProjectID: projectID, CreatedOn: apiv1.RillTime(t.CreatedAt),
		ExpiresOn: apiv1.RillTime(t.ExpiresAt), UsedOn: apiv1.RillTime(t.LastUsedAt), DisplayName: t.DisplayName,
		Attributes: map[string]any{}, Resources: []apiv1.ResourceName{}, Fields: []string{},
		MetricsViewFilters: map[string]json.RawMessage{}}
	if m := t.Magic; m != nil {
		out.CreatedByUserID, out.CreatedByUserEmail, out.State = m.CreatedByUserID, m.CreatedByEmail, m.State
		if m.Attributes != nil {
			out.Attributes = m.Attributes
		}
		for _, r := range m.Resources {
			out.Resources = append(out.Resources, apiv1.ResourceName{Type: r.Kind, Name: r.Name})
		}
		for mv, f := range m.Filters {
			out.MetricsViewFilters[mv] = json.RawMessage(f)
		}
		out.Fields = append(out.Fields, m.Fields...)
	}
	return out
}

func attrsOrEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// rillService is a service as Rill's Service (no org id: our orgs are known by name).
func rillService(s store.Service) apiv1.RillService {
	return apiv1.RillService{ID: s.ID, Name: s.Name, OrgName: s.Org, Attributes: attrsOrEmpty(s.Attributes),
		CreatedOn: apiv1.RillTime(s.CreatedAt), UpdatedOn: apiv1.RillTime(s.UpdatedAt)}
}

// rillMemberService is a service as Rill's OrganizationMemberService.
func rillMemberService(s store.Service) apiv1.RillOrganizationMemberService {
	return apiv1.RillOrganizationMemberService{ID: s.ID, Name: s.Name, OrgName: s.Org, RoleName: string(s.OrgRole),
		HasProjectRoles: len(s.ProjectRoles) > 0, Attributes: attrsOrEmpty(s.Attributes),
		CreatedOn: apiv1.RillTime(s.CreatedAt), UpdatedOn: apiv1.RillTime(s.UpdatedAt)}
}

// rillServiceToken is a token as Rill's ServiceToken.
func rillServiceToken(t store.Token) apiv1.RillServiceToken {
	return apiv1.RillServiceToken{ID: t.ID.String(), Prefix: t.Prefix, CreatedOn: apiv1.RillTime(t.CreatedAt), ExpiresOn: apiv1.RillTime(t.ExpiresAt)}
}
