package apiv1

import (
	"encoding/json"
	"time"
)

// Rill's shapes: the answers of the routes whose method and path are those of Rill's admin API
// gateway (rilldata/rill proto/rill/admin/v1/api.proto, google.api.http), as that gateway
// writes them (grpc-gateway's default marshaler over protojson: lowerCamelCase names, every
// field present, unset messages null, int64 as a string, timestamps in RFC 3339). A client of
// Rill's API reads them unchanged. A client that sends MediaType in Accept (rillctl, the
// console) gets this package's own shapes on those routes instead.

// MediaType, in a request's Accept header, asks a route that shares its path with Rill's
// gateway for rill-authd's own answer (the types above) rather than Rill's (the Rill* types).
const MediaType = "application/vnd.rill-authd.v1+json"

// RillTime is a google.protobuf.Timestamp as protojson writes it: UTC, "Z", 0, 3, 6 or 9
// fractional digits; null when zero (an unset message field).
type RillTime time.Time

// MarshalJSON writes t as protojson writes a Timestamp.
func (t RillTime) MarshalJSON() ([]byte, error) {
	tt := time.Time(t)
	if tt.IsZero() {
		return []byte("null"), nil
	}
	tt = tt.UTC()
	layout := "2006-01-02T15:04:05"
	switch ns := tt.Nanosecond(); {
	case ns == 0:
	case ns%1e6 == 0:
		layout += ".000"
	case ns%1e3 == 0:
		layout += ".000000"
	default:
		layout += ".000000000"
	}
	return json.Marshal(tt.Format(layout + "Z"))
}

// UnmarshalJSON reads an RFC 3339 time or null.
func (t *RillTime) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*t = RillTime{}
		return nil
	}
	var tt time.Time
	if err := json.Unmarshal(b, &tt); err != nil {
		return err
	}
	*t = RillTime(tt)
	return nil
}

// RillMagicAuthToken is Rill's MagicAuthToken. URL and Token are empty: the token's secret is
// not kept (Rill's later versions keep it to show the URL again). ProjectID is the project's
// id; Filter, ResourceType and ResourceName are the deprecated single-resource fields (empty:
// Resources and MetricsViewFilters hold them).
type RillMagicAuthToken struct {
	ID                 string                     `json:"id"`
	ProjectID          string                     `json:"projectId"`
	URL                string                     `json:"url"`
	Token              string                     `json:"token"`
	CreatedOn          RillTime                   `json:"createdOn"`
	ExpiresOn          RillTime                   `json:"expiresOn"`
	UsedOn             RillTime                   `json:"usedOn"`
	CreatedByUserID    string                     `json:"createdByUserId"`
	CreatedByUserEmail string                     `json:"createdByUserEmail"`
	Attributes         map[string]any             `json:"attributes"`
	Resources          []ResourceName             `json:"resources"`
	ResourceType       string                     `json:"resourceType"`
	ResourceName       string                     `json:"resourceName"`
	Filter             json.RawMessage            `json:"filter"`
	MetricsViewFilters map[string]json.RawMessage `json:"metricsViewFilters"`
	Fields             []string                   `json:"fields"`
	State              string                     `json:"state"`
	DisplayName        string                     `json:"displayName"`
}

// RillIssueMagicAuthTokenResponse is Rill's IssueMagicAuthTokenResponse.
type RillIssueMagicAuthTokenResponse struct {
	Token string `json:"token"`
	URL   string `json:"url"`
}

// RillListMagicAuthTokensResponse is Rill's ListMagicAuthTokensResponse: a page of tokens, and
// the opaque token of the next page ("" on the last).
type RillListMagicAuthTokensResponse struct {
	Tokens        []RillMagicAuthToken `json:"tokens"`
	NextPageToken string               `json:"nextPageToken"`
}

// RillGetCurrentMagicAuthTokenResponse is Rill's GetCurrentMagicAuthTokenResponse.
type RillGetCurrentMagicAuthTokenResponse struct {
	Token RillMagicAuthToken `json:"token"`
}

// RillEmpty is an empty response message (RevokeMagicAuthTokenResponse,
// RevokeCurrentAuthTokenResponse): {}.
type RillEmpty struct{}

// RillService is Rill's Service. OrgID is empty: rill-authd's orgs have no id but their name.
type RillService struct {
	ID         string         `json:"id"`
	Name       string         `json:"name"`
	OrgID      string         `json:"orgId"`
	OrgName    string         `json:"orgName"`
	Attributes map[string]any `json:"attributes"`
	CreatedOn  RillTime       `json:"createdOn"`
	UpdatedOn  RillTime       `json:"updatedOn"`
}

// RillOrganizationMemberService is Rill's OrganizationMemberService: a service with its org role.
type RillOrganizationMemberService struct {
	ID              string         `json:"id"`
	Name            string         `json:"name"`
	OrgID           string         `json:"orgId"`
	OrgName         string         `json:"orgName"`
	RoleName        string         `json:"roleName"`
	HasProjectRoles bool           `json:"hasProjectRoles"`
	Attributes      map[string]any `json:"attributes"`
	CreatedOn       RillTime       `json:"createdOn"`
	UpdatedOn       RillTime       `json:"updatedOn"`
}

// RillProjectMemberService is Rill's ProjectMemberService: a service's role on one project.
type RillProjectMemberService struct {
	ID              string         `json:"id"`
	Name            string         `json:"name"`
	OrgID           string         `json:"orgId"`
	OrgName         string         `json:"orgName"`
	OrgRoleName     string         `json:"orgRoleName"`
	ProjectID       string         `json:"projectId"`
	ProjectName     string         `json:"projectName"`
	ProjectRoleName string         `json:"projectRoleName"`
	Attributes      map[string]any `json:"attributes"`
	CreatedOn       RillTime       `json:"createdOn"`
	UpdatedOn       RillTime       `json:"updatedOn"`
}

// RillListServicesResponse is Rill's ListServicesResponse.
type RillListServicesResponse struct {
	Services []RillOrganizationMemberService `json:"services"`
}

// RillServiceResponse is Rill's CreateServiceResponse, UpdateServiceResponse and
// DeleteServiceResponse (one field, service).
type RillServiceResponse struct {
	Service RillService `json:"service"`
}

// RillGetServiceResponse is Rill's GetServiceResponse.
type RillGetServiceResponse struct {
	Service            RillOrganizationMemberService `json:"service"`
	ProjectMemberships []RillProjectMemberService    `json:"projectMemberships"`
}

// RillServiceToken is Rill's ServiceToken.
type RillServiceToken struct {
	ID        string   `json:"id"`
	Prefix    string   `json:"prefix"`
	CreatedOn RillTime `json:"createdOn"`
	ExpiresOn RillTime `json:"expiresOn"`
}

// RillListServiceAuthTokensResponse is Rill's ListServiceAuthTokensResponse.
type RillListServiceAuthTokensResponse struct {
	Tokens []RillServiceToken `json:"tokens"`
}

// RillIssuedToken is Rill's IssueServiceAuthTokenResponse: the token, once.
type RillIssuedToken struct {
	Token string `json:"token"`
}
