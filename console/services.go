package console

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
)

type servicesData struct {
	List     listPage
	Services []apiv1.Service
	Projects []string
}

// serviceText is what search looks in: a service's name, roles and attributes.
func serviceText(s *apiv1.Service) string {
	t := s.Name + " " + s.OrgRole + " " + attrsJSON(s.Attributes)
	for p, r := range s.ProjectRoles {
		t += " " + p + ": " + r
	}
	return t
}

func (v *view) servicesPath() string { return "/v1/orgs/" + url.PathEscape(v.Org) + "/services" }

func (v *view) servicePath(name string) string { return v.servicesPath() + "/" + url.PathEscape(name) }

// consolePath is the console page of service name in v.Org.
func (v *view) consolePath(name string) string {
	return v.orgPath(Prefix + "/services/" + url.PathEscape(name))
}

func (v *view) projects() ([]string, error) {
	var ps []apiv1.Project
	if err := v.call("GET", "/v1/orgs/"+url.PathEscape(v.Org)+"/projects", nil, nil, &ps); err != nil {
		if statusOf(err) == http.StatusForbidden {
			return nil, nil
		}
		return nil, err
	}
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.Name)
	}
	return out, nil
}

// services lists the org's services (the API asks manage_org) and offers the create form.
func (c *Console) services(w http.ResponseWriter, v *view) error {
	v.Nav, v.Title = "services", "Services"
	if err := v.useOrg("services"); err != nil {
		return err
	}
	d := servicesData{}
	var all []apiv1.Service
	if err := v.call("GET", v.servicesPath(), nil, nil, &all); err != nil {
		return err
	}
	d.Services, d.List = paginate(v.r, Prefix+"/services", "services", v.orgKeep(), all, serviceText)
	var err error
	if d.Projects, err = v.projects(); err != nil {
		return err
	}
	v.Data = d
	c.render(w, v, "services", http.StatusOK)
	return nil
}

// attributes reads the attributes field: a JSON object, or nothing.
func attributes(s string) (map[string]any, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || dec.More() {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return nil, fmt.Errorf("attributes are not valid JSON (at character %d): %v", syn.Offset, err)
		case errors.As(err, &typ):
			return nil, fmt.Errorf("attributes must be a JSON object like {\"team\": \"data\"}, not a JSON %s", typ.Value)
		}
		return nil, errors.New("attributes must be one JSON object like {\"team\": \"data\"}")
	}
	if m == nil {
		return nil, errors.New("attributes must be a JSON object like {\"team\": \"data\"}, not null")
	}
	return m, nil
}

func (c *Console) createService(w http.ResponseWriter, v *view) error {
	if err := v.useOrg("services"); err != nil {
		return err
	}
	back := v.orgPath(Prefix + "/services")
	f := v.r.PostForm
	attrs, err := attributes(f.Get("attributes"))
	if err != nil {
		return v.back(w, back, &flash{Error: err.Error(), Field: "attributes", Form: f})
	}
	req := apiv1.ServiceRequest{Name: strings.TrimSpace(f.Get("name")), OrgRole: f.Get("org_role"), Attributes: attrs,
		AllowedNetworks: networkList(f.Get("allowed_networks"))}
	if p := f.Get("project"); p != "" {
		req.Project, req.ProjectRole = p, f.Get("project_role")
	}
	var created apiv1.ServiceCreated
	if err := v.call("POST", v.servicesPath(), nil, req, &created); err != nil {
		field := "name"
		if msg := strings.ToLower(err.Error()); strings.Contains(msg, "role") || strings.Contains(msg, "project") {
			field = "org_role"
		} else if strings.Contains(msg, "attribute") {
			field = "attributes"
		} else if strings.Contains(msg, "allowed_networks") {
			field = "allowed_networks"
		}
		return v.refused(w, back, field, err)
	}
	return v.back(w, v.consolePath(created.Service.Name), &flash{Notice: "Service " + created.Service.Name + " created with a first token.",
		Secret: &created.Token, SecretOwner: "service " + created.Service.Name})
}

type serviceData struct {
	apiv1.ServiceDetail
	List           listPage
	Page           []tokenRow // the page of Tokens shown
	AttributesJSON string
	Projects       []string
	TTLChoices     any
}

func (c *Console) service(w http.ResponseWriter, v *view) error {
	v.Nav = "services"
	if err := v.useOrg("services"); err != nil {
		return err
	}
	name := v.r.PathValue("name")
	v.Title, v.PickTo = "Service "+name, Prefix+"/services"
	d := serviceData{TTLChoices: svcTTLChoices}
	if err := v.call("GET", v.servicePath(name), nil, nil, &d.ServiceDetail); err != nil {
		return err
	}
	newestFirst(d.Tokens)
	var page []apiv1.TokenInfo
	page, d.List = paginate(v.r, Prefix+"/services/"+url.PathEscape(name), "tokens", v.orgKeep(), d.Tokens, tokenText)
	d.Page = keepTyped(tokenRows(page, ""), v.Flash)
	d.AttributesJSON = prettyJSON(d.Attributes)
	var err error
	if d.Projects, err = v.projects(); err != nil {
		return err
	}
	v.Data = d
	c.render(w, v, "service", http.StatusOK)
	return nil
}

