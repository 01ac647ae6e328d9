package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/rill-authd/rill-authd/adminapi"
	"github.com/rill-authd/rill-authd/adminapi/apiv1"
)

// apiError is the admin API refusing a request: its status and message, shown in the page.
type apiError struct {
	Status  int
	Message string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d: %s", e.Status, e.Message) }

func statusOf(err error) int {
	var e *apiError
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// recorder is the ResponseWriter of an in-process API request.
type recorder struct {
	h    http.Header
	code int
	body bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.h }
func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.body.Write(b)
}

// call makes one admin API request as the bearer of tok, in-process: the API's own handler
// authenticates, authorizes and audits it exactly as it would a request from rillctl, and
// records the audit event as made "via: ui". body (if not nil) is sent as JSON, the answer
// decoded into out (if not nil). A refusal comes back as an *apiError.
func (c *Console) call(from *http.Request, tok, method, path string, query url.Values, body, out any) error {
	var rd io.Reader = http.NoBody
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	u := &url.URL{Path: path, RawQuery: query.Encode()}
	req, err := http.NewRequestWithContext(adminapi.WithVia(from.Context(), "ui"), method, u.String(), rd)
	if err != nil {
		return fmt.Errorf("build %s %s: %w", method, path, err)
	}
	req.RemoteAddr, req.Host, req.TLS = from.RemoteAddr, from.Host, from.TLS
	if ua := from.UserAgent(); ua != "" { // the session token's last use is the browser's
		req.Header.Set("User-Agent", ua)
	}
	// The browser's address as the proxies in front saw it: a token bound to networks is
	// checked against it (--trusted-proxy-hops), in the console as in the API.
	if xff := from.Header["X-Forwarded-For"]; xff != nil {
		req.Header["X-Forwarded-For"] = xff
	}
	req.RequestURI = u.RequestURI()
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", apiv1.MediaType) // our shapes, not Rill's, on the routes Rill's clients share
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := &recorder{h: http.Header{}}
	c.o.API.ServeHTTP(rec, req)
	if rec.code == 0 {
		rec.code = http.StatusOK
	}
	if rec.code >= 400 {
		var e apiv1.Error
		if json.Unmarshal(rec.body.Bytes(), &e) != nil || e.Message == "" {
			e.Message = http.StatusText(rec.code)
		}
		return &apiError{Status: rec.code, Message: e.Message}
	}
	if out != nil {
		if err := json.Unmarshal(rec.body.Bytes(), out); err != nil {
			return fmt.Errorf("decode the answer to %s %s: %w", method, path, err)
		}
	}
	return nil
}

// as is c.call with the session's token.
func (v *view) call(method, path string, query url.Values, body, out any) error {
	return v.c.call(v.r, v.s.token, method, path, query, body, out)
}
