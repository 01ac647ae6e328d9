package extauthz

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/rill-authd/rill-authd/resolver"
)

// HTTPPrefix is where the HTTP mode is served. Envoy's http_service appends the original path
// to it (path_prefix: /ext_authz); forward-auth gateways send the original URI in a header.
const HTTPPrefix = "/ext_authz"

// Handler serves the HTTP mode at HTTPPrefix and hands every other request to next. Put it in
// front of a ServeMux rather than on one: a mux answers a path with dot-segments or "//" with a
// redirect before any handler sees it, and such a path must get the check's 400.
func (s *Server) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; p == HTTPPrefix || strings.HasPrefix(p, HTTPPrefix+"/") {
			s.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ServeHTTP is the HTTP (forward-auth) mode: 200 with the x-rill-* headers when allowed, 401 or
// 403 with www-authenticate and a JSON body otherwise. The original request is read from
// X-Original-URI (nginx), X-Forwarded-Uri (Traefik, Caddy) or the path after HTTPPrefix
// (Envoy), and its method from X-Forwarded-Method or X-Original-Method.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	req := request{method: r.Method, id: r.Header.Get("X-Request-Id")}
	switch auth := r.Header["Authorization"]; len(auth) {
	case 0:
	case 1:
		req.authorization = auth[0]
	default: // joined as Envoy joins them, and refused as such
		req.authorization = strings.Join(auth, ",")
	}
	// The client, as --trusted-proxy-hops finds it: what a token's allowed networks are checked
	// against, and where its last use is recorded from.
	req.addr = resolver.ClientAddr(r, s.cfg.TrustedProxyHops)
	req.where = resolver.Use{IP: req.addr}
	if ua := r.Header["User-Agent"]; len(ua) > 0 {
		req.where.UserAgent = ua[0]
	}
	req.path, req.fault = originalURI(r)
	req.origin, req.referer = r.Header.Get("Origin"), r.Header.Get("Referer")
	if m := r.Header.Get("X-Forwarded-Method"); m != "" {
		req.method = m
	} else if m := r.Header.Get("X-Original-Method"); m != "" {
		req.method = m
	}
	ctx := r.Context()
	var span trace.Span
	if s.cfg.Tracer != nil {
		ctx, span = s.startSpan(ctx, r.Header.Get("Traceparent"), r.Header.Get("Tracestate"))
	}
	o := s.evaluate(ctx, &req)
	defer func() {
		s.observe(&req, o, start)
		if span != nil {
			endSpan(span, &req, o)
		}
	}()
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
		x, err := s.exchange(ctx, o)
		if err != nil {
			if s.logsDenial(unavailableOutcome.label, slog.LevelError) {
				s.log.Error("check failed: minting the runtime token failed", "request_id", req.id, "err", err)
			}
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

// originalURI is the URI of the request being checked. Forward-auth gateways copy the client's
// headers to us (Traefik and Caddy do), so a client can add an X-Original-URI of its own next to
// the gateway's X-Forwarded-Uri: every place that names the URI must then agree, or none is
// believed. An appended path of "" or "/" is the gateway's address of us, not the client's URI.
func originalURI(r *http.Request) (string, pathFault) {
	raw := r.RequestURI
	if !strings.HasPrefix(raw, "/") {
		raw = r.URL.RequestURI()
	}
	uri := strings.TrimPrefix(raw, HTTPPrefix)
	if p := beforeQuery(uri); p == "" || p == "/" {
		uri = ""
	}
	for _, name := range [...]string{"X-Original-Uri", "X-Forwarded-Uri"} {
		for _, v := range r.Header[name] {
			switch {
			case uri == "":
				uri = v
			case beforeQuery(v) != beforeQuery(uri):
				return uri, faultConflictingURI
			}
		}
	}
	return uri, faultNone
}

func beforeQuery(uri string) string {
	if i := strings.IndexByte(uri, '?'); i >= 0 {
		return uri[:i]
	}
	return uri
}
