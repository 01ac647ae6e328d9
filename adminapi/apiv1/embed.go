package apiv1

import (
	"encoding/json"
	"time"
)

// ResourceName is a resource of a project's runtime, as Rill's admin API names it
// (rill.admin.v1.ResourceName: type, name). Type is the runtime kind
// ("rill.runtime.v1.Explore", "rill.runtime.v1.Canvas"); requests also take "explore" and
// "canvas".
type ResourceName struct {
	Type string `json:"type"`
	Name string `json:"name"`
}

// ResourcesRequest sets how a user's role on a project is limited to resources, as Rill's
// SetProjectMemberUserRole does with resources and restrict_resources (the CLI's `rill user
// set-resources`): resources given restrict the user to them; restrict_resources with none
// restricts the user to nothing; neither clears the restriction.
type ResourcesRequest struct {
	Resources         []ResourceName `json:"resources"`
	RestrictResources bool           `json:"restrict_resources"`
}

// ProjectResources is a user's restriction on one project.
type ProjectResources struct {
	Email             string         `json:"email"`
	Org               string         `json:"org"`
	Project           string         `json:"project"`
	ProjectRole       string         `json:"project_role"`
	RestrictResources bool           `json:"restrict_resources"`
	Resources         []ResourceName `json:"resources"`
}

// IFrameRequest is Rill's GetIFrameRequest as its JSON transcoder reads it (the credentials
// fields, plus what the frontend shows). Type is a runtime kind or a shorthand ("explore",
// "canvas"); Navigation false limits the token to Resource.
type IFrameRequest struct {
	UserID         string            `json:"userId,omitempty"`
	UserEmail      string            `json:"userEmail,omitempty"`
	Attributes     map[string]any    `json:"attributes,omitempty"`
	ExternalUserID string            `json:"externalUserId,omitempty"`
	TTLSeconds     uint32            `json:"ttlSeconds,omitempty"`
	Branch         string            `json:"branch,omitempty"`
	Type           string            `json:"type,omitempty"`
	Resource       string            `json:"resource,omitempty"`
	Theme          string            `json:"theme,omitempty"`
	ThemeMode      string            `json:"themeMode,omitempty"`
	Navigation     bool              `json:"navigation,omitempty"`
	State          string            `json:"state,omitempty"`
	Query          map[string]string `json:"query,omitempty"`
	// AllowedOrigins binds the token to the customer's site, as CredentialsRequest's.
	AllowedOrigins []string `json:"allowed_origins,omitempty"`
}

// IFrameResponse is Rill's GetIFrameResponse: the URL to put in the iframe's src, and the
// runtime token in it.
type IFrameResponse struct {
	IFrameSrc   string `json:"iframeSrc"`
	RuntimeHost string `json:"runtimeHost"`
	InstanceID  string `json:"instanceId"`
	AccessToken string `json:"accessToken"`
	TTLSeconds  uint32 `json:"ttlSeconds"`
}

// MagicTokenRequest issues a public URL (a magic token, rill_mgc_), with the fields of Rill's
// IssueMagicAuthTokenRequest (rilldata/rill proto/rill/admin/v1/api.proto): the resources it
// opens, a row filter per metrics view (a rill.runtime.v1.Expression in protojson; "*": every
// metrics view), the fields it may see, the dashboard state, a display name, and ttl_minutes
// (0 or absent: it never expires).
type MagicTokenRequest struct {
	Resources          []ResourceName             `json:"resources,omitempty"`
	MetricsViewFilters map[string]json.RawMessage `json:"metrics_view_filters,omitempty"`
	Fields             []string                   `json:"fields,omitempty"`
	State              string                     `json:"state,omitempty"`
	DisplayName        string                     `json:"display_name,omitempty"`
	TTLMinutes         int64                      `json:"ttl_minutes,omitempty"`
	// AllowedNetworks (CIDRs) and AllowedOrigins (https://shop.example.com) bind the URL to
	// where it may be opened: an embed shown only on a customer's site.
	AllowedNetworks []string `json:"allowed_networks,omitempty"`
	AllowedOrigins  []string `json:"allowed_origins,omitempty"`
}

// MagicToken is a public URL as Rill's MagicAuthToken shows it; never its secret.
type MagicToken struct {
	ID                 string                     `json:"id"`
	Prefix             string                     `json:"prefix"`
	Org                string                     `json:"org"`
	Project            string                     `json:"project"`
	Resources          []ResourceName             `json:"resources"`
	MetricsViewFilters map[string]json.RawMessage `json:"metrics_view_filters,omitempty"`
	Fields             []string                   `json:"fields,omitempty"`
	State              string                     `json:"state,omitempty"`
	DisplayName        string                     `json:"display_name,omitempty"`
	Attributes         map[string]any             `json:"attributes,omitempty"`
	CreatedByUserID    string                     `json:"created_by_user_id,omitempty"`
	CreatedByUserEmail string                     `json:"created_by_user_email,omitempty"`
	CreatedAt          time.Time                  `json:"created_on"`
	ExpiresAt          time.Time                  `json:"expires_on,omitzero"`
	LastUsedAt         time.Time                  `json:"used_on,omitzero"`
	// LastUsedIP and LastUsedUserAgent are where it was last used from, as TokenInfo's.
	LastUsedIP        string   `json:"last_used_ip,omitempty"`
	LastUsedUserAgent string   `json:"last_used_user_agent,omitempty"`
	AllowedNetworks   []string `json:"allowed_networks,omitempty"`
	AllowedOrigins    []string `json:"allowed_origins,omitempty"`
	// BeyondPolicy, in lists, says how the URL outlives its org's token policy (it was issued
	// before the policy, or under a looser one): TokenInfo.BeyondPolicy's words.
	BeyondPolicy string `json:"beyond_policy,omitempty"`
}

// IssuedMagicToken is a new public URL: the only time its token (and so its URL) is shown.
// URL is Rill's <frontend>/<org>/<project>/-/share/<token>, empty when the daemon has no
// --frontend-url.
type IssuedMagicToken struct {
	Token string `json:"token"`
	URL   string `json:"url,omitempty"`
	MagicToken
}
