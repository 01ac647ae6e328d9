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

func magicPath(org, project string) string {
	return "/v1/orgs/" + esc(org) + "/projects/" + esc(project) + "/tokens/magic"
}

// IssueMagicToken issues a public URL (a magic token) on org/project.
func (c *Client) IssueMagicToken(ctx context.Context, org, project string, req apiv1.MagicTokenRequest) (t apiv1.IssuedMagicToken, err error) {
	return t, c.do(ctx, "POST", magicPath(org, project), req, &t)
}

// ListMagicTokens lists the live public URLs of org/project (all of them with
// manage_magic_auth_tokens, else the caller's own).
func (c *Client) ListMagicTokens(ctx context.Context, org, project string) (ts []apiv1.MagicToken, err error) {
	return ts, c.do(ctx, "GET", magicPath(org, project), nil, &ts)
}

// CurrentMagicToken shows the public URL whose token the client holds.
func (c *Client) CurrentMagicToken(ctx context.Context) (t apiv1.MagicToken, err error) {
	return t, c.do(ctx, "GET", "/v1/magic-tokens/current", nil, &t)
}

// RevokeMagicToken revokes a public URL by its token id.
func (c *Client) RevokeMagicToken(ctx context.Context, id string) (t apiv1.MagicToken, err error) {
	return t, c.do(ctx, "DELETE", "/v1/magic-tokens/"+esc(id), nil, &t)
}
