package ctl

import (
	"errors"
	"fmt"
	"strings"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/adminapi/client"
)

// UserSetResourcesCmd is `rillctl user set-resources`, with the flags of Rill's `rill user
// set-resources` (rilldata/rill cli/cmd/user/set_resources.go).
type UserSetResourcesCmd struct {
	Org               string   `env:"RILLCTL_ORG" help:"Organization."`
	Project           string   `help:"Project (required)."`
	Email             string   `help:"Email of the user (required)."`
	Explore           []string `help:"Explore resource to set (repeat for multiple)." sep:"none"`
	Canvas            []string `help:"Canvas resource to set (repeat for multiple)." sep:"none"`
	RestrictResources bool     `name:"restrict-resources" help:"Whether to restrict the user to the provided resources (defaults to true when resources are provided); with no resources and without it, the restriction is cleared."`
}

// Run sets the user's resources.
func (c *UserSetResourcesCmd) Run(g *Globals) error {
	if c.Org == "" {
		return errors.New("--org is required (or RILLCTL_ORG)")
	}
	if c.Project == "" {
		return errors.New("--project is required")
	}
	if c.Email == "" {
		return errors.New("--email is required")
	}
	req := apiv1.ResourcesRequest{RestrictResources: c.RestrictResources, Resources: []apiv1.ResourceName{}}
	var names []string
	for _, x := range []struct {
		kind  string
		names []string
	}{{"rill.runtime.v1.Explore", c.Explore}, {"rill.runtime.v1.Canvas", c.Canvas}} {
		for _, n := range x.names {
			if n = strings.TrimSpace(n); n != "" {
				req.Resources = append(req.Resources, apiv1.ResourceName{Type: x.kind, Name: n})
				names = append(names, x.kind+"/"+n)
			}
		}
	}
	return call(g, func(cl *client.Client) (apiv1.ProjectResources, error) {
		return cl.SetUserResources(g.ctx, c.Org, c.Project, c.Email, req)
	}, func(r apiv1.ProjectResources) {
		status := "cleared"
		if r.RestrictResources && len(names) > 0 {
			status = "set to " + strings.Join(names, ", ")
		} else if r.RestrictResources {
			status = "restricted with no resources"
		}
		fmt.Fprintf(g.out, "Updated resources for %q in project \"%s/%s\" (resources %s)\n", c.Email, r.Org, r.Project, status)
	})
}

// UserShowResourcesCmd is `rillctl user show-resources`.
type UserShowResourcesCmd struct {
	Org     string `env:"RILLCTL_ORG" help:"Organization."`
	Project string `help:"Project (required)."`
	Email   string `help:"Email of the user (required)."`
}

// Run shows the user's resources.
func (c *UserShowResourcesCmd) Run(g *Globals) error {
	if c.Org == "" || c.Project == "" || c.Email == "" {
		return errors.New("--org (or RILLCTL_ORG), --project and --email are required")
	}
	return call(g, func(cl *client.Client) (apiv1.ProjectResources, error) {
		return cl.UserResources(g.ctx, c.Org, c.Project, c.Email)
	}, func(r apiv1.ProjectResources) {
		fmt.Fprintf(g.out, "User: %s\nProject: %s/%s (role %s)\n", r.Email, r.Org, r.Project, r.ProjectRole)
		if !r.RestrictResources {
			fmt.Fprintln(g.out, "Resources: not restricted")
			return
		}
		if len(r.Resources) == 0 {
			fmt.Fprintln(g.out, "Resources: restricted with no resources")
			return
		}
		parts := make([]string, len(r.Resources))
		for i, x := range r.Resources {
			parts[i] = x.Type + "/" + x.Name
		}
		fmt.Fprintf(g.out, "Resources: %s\n", strings.Join(parts, ", "))
	})
}

// UserClearResourcesCmd is `rillctl user clear-resources`: set-resources with nothing, without
// its confirmation.
type UserClearResourcesCmd struct {
	Org     string `env:"RILLCTL_ORG" help:"Organization."`
	Project string `help:"Project (required)."`
	Email   string `help:"Email of the user (required)."`
}

// Run clears the user's resources.
func (c *UserClearResourcesCmd) Run(g *Globals) error {
	if c.Org == "" || c.Project == "" || c.Email == "" {
		return errors.New("--org (or RILLCTL_ORG), --project and --email are required")
	}
	return call(g, func(cl *client.Client) (apiv1.ProjectResources, error) {
		return cl.ClearUserResources(g.ctx, c.Org, c.Project, c.Email)
	}, func(r apiv1.ProjectResources) {
		fmt.Fprintf(g.out, "Updated resources for %q in project \"%s/%s\" (resources cleared)\n", c.Email, r.Org, r.Project)
	})
}
