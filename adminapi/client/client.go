// Package client is the typed Go client of rill-authd's admin API. It imports only the wire
// types of apiv1, so a program using it (rillctl) links no server code.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
)

// Client is a typed client of the admin API.
type Client struct {
	BaseURL string // e.g. http://127.0.0.1:8080
	Token   string
	HTTP    *http.Client
}

// New returns a client of the API at baseURL that authenticates with tok.
func New(baseURL, tok string, opts ...Option) *Client {
	c := &Client{BaseURL: strings.TrimRight(baseURL, "/"), Token: tok, HTTP: &http.Client{Timeout: 30 * time.Second, CheckRedirect: sameServer}}
	for _, o := range opts {
		o(c)
	}
	return c
}

// sameServer follows a redirect only on the server of the first request (scheme, host and
// port): net/http would send the token on to another port or scheme of the same host, or to a
// subdomain, and a 307 or 308 would post a device code there.
func sameServer(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if first := via[0].URL; req.URL.Scheme != first.Scheme || req.URL.Host != first.Host {
		return fmt.Errorf("refused a redirect to another server (%s://%s): rill-authd's API does not move", req.URL.Scheme, req.URL.Host)
	}
	return nil
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the client send its requests with h.
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.HTTP = h } }

// WithTLSConfig makes the client speak TLS with cfg (a CA to trust, a client certificate),
// on an otherwise default transport.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(c *Client) {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = cfg
		c.HTTP = &http.Client{Timeout: 30 * time.Second, Transport: tr, CheckRedirect: sameServer}
	}
}

// TLSConfig builds a client TLS config from PEM files: caFile, if given, is the only CA
// trusted for the server's certificate (else the system's are); certFile and keyFile, if given,
// are the client certificate a daemon with --tls-client-ca-file asks for.
func TLSConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", caFile)
		}
	}
	switch {
	case certFile != "" && keyFile != "":
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate %s with key %s: %w", certFile, keyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	case certFile != "" || keyFile != "":
		return nil, errors.New("a client certificate needs both its certificate and its key file")
	}
	return cfg, nil
}

// Error is a request the API refused: the HTTP status and the {code, message} body it sent.
// HTML is set when the answer was a web page, not the API's JSON (the base URL points at a
// web server or the console, not the API's root); Message then names the page, not its text.
type Error struct {
	Status  int
	Code    int // a gRPC code, as in apiv1.Error
	Message string
	HTML    bool
}

func (e *Error) Error() string { return e.Message }

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
	if err != nil {
		return fmt.Errorf("bad API URL %q: %w", c.BaseURL, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	// Our shapes, also on the routes that answer Rill's clients in Rill's.
	req.Header.Set("Accept", apiv1.MediaType)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach rill-authd at %s: %w", c.BaseURL, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	if isHTML(resp, data) {
		return &Error{Status: resp.StatusCode, HTML: true,
			Message: fmt.Sprintf("%s %s: HTTP %d: the answer is an HTML page%s, not rill-authd's admin API", method, path, resp.StatusCode, pageTitle(data))}
	}
	if resp.StatusCode >= 300 {
		var body apiv1.Error
		jsonErr := json.Unmarshal(data, &body)
		e := &Error{Status: resp.StatusCode, Code: body.Code, Message: body.Message}
		if jsonErr != nil || e.Message == "" {
			e.Message = fmt.Sprintf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, strings.TrimSpace(string(data)))
		}
		return e
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode response of %s %s: %w", method, path, err)
		}
	}
	return nil
}

// isHTML says whether an answer is a web page: by its type, or by its first bytes when it has
// none (the API always answers application/json).
func isHTML(resp *http.Response, data []byte) bool {
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		return strings.HasPrefix(strings.ToLower(ct), "text/html")
	}
	head := strings.ToLower(strings.TrimSpace(string(data[:min(len(data), 64)])))
	return strings.HasPrefix(head, "<!doctype html") || strings.HasPrefix(head, "<html")
}

