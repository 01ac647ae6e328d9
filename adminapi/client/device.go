package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
)

// The device authorization grant (RFC 8628), as rillctl login uses it. Its endpoints are
// OAuth's, not the admin API's: form-encoded requests and RFC 6749 errors.

// Paths of the device flow's endpoints. The metadata (RFC 8414) names the other two; rillctl
// reads them from there, so a daemon may move them.
const (
	OAuthMetadataPath = "/.well-known/oauth-authorization-server"
	DeviceClientID    = "rillctl"
	DeviceGrantType   = "urn:ietf:params:oauth:grant-type:device_code"
)

// OAuthError is an OAuth endpoint's refusal: its error code (authorization_pending,
// slow_down, access_denied, expired_token, invalid_grant...) and description.
type OAuthError struct {
	Status int
	apiv1.OAuthError
}

func (e *OAuthError) Error() string {
	if e.Description != "" {
		return e.OAuthError.Error + ": " + e.Description
	}
	return e.OAuthError.Error
}

// OAuthMetadata reads the server's RFC 8414 metadata.
func (c *Client) OAuthMetadata(ctx context.Context) (m apiv1.OAuthMetadata, err error) {
	return m, c.do(ctx, "GET", OAuthMetadataPath, nil, &m)
}

// DeviceAuthorize asks for a device code at endpoint (the metadata's
// device_authorization_endpoint), naming host as the machine asking.
func (c *Client) DeviceAuthorize(ctx context.Context, endpoint, host string) (a apiv1.DeviceAuthorization, err error) {
	return a, c.postForm(ctx, endpoint, url.Values{"client_id": {DeviceClientID}, "host": {host}}, &a)
}

// DeviceToken polls endpoint (the metadata's token_endpoint) once with deviceCode. Until the
// user decides, the error is an *OAuthError saying authorization_pending or slow_down.
func (c *Client) DeviceToken(ctx context.Context, endpoint, deviceCode string) (t apiv1.OAuthToken, err error) {
	return t, c.postForm(ctx, endpoint, url.Values{"client_id": {DeviceClientID}, "grant_type": {DeviceGrantType}, "device_code": {deviceCode}}, &t)
}

// RevokeCurrentToken revokes the token the client authenticates with (rillctl logout).
func (c *Client) RevokeCurrentToken(ctx context.Context) (r apiv1.Revoked, err error) {
	return r, c.do(ctx, "DELETE", "/v1/tokens/current", nil, &r)
}

// postForm posts form to the path of endpoint on the client's own server, and decodes the JSON
// answer. Only the path of the metadata's URL is used: its host is the daemon's --public-url,
// which rillctl may not reach by that name (and the metadata is not trusted to send the device
// code anywhere else).
func (c *Client) postForm(ctx context.Context, endpoint string, form url.Values, out any) error {
	u, err := url.Parse(endpoint)
	if err != nil || !strings.HasPrefix(u.Path, "/") {
		return fmt.Errorf("the server's OAuth metadata names %q, not a URL", endpoint)
	}
	endpoint = c.BaseURL + u.EscapedPath()
	req, err := http.NewRequestWithContext(ctx, "POST", endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("bad endpoint %q: %w", endpoint, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach rill-authd at %s: %w", c.BaseURL, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode >= 300 {
		e := &OAuthError{Status: resp.StatusCode}
		if json.Unmarshal(data, &e.OAuthError) != nil || e.OAuthError.Error == "" {
			return fmt.Errorf("POST %s: HTTP %d: %s", endpoint, resp.StatusCode, strings.TrimSpace(string(data[:min(len(data), 200)])))
		}
		return e
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode response of POST %s: %w", endpoint, err)
	}
	return nil
}
