package client

import (
	"context"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
)

func resourcesPath(org, project, email string) string {
	return "/v1/orgs/" + esc(org) + "/projects/" + esc(project) + "/users/" + esc(email) + "/resources"
}

// SetUserResources limits (or, with nothing restricted, frees) a user's role on a project.
func (c *Client) SetUserResources(ctx context.Context, org, project, email string, req apiv1.ResourcesRequest) (r apiv1.ProjectResources, err error) {
	return r, c.do(ctx, "PUT", resourcesPath(org, project, email), req, &r)
}

// UserResources shows how a user's role on a project is limited.
func (c *Client) UserResources(ctx context.Context, org, project, email string) (r apiv1.ProjectResources, err error) {
	return r, c.do(ctx, "GET", resourcesPath(org, project, email), nil, &r)
}

// IFrame asks for an iframe URL and its runtime token (Rill's GetIFrame).
func (c *Client) IFrame(ctx context.Context, org, project string, req apiv1.IFrameRequest) (r apiv1.IFrameResponse, err error) {
	return r, c.do(ctx, "POST", "/v1/orgs/"+esc(org)+"/projects/"+esc(project)+"/iframe", req, &r)
}

// ClearUserResources lifts the limit on a user's role on a project.
func (c *Client) ClearUserResources(ctx context.Context, org, project, email string) (r apiv1.ProjectResources, err error) {
	return r, c.do(ctx, "DELETE", resourcesPath(org, project, email), nil, &r)
}
