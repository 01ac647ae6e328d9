package extauthz

import (
	"net/http"
	"strings"
	"time"
)

// HTTPPrefix is where the HTTP mode is served. Envoy's http_service appends the original path
// to it (path_prefix: /ext_authz); forward-auth gateways send the original URI in a header.
const HTTPPrefix = "/ext_authz"

// ServeHTTP is the HTTP (forward-auth) mode: 200 with the x-rill-* headers when allowed, 401 or
// 403 with www-authenticate and a JSON body otherwise. The original request is read from
// X-Original-URI (nginx), X-Forwarded-Uri (Traefik, Caddy) or the path after HTTPPrefix
// (Envoy), and its method from X-Forwarded-Method or X-Original-Method.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	req := request{authorization: r.Header.Get("Authorization"), method: r.Method, id: r.Header.Get("X-Request-Id")}
	switch {
	case r.Header.Get("X-Original-URI") != "":
		req.path = r.Header.Get("X-Original-URI")
	case r.Header.Get("X-Forwarded-Uri") != "":
		req.path = r.Header.Get("X-Forwarded-Uri")
	default:
		req.path = strings.TrimPrefix(r.URL.RequestURI(), HTTPPrefix)
	}
	if m := r.Header.Get("X-Forwarded-Method"); m != "" {
		req.method = m
	} else if m := r.Header.Get("X-Original-Method"); m != "" {
		req.method = m
	}
	o := s.evaluate(r.Context(), &req)
	defer func() { s.observe(&req, o, start) }()
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if o.verdict != allow {
		for _, kv := range o.set {
			h.Set(kv.name, kv.value)
		}
		w.WriteHeader(o.verdict.status())
		_, _ = w.Write([]byte(o.body))
		return
	}
	for _, kv := range o.set {
		h[http.CanonicalHeaderKey(kv.name)] = []string{kv.value}
	}
	if s.cfg.Exchange != nil {
		x, err := s.exchange(r.Context(), o)
		if err != nil {
			s.log.Error("check failed: minting the runtime token failed", "request_id", req.id, "err", err)
			o = unavailableOutcome
			h.Set("Content-Type", "application/json")
			w.WriteHeader(o.verdict.status())
			_, _ = w.Write([]byte(o.body))
			return
		}
		h.Set("Authorization", x.bearer)
	}
	if remove := headersToRemove(o.decision, r.Header); remove != nil {
		for i, k := range remove {
			remove[i] = strings.ToLower(k)
		}
		h.Set("X-Envoy-Auth-Headers-To-Remove", strings.Join(remove, ","))
	}
	w.WriteHeader(http.StatusOK)
}
