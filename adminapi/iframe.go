package adminapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/policy"
	"github.com/rill-authd/rill-authd/token"
)

func (a *API) registerIFrame(mux *http.ServeMux) {
	a.mutation(mux, "POST /v1/orgs/{org}/projects/{project}/iframe", "iframe.issue", a.iframe)
	a.mutation(mux, "POST /v1/organizations/{org}/projects/{project}/iframe", "iframe.issue", a.iframe)
}

// iframeRequest is what a GetIFrameRequest adds to the credentials request's fields.
type iframeRequest struct {
	typ, resource, theme, themeMode, state string
	navigation                             bool
	query                                  map[string]string
}

// iframe is Rill's GetIFrame (rilldata/rill admin/server/deployment.go): a runtime JWT for an
// end user, as the credentials endpoint mints it, with "embed": true among its attributes, and
// with navigation off limited to the one resource embedded; and the URL of Rill's frontend that
// shows it (<--frontend-url>/-/embed?…, admin/urls.go Embed), with the query parameters Rill sets.
func (a *API) iframe(w http.ResponseWriter, r *http.Request, c *caller) error {
	org, project := r.PathValue("org"), r.PathValue("project")
	target := "project:" + org + "/" + project
	c.aim(target)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	ifr, err := decodeIFrame(body)
	if err != nil {
		return err
	}
	if !ifr.navigation && ifr.resource == "" {
		return errf(http.StatusBadRequest, "resource must be provided if navigation is not enabled")
	}
	proj, req, err := a.runtimeRequest(r, c, org, project)
	if err != nil {
		return err
	}
	if a.frontend() == "" {
		return errf(http.StatusNotImplemented, "iframes need the URL of Rill's frontend: start rill-authd with --frontend-url")
	}
	// Rill's embed page reaches the runtime at runtime_host: without one the URL would load and
	// then fail in the browser, far from the cause.
	if host, _, _ := proj.Runtime(*a.runtimeHost.Load(), a.instanceID, a.audience); host == "" {
		return errf(http.StatusNotImplemented, "iframes need the Rill runtime's URL (runtime_host): start rill-authd with --runtime-host, "+
			"or import project %s/%s from Rill with its deployment's", org, project)
	}
	m, err := a.mintRuntime(r, c, proj, req, func(end *endUser) error {
		// Add an `embed` attribute for security policies and feature flags ({{ .user.embed }}),
		// unless the end user's attributes have one.
		if _, ok := end.attrs["embed"]; !ok {
			if end.attrs == nil {
				end.attrs = map[string]any{}
			}
			end.attrs["embed"] = true
		}
		if !ifr.navigation && ifr.resource != "" {
			// Navigation off: the token opens the embedded resource only (and what it needs).
			sec, err := token.EncodeSec([]token.SecurityRule{token.Transitive(token.ResourceName{Kind: ifr.typ, Name: ifr.resource})})
			if err != nil {
				return errf(http.StatusBadRequest, "resource %q: %v", ifr.resource, err)
			}
			end.sec = sec
		}
		// Rill issues iframe tokens with the runtime's read permissions only.
		end.perms = policy.ReadProd
		return nil
	})
	if err != nil {
		return err
	}
	q := map[string]string{"runtime_host": m.host, "instance_id": m.instance, "access_token": m.raw, "type": ifr.typ, "kind": ifr.typ}
	if ifr.resource != "" {
		q["resource"] = ifr.resource
	}
	if ifr.theme != "" {
		q["theme"] = ifr.theme
	}
	if ifr.themeMode != "" {
		q["theme_mode"] = ifr.themeMode
	}
	if ifr.navigation {
		q["navigation"] = "true"
	}
	if ifr.state != "" {
		q["state"] = ifr.state
	}
	for k, v := range ifr.query {
		q[k] = v
	}
	src, err := embedURL(a.frontend(), q)
	if err != nil {
		return err
	}
	return a.audited(w, r, c, "iframe.issue", fmt.Sprintf("%s for:%s jti:%s ttl:%s resource:%s/%s navigation:%t%s", target, m.end.who, m.jti, m.ttl,
		ifr.typ, ifr.resource, ifr.navigation, originsNote(req.origins)), http.StatusOK,
		apiv1.IFrameResponse{IFrameSrc: src, RuntimeHost: m.host, InstanceID: m.instance, AccessToken: m.raw, TTLSeconds: uint32(m.ttl / time.Second)})
}

