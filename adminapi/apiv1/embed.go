package apiv1

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