// pageTitle is ` ("<title>")` of an HTML page, or "" when it has none.
func pageTitle(data []byte) string {
	s := string(data[:min(len(data), 8192)])
	i := strings.Index(strings.ToLower(s), "<title>")
	if i < 0 {
		return ""
	}
	s = s[i+len("<title>"):]
	j := strings.Index(strings.ToLower(s), "</title>")
	if j < 0 || j > 200 {
		return ""
	}
	return fmt.Sprintf(" (%q)", strings.Join(strings.Fields(s[:j]), " "))
}

func esc(s string) string { return url.PathEscape(s) }

// Whoami returns the caller.
func (c *Client) Whoami(ctx context.Context) (w apiv1.Whoami, err error) {
	return w, c.do(ctx, "GET", "/v1/whoami", nil, &w)
}

// CreateOrg creates an org (superusers).
func (c *Client) CreateOrg(ctx context.Context, name string) (o apiv1.Org, err error) {
	return o, c.do(ctx, "POST", "/v1/orgs", apiv1.NameRequest{Name: name}, &o)
}

// ListOrgs lists the orgs the caller can read.
func (c *Client) ListOrgs(ctx context.Context) (os []apiv1.Org, err error) {
	return os, c.do(ctx, "GET", "/v1/orgs", nil, &os)
}

// CreateProject creates a project in org.
func (c *Client) CreateProject(ctx context.Context, org, name string) (p apiv1.Project, err error) {
	return p, c.do(ctx, "POST", "/v1/orgs/"+esc(org)+"/projects", apiv1.NameRequest{Name: name}, &p)
}

// ListProjects lists org's projects.
func (c *Client) ListProjects(ctx context.Context, org string) (ps []apiv1.Project, err error) {
	return ps, c.do(ctx, "GET", "/v1/orgs/"+esc(org)+"/projects", nil, &ps)
}

// CreateUser creates a user.
func (c *Client) CreateUser(ctx context.Context, req apiv1.UserRequest) (u apiv1.User, err error) {
	return u, c.do(ctx, "POST", "/v1/users", req, &u)
}

// ListUsers lists the users with a role in org ("" for all: superusers).
func (c *Client) ListUsers(ctx context.Context, org string) (us []apiv1.User, err error) {
	p := "/v1/users"
	if org != "" {
		p += "?org=" + url.QueryEscape(org)
	}
	return us, c.do(ctx, "GET", p, nil, &us)
}

// SetUserRole changes a user's role in an org or project.
func (c *Client) SetUserRole(ctx context.Context, email string, req apiv1.RoleRequest) (u apiv1.User, err error) {
	return u, c.do(ctx, "PUT", "/v1/users/"+esc(email)+"/roles", req, &u)
}

// DeleteUser deletes a user and their tokens (superusers).
func (c *Client) DeleteUser(ctx context.Context, email string) (u apiv1.User, err error) {
	return u, c.do(ctx, "DELETE", "/v1/users/"+esc(email), nil, &u)
}

func svcPath(org, name string) string { return "/v1/orgs/" + esc(org) + "/services/" + esc(name) }

// CreateService creates a service and its first token.
func (c *Client) CreateService(ctx context.Context, org string, req apiv1.ServiceRequest) (s apiv1.ServiceCreated, err error) {
	return s, c.do(ctx, "POST", "/v1/orgs/"+esc(org)+"/services", req, &s)
}

// ListServices lists org's services.
func (c *Client) ListServices(ctx context.Context, org string) (ss []apiv1.Service, err error) {
	return ss, c.do(ctx, "GET", "/v1/orgs/"+esc(org)+"/services", nil, &ss)
}

// ShowService returns a service and its tokens.
func (c *Client) ShowService(ctx context.Context, org, name string) (s apiv1.ServiceDetail, err error) {
	return s, c.do(ctx, "GET", svcPath(org, name), nil, &s)
}

// EditService renames a service or replaces its attributes.
func (c *Client) EditService(ctx context.Context, org, name string, req apiv1.ServiceEdit) (s apiv1.Service, err error) {
	return s, c.do(ctx, "PATCH", svcPath(org, name), req, &s)
}

// SetServiceRole changes a service's org role or a project role.
func (c *Client) SetServiceRole(ctx context.Context, org, name string, req apiv1.RoleRequest) (s apiv1.Service, err error) {
	return s, c.do(ctx, "PUT", svcPath(org, name)+"/roles", req, &s)
}

