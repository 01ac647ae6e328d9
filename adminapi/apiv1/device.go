package apiv1

import "time"

// The device authorization grant (RFC 8628) behind `rillctl login`. Its endpoints speak OAuth's
// own shapes (form-encoded requests, snake_case answers and RFC 6749 errors), not the admin
// API's; the approval is an admin API call of the signed-in user (the console's page).

// OAuthMetadata is the RFC 8414 document at /.well-known/oauth-authorization-server.
type OAuthMetadata struct {
	Issuer                      string   `json:"issuer"`
	DeviceAuthorizationEndpoint string   `json:"device_authorization_endpoint"`
	TokenEndpoint               string   `json:"token_endpoint"`
	GrantTypesSupported         []string `json:"grant_types_supported"`
	ResponseTypesSupported      []string `json:"response_types_supported"`
	TokenEndpointAuthMethods    []string `json:"token_endpoint_auth_methods_supported"`
}

// DeviceAuthorization answers the device authorization endpoint (RFC 8628 section 3.2).
type DeviceAuthorization struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int    `json:"expires_in"`
	Interval                int    `json:"interval"`
}

// OAuthToken answers the token endpoint once the request is approved.
type OAuthToken struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in,omitempty"`
}

// OAuthError is an RFC 6749 section 5.2 error: authorization_pending, slow_down,
// access_denied, expired_token, invalid_grant, invalid_client, invalid_request...
type OAuthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// DeviceRequest is a device authorization request as the approving user sees it
// (GET /v1/device?user_code=...).
type DeviceRequest struct {
	UserCode  string    `json:"user_code"`
	Host      string    `json:"host,omitempty"`
	IP        string    `json:"ip,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	State     string    `json:"state"`
}

// DeviceDecision is the body of POST /v1/device/approve and /v1/device/deny.
type DeviceDecision struct {
	UserCode string `json:"user_code"`
}