func prettyJSON(m map[string]any) string {
	if len(m) == 0 {
		return "{}"
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	_ = enc.Encode(m)
	return strings.TrimSpace(b.String())
}

func (c *Console) editService(w http.ResponseWriter, v *view) error {
	if err := v.useOrg("services"); err != nil {
		return err
	}
	name := v.r.PathValue("name")
	back := v.consolePath(name)
	f := v.r.PostForm
	attrs, err := attributes(f.Get("attributes"))
	if err != nil {
		return v.back(w, back, &flash{Error: err.Error(), Field: "attributes", Form: f})
	}
	if attrs == nil {
		attrs = map[string]any{}
	}
	req := apiv1.ServiceEdit{Attributes: &attrs}
	if nn := strings.TrimSpace(f.Get("new_name")); nn != "" && nn != name {
		req.NewName = nn
	}
	var s apiv1.Service
	if err := v.call("PATCH", v.servicePath(name), nil, req, &s); err != nil {
		field := "attributes"
		if strings.Contains(err.Error(), "name") {
			field = "new_name"
		}
		return v.refused(w, back, field, err)
	}
	return v.back(w, v.consolePath(s.Name), &flash{Notice: "Service " + s.Name + " saved."})
}

func (c *Console) setServiceRole(w http.ResponseWriter, v *view) error {
	if err := v.useOrg("services"); err != nil {
		return err
	}
	name := v.r.PathValue("name")
	f := v.r.PostForm
	req := apiv1.RoleRequest{Remove: f.Get("remove") != ""}
	if p := f.Get("project"); p != "" {
		req.Project = p
		if !req.Remove {
			req.ProjectRole = f.Get("project_role")
		}
	} else if !req.Remove {
		req.OrgRole = f.Get("org_role")
	}
	var s apiv1.Service
	if err := v.call("PUT", v.servicePath(name)+"/roles", nil, req, &s); err != nil {
		return v.refused(w, v.consolePath(name), "role", err)
	}
	return v.back(w, v.consolePath(name), &flash{Notice: "Roles of " + name + " updated."})
}

func (c *Console) issueServiceToken(w http.ResponseWriter, v *view) error {
	if err := v.useOrg("services"); err != nil {
		return err
	}
	name := v.r.PathValue("name")
	// A service token's expiry (absent: never, as before there was a choice); an org's token
	// policy may ask for one, and its refusal is shown as the API words it.
	ttl, err := strconv.Atoi(cmp.Or(v.r.PostForm.Get("ttl_minutes"), "0"))
	if err != nil || ttl < 0 {
		return v.back(w, v.consolePath(name), &flash{Error: "Choose when the token expires."})
	}
	var issued apiv1.IssuedToken
	req := apiv1.ServiceTokenRequest{TTLMinutes: ttl, AllowedNetworks: networkList(v.r.PostForm.Get("allowed_networks"))}
	if err := v.call("POST", v.servicePath(name)+"/tokens", nil, req, &issued); err != nil {
		field := ""
		if strings.Contains(err.Error(), "allowed_networks") {
			field = "allowed_networks"
		}
		return v.refused(w, v.consolePath(name), field, err)
	}
	return v.back(w, v.consolePath(name), &flash{Notice: "Token " + issued.Prefix + "… issued.", Secret: &issued, SecretOwner: "service " + name})
}

// editServiceTokenNetworks changes where one of a service's tokens may be used (empty:
// anywhere), as editMyTokenNetworks does for the user's own.
func (c *Console) editServiceTokenNetworks(w http.ResponseWriter, v *view) error {
	if err := v.useOrg("services"); err != nil {
		return err
	}
	name := v.r.PathValue("name")
	networks := networkList(v.r.PostForm.Get("allowed_networks"))
	if networks == nil {
		networks = []string{}
	}
	var t apiv1.TokenInfo
	if err := v.call("PATCH", v.servicePath(name)+"/tokens/"+url.PathEscape(v.r.PostForm.Get("id")), nil,
		apiv1.TokenLimitsEdit{AllowedNetworks: &networks}, &t); err != nil {
		return v.refused(w, v.consolePath(name), "", err)
	}
	return v.back(w, v.consolePath(name), &flash{Notice: "Token " + t.Prefix + "… may now be used from " + whereWords(t.AllowedNetworks, nil) + "."})
}

func (c *Console) revokeServiceToken(w http.ResponseWriter, v *view) error {
	if err := v.useOrg("services"); err != nil {
		return err
	}
	name := v.r.PathValue("name")
	var rev apiv1.Revoked
	if err := v.call("DELETE", v.servicePath(name)+"/tokens/"+url.PathEscape(v.r.PostForm.Get("id")), nil, nil, &rev); err != nil {
		return v.refused(w, v.consolePath(name), "", err)
	}
	return v.back(w, v.consolePath(name), &flash{Notice: "Token " + revokedNames(rev) + " revoked: it is refused from now on."})
}

func (c *Console) deleteService(w http.ResponseWriter, v *view) error {
	if err := v.useOrg("services"); err != nil {
		return err
	}
	name := v.r.PathValue("name")
	if err := v.call("DELETE", v.servicePath(name), nil, nil, nil); err != nil {
		return v.refused(w, v.consolePath(name), "", err)
	}
	return v.back(w, v.orgPath(Prefix+"/services"), &flash{Notice: "Service " + name + " deleted; its tokens are revoked."})
}