// DeleteService deletes a service; its tokens stop working at once.
func (c *Client) DeleteService(ctx context.Context, org, name string) (s apiv1.Service, err error) {
	return s, c.do(ctx, "DELETE", svcPath(org, name), nil, &s)
}

// IssueServiceToken gives a service another token.
func (c *Client) IssueServiceToken(ctx context.Context, org, name string) (t apiv1.IssuedToken, err error) {
	return t, c.do(ctx, "POST", svcPath(org, name)+"/tokens", nil, &t)
}

// IssueServiceTokenWith gives a service another token as req asks (its lifetime, its networks).
func (c *Client) IssueServiceTokenWith(ctx context.Context, org, name string, req apiv1.ServiceTokenRequest) (t apiv1.IssuedToken, err error) {
	return t, c.do(ctx, "POST", svcPath(org, name)+"/tokens", req, &t)
}

// GetTokenPolicy returns org's token lifetime policy.
func (c *Client) GetTokenPolicy(ctx context.Context, org string) (p apiv1.TokenPolicy, err error) {
	return p, c.do(ctx, "GET", "/v1/orgs/"+esc(org)+"/token-policy", nil, &p)
}

// SetTokenPolicy replaces org's token lifetime policy.
func (c *Client) SetTokenPolicy(ctx context.Context, org string, p apiv1.TokenPolicy) (out apiv1.TokenPolicy, err error) {
	return out, c.do(ctx, "PUT", "/v1/orgs/"+esc(org)+"/token-policy", p, &out)
}

// GetSigninRules returns org's sign-in (provisioning) rules.
func (c *Client) GetSigninRules(ctx context.Context, org string) (r apiv1.SigninRules, err error) {
	return r, c.do(ctx, "GET", "/v1/orgs/"+esc(org)+"/signin-rules", nil, &r)
}

// SetSigninRules replaces org's sign-in rules, and returns them as stored.
func (c *Client) SetSigninRules(ctx context.Context, org string, r apiv1.SigninRules) (out apiv1.SigninRules, err error) {
	return out, c.do(ctx, "PUT", "/v1/orgs/"+esc(org)+"/signin-rules", r, &out)
}

// EditServiceToken changes where one token of a service (by id or prefix) may be used.
func (c *Client) EditServiceToken(ctx context.Context, org, name, ref string, edit apiv1.TokenLimitsEdit) (t apiv1.TokenInfo, err error) {
	return t, c.do(ctx, "PATCH", svcPath(org, name)+"/tokens/"+esc(ref), edit, &t)
}

// EditToken changes where a user token (by id or prefix; email's for superusers) may be used.
func (c *Client) EditToken(ctx context.Context, email, ref string, edit apiv1.TokenLimitsEdit) (t apiv1.TokenInfo, err error) {
	p := "/v1/tokens/" + esc(ref)
	if q := userQuery(email); q != "" {
		p += "?" + q
	}
	return t, c.do(ctx, "PATCH", p, edit, &t)
}

// ListServiceTokens lists a service's tokens.
func (c *Client) ListServiceTokens(ctx context.Context, org, name string) (ts []apiv1.TokenInfo, err error) {
	return ts, c.do(ctx, "GET", svcPath(org, name)+"/tokens", nil, &ts)
}

// RevokeServiceToken revokes one token of a service by id or prefix.
func (c *Client) RevokeServiceToken(ctx context.Context, org, name, ref string) (r apiv1.Revoked, err error) {
	return r, c.do(ctx, "DELETE", svcPath(org, name)+"/tokens/"+esc(ref), nil, &r)
}

// IssueToken issues a user token.
func (c *Client) IssueToken(ctx context.Context, req apiv1.TokenRequest) (t apiv1.IssuedToken, err error) {
	return t, c.do(ctx, "POST", "/v1/tokens", req, &t)
}

func userQuery(email string) string {
	if email == "" {
		return ""
	}
	return "user_email=" + url.QueryEscape(email)
}

// ListTokens lists the caller's user tokens (or email's, for superusers).
func (c *Client) ListTokens(ctx context.Context, email string) (ts []apiv1.TokenInfo, err error) {
	p := "/v1/tokens"
	if q := userQuery(email); q != "" {
		p += "?" + q
	}
	return ts, c.do(ctx, "GET", p, nil, &ts)
}