// embedURL is Rill's URLs.Embed: <frontend>/-/embed with the query set on it (url.JoinPath,
// then url.Values.Encode, keys sorted).
func embedURL(frontend string, query map[string]string) (string, error) {
	base, err := url.JoinPath(frontend, "-", "embed")
	if err != nil {
		return "", fmt.Errorf("frontend url: %w", err)
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("frontend url: %w", err)
	}
	qs := u.Query()
	for k, v := range query {
		qs.Set(k, v)
	}
	u.RawQuery = qs.Encode()
	return u.String(), nil
}

// decodeIFrame reads GetIFrameRequest's own fields (the credentials fields are decodeCredentials'):
// type (or the deprecated kind, which wins, as in Rill) as a runtime kind (default explore;
// shorthands as runtime.ResourceKindFromShorthand), resource, theme, theme_mode, navigation,
// state and query, by proto or JSON name, null as absent, unknown fields ignored.
func decodeIFrame(body []byte) (iframeRequest, error) {
	var out iframeRequest
	fields := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &fields); err != nil {
			return out, errf(http.StatusBadRequest, "the body is not a JSON object: %v", err)
		}
	}
	get := func(names ...string) (json.RawMessage, string) {
		for _, n := range names {
			if v, ok := fields[n]; ok && string(v) != "null" {
				return v, n
			}
		}
		return nil, ""
	}
	str := func(dst *string, names ...string) error {
		v, name := get(names...)
		if v != nil && json.Unmarshal(v, dst) != nil {
			return errf(http.StatusBadRequest, "field %q must be a string", name)
		}
		return nil
	}
	var kind string
	for _, f := range []struct {
		dst   *string
		names []string
	}{{&out.typ, []string{"type"}}, {&kind, []string{"kind"}}, {&out.resource, []string{"resource"}}, {&out.theme, []string{"theme"}},
		{&out.themeMode, []string{"theme_mode", "themeMode"}}, {&out.state, []string{"state"}}} {
		if err := str(f.dst, f.names...); err != nil {
			return out, err
		}
	}
	if v, name := get("navigation"); v != nil {
		if json.Unmarshal(v, &out.navigation) != nil {
			return out, errf(http.StatusBadRequest, "field %q must be true or false", name)
		}
	}
	if v, name := get("query"); v != nil {
		if json.Unmarshal(v, &out.query) != nil {
			return out, errf(http.StatusBadRequest, "field %q must be an object of strings", name)
		}
	}
	if kind != "" {
		out.typ = kind
	}
	if out.typ == "" {
		out.typ = token.KindExplore
	}
	out.typ = kindFromShorthand(out.typ)
	if out.resource != "" {
		if err := resourceName(out.resource); err != nil {
			return out, err
		}
	}
	return out, nil
}

// kindFromShorthand is Rill's runtime.ResourceKindFromShorthand (runtime/resource_kinds.go).
func kindFromShorthand(kind string) string {
	switch strings.ToLower(strings.TrimSpace(kind)) {
	case "projectparser", "project_parser":
		return "rill.runtime.v1.ProjectParser"
	case "source":
		return "rill.runtime.v1.Source"
	case "model":
		return "rill.runtime.v1.Model"
	case "metricsview", "metrics_view":
		return token.KindMetricsView
	case "explore":
		return token.KindExplore
	case "migration":
		return "rill.runtime.v1.Migration"
	case "report":
		return "rill.runtime.v1.Report"
	case "alert":
		return "rill.runtime.v1.Alert"
	case "pulltrigger", "pull_trigger":
		return "rill.runtime.v1.PullTrigger"
	case "refreshtrigger", "refresh_trigger":
		return "rill.runtime.v1.RefreshTrigger"
	case "bucketplanner", "bucket_planner":
		return "rill.runtime.v1.BucketPlanner"
	case "theme":
		return token.KindTheme
	case "component":
		return "rill.runtime.v1.Component"
	case "canvas":
		return token.KindCanvas
	case "api":
		return "rill.runtime.v1.API"
	case "connector":
		return "rill.runtime.v1.Connector"
	}
	return kind
}