// RevokeToken revokes a user token by id, prefix or whole token.
func (c *Client) RevokeToken(ctx context.Context, email, ref string) (r apiv1.Revoked, err error) {
	p := "/v1/tokens/" + esc(ref)
	if q := userQuery(email); q != "" {
		p += "?" + q
	}
	return r, c.do(ctx, "DELETE", p, nil, &r)
}

// RevokeTokenByName revokes the one user token with this display name.
func (c *Client) RevokeTokenByName(ctx context.Context, email, name string) (r apiv1.Revoked, err error) {
	q := url.Values{"display_name": {name}}
	if email != "" {
		q.Set("user_email", email)
	}
	return r, c.do(ctx, "DELETE", "/v1/tokens?"+q.Encode(), nil, &r)
}

// Represent issues a token acting as the user with email (superusers only; ttlMinutes 0: the
// server's default, an hour).
func (c *Client) Represent(ctx context.Context, email string, ttlMinutes int64) (t apiv1.IssuedToken, err error) {
	return t, c.do(ctx, "POST", "/v1/tokens/represent", apiv1.RepresentRequest{Email: email, TTLMinutes: ttlMinutes}, &t)
}

// RevokeAllTokens revokes every token of the user with email ("": the caller's own), those
// the user holds and those they issued to act as others; with representing, only the tokens
// superusers issued to act as that user (superusers only).
func (c *Client) RevokeAllTokens(ctx context.Context, email string, representing bool) (r apiv1.Revoked, err error) {
	q := url.Values{"all": {"true"}}
	if representing {
		q = url.Values{"representing": {"true"}}
	}
	if email != "" {
		q.Set("user_email", email)
	}
	return r, c.do(ctx, "DELETE", "/v1/tokens?"+q.Encode(), nil, &r)
}

// ListAudit lists audit events, newest last.
func (c *Client) ListAudit(ctx context.Context, since, actor string, limit int) (evs []apiv1.AuditEvent, err error) {
	q := url.Values{}
	if since != "" {
		q.Set("since", since)
	}
	if actor != "" {
		q.Set("actor", actor)
	}
	if limit > 0 {
		q.Set("limit", fmt.Sprint(limit))
	}
	return evs, c.do(ctx, "GET", "/v1/audit?"+q.Encode(), nil, &evs)
}

// RotateSigningKey makes a new signing key (superusers): published at once, it signs after the
// daemon's activation delay, or at once with now.
func (c *Client) RotateSigningKey(ctx context.Context, now bool) (r apiv1.RotateResult, err error) {
	return r, c.do(ctx, "POST", "/v1/admin/signing-keys/rotate", apiv1.RotateRequest{Now: now}, &r)
}

// RetireSigningKey takes a key that does not sign out of the JWKS at once (superusers).
func (c *Client) RetireSigningKey(ctx context.Context, kid string) (k apiv1.SigningKey, err error) {
	return k, c.do(ctx, "POST", "/v1/admin/signing-keys/"+esc(kid)+"/retire", nil, &k)
}

// SigningKeys lists every signing key and its state, oldest first (superusers).
func (c *Client) SigningKeys(ctx context.Context) (ks []apiv1.SigningKey, err error) {
	return ks, c.do(ctx, "GET", "/v1/admin/signing-keys", nil, &ks)
}

// Credentials asks for an ephemeral token for an end user of org/project.
func (c *Client) Credentials(ctx context.Context, org, project string, req apiv1.CredentialsRequest) (r apiv1.CredentialsResponse, err error) {
	return r, c.do(ctx, "POST", "/v1/orgs/"+esc(org)+"/projects/"+esc(project)+"/credentials", req, &r)
}

// Introspect describes a token (RFC 7662).
func (c *Client) Introspect(ctx context.Context, tok string) (r apiv1.Introspection, err error) {
	return r, c.do(ctx, "POST", "/v1/introspect", apiv1.IntrospectRequest{Token: tok}, &r)
}

// PluginStatus lists the attribute plugins and their health (superusers).
func (c *Client) PluginStatus(ctx context.Context) (s []apiv1.PluginStatus, err error) {
	return s, c.do(ctx, "GET", "/v1/admin/plugins", nil, &s)
}
