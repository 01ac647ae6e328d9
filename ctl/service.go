package ctl

import (
	"errors"
	"fmt"
	"strings"

	"github.com/rill-authd/rill-authd/adminapi/apiv1"
	"github.com/rill-authd/rill-authd/adminapi/client"
)

// ServiceCmd is `rillctl service`.
type ServiceCmd struct {
	Create  ServiceCreateCmd  `cmd:"" help:"Create a service and print its access token."`
	List    ServiceListCmd    `cmd:"" help:"List the org's services."`
	Edit    ServiceEditCmd    `cmd:"" help:"Rename a service or replace its attributes."`
	SetRole ServiceSetRoleCmd `cmd:"" name:"set-role" help:"Set a service's org role, or add, change or remove a project role."`
	Show    ServiceShowCmd    `cmd:"" help:"Show a service, its roles, attributes and tokens."`
	Delete  ServiceDeleteCmd  `cmd:"" help:"Delete a service; its tokens stop working at once."`
	Token   ServiceTokenCmd   `cmd:"" help:"Issue, list or revoke a service's extra tokens."`
}

// ServiceCreateCmd is `rillctl service create`.
type ServiceCreateCmd struct {
	OrgFlag
	Name         string   `arg:"" help:"Service name, unique in the org."`
	OrgRole      string   `help:"Org role: admin, editor, viewer or guest." enum:"admin,editor,viewer,guest," default:""`
	Project      string   `help:"Project to give a role on (with --project-role)."`
	ProjectRole  string   `help:"Project role: admin, editor or viewer." enum:"admin,editor,viewer," default:""`
	Attributes   string   `help:"Custom attributes for security policies, a JSON object: '{\"region\":\"us-west\"}'." placeholder:"JSON"`
	AllowNetwork []string `name:"allow-network" sep:"none" help:"Allow the service's token only from this network (CIDR); repeatable." placeholder:"CIDR"`
	TTLMinutes   int      `name:"ttl-minutes" help:"Minutes until the service's first token expires (0: never; the org's token policy may require less)."`
}

// Run creates the service.
func (c *ServiceCreateCmd) Run(g *Globals) error {
	if c.TTLMinutes < 0 {
		return errors.New("--ttl-minutes must be 0 (never expires) or more")
	}
	req := apiv1.ServiceRequest{Name: c.Name, OrgRole: c.OrgRole, Project: c.Project, ProjectRole: c.ProjectRole, TTLMinutes: c.TTLMinutes, AllowedNetworks: c.AllowNetwork}
	if c.Attributes != "" {
		attrs, err := parseAttributes(c.Attributes)
		if err != nil {
			return err
		}
		req.Attributes = attrs
	}
	if c.OrgRole == "" && c.Project == "" {
		return errors.New("give --org-role, or --project with --project-role: a service without a role can do nothing")
	}
	if (c.Project == "") != (c.ProjectRole == "") {
		return errors.New("--project and --project-role go together")
	}
	return call(g, func(cl *client.Client) (apiv1.ServiceCreated, error) { return cl.CreateService(g.ctx, c.Org, req) }, func(res apiv1.ServiceCreated) {
		fmt.Fprintf(g.out, "Created service %q in org %q.\n", res.Service.Name, res.Service.Org)
		fmt.Fprintf(g.out, "Access token: %s\n", res.Token.Token)
	})
}

// ServiceListCmd is `rillctl service list`.
type ServiceListCmd struct{ OrgFlag }

// Run lists services. PROJECT ROLES names the projects only, as Rill's service-token docs print
// it (`reporting-service  -  analytics-dashboard  {"purpose":"reporting"}`); the role on each is
// in `service show` and --json.
func (c *ServiceListCmd) Run(g *Globals) error {
	return call(g, func(cl *client.Client) ([]apiv1.Service, error) { return cl.ListServices(g.ctx, c.Org) }, func(ss []apiv1.Service) {
		rows := make([][]string, 0, len(ss))
		for _, s := range ss {
			projects := strings.Join(sortedKeys(s.ProjectRoles), ",")
			rows = append(rows, []string{s.Name, dash(s.OrgRole), dash(projects), compactJSON(s.Attributes)})
		}
		g.table("NAME\tORG ROLE\tPROJECT ROLES\tATTRIBUTES", rows)
	})
}

// ServiceEditCmd is `rillctl service edit`.
type ServiceEditCmd struct {
	OrgFlag
	Name       string  `arg:"" help:"Service to edit."`
	NewName    string  `help:"New name of the service."`
	Attributes *string `help:"Replace the custom attributes with this JSON object ('{}' clears them)." placeholder:"JSON"`
}

// Run edits the service.
func (c *ServiceEditCmd) Run(g *Globals) error {
	var req apiv1.ServiceEdit
	req.NewName = c.NewName
	if c.Attributes != nil {
		attrs, err := parseAttributes(*c.Attributes)
		if err != nil {
			return err
		}
		req.Attributes = &attrs
	}
	if req.NewName == "" && req.Attributes == nil {
		return errors.New("nothing to change: give --new-name or --attributes")
	}
	return call(g, func(cl *client.Client) (apiv1.Service, error) { return cl.EditService(g.ctx, c.Org, c.Name, req) }, func(s apiv1.Service) {
		if c.NewName != "" {
			fmt.Fprintf(g.out, "Renamed service %q to %q.\n", c.Name, s.Name)
		}
		if c.Attributes != nil {
			fmt.Fprintf(g.out, "Updated attributes of service %q: %s\n", s.Name, compactJSON(s.Attributes))
		}
	})
}

// ServiceSetRoleCmd is `rillctl service set-role`.
type ServiceSetRoleCmd struct {
	OrgFlag
	Name        string `arg:"" help:"Service to change."`
	OrgRole     string `help:"New org role: admin, editor, viewer or guest." enum:"admin,editor,viewer,guest," default:""`
	Project     string `help:"Project whose role to set (with --project-role) or remove (with --remove)."`
	ProjectRole string `help:"Project role: admin, editor or viewer." enum:"admin,editor,viewer," default:""`
	Remove      bool   `help:"Remove the service's role on --project (or its org role, without --project)."`
}

// Run changes the role.
func (c *ServiceSetRoleCmd) Run(g *Globals) error {
	req := apiv1.RoleRequest{OrgRole: c.OrgRole, Project: c.Project, ProjectRole: c.ProjectRole, Remove: c.Remove}
	if err := checkRoleFlags(req); err != nil {
		return err
	}
	return call(g, func(cl *client.Client) (apiv1.Service, error) { return cl.SetServiceRole(g.ctx, c.Org, c.Name, req) }, func(s apiv1.Service) {
		fmt.Fprintln(g.out, roleMessage("service", c.Name, req))
	})
}

func checkRoleFlags(req apiv1.RoleRequest) error {
	switch {
	case req.Remove && (req.OrgRole != "" || req.ProjectRole != ""):
		return errors.New("--remove takes no role: use --project P --remove, or --remove alone for the org role")
	case req.Remove:
		return nil
	case req.OrgRole != "" && req.Project != "":
		return errors.New("give --org-role, or --project with --project-role, not both")
	case req.Project != "" && req.ProjectRole == "":
		return errors.New("--project needs --project-role (or --remove)")
	case req.Project == "" && req.ProjectRole != "":
		return errors.New("--project-role needs --project")
	case req.OrgRole == "" && req.Project == "":
		return errors.New("nothing to change: give --org-role, or --project with --project-role or --remove")
	}
	return nil
}

func roleMessage(kind, name string, req apiv1.RoleRequest) string {
	switch {
	case req.Remove && req.Project != "":
		return fmt.Sprintf("Removed the role of %s %q on project %q.", kind, name, req.Project)
	case req.Remove:
		return fmt.Sprintf("Removed the org role of %s %q.", kind, name)
	case req.Project != "":
		return fmt.Sprintf("Set the role of %s %q on project %q to %s.", kind, name, req.Project, req.ProjectRole)
	}
	return fmt.Sprintf("Set the org role of %s %q to %s.", kind, name, req.OrgRole)
}

// ServiceShowCmd is `rillctl service show`.
type ServiceShowCmd struct {
	OrgFlag
	Name string `arg:"" help:"Service to show."`
}

// Run shows the service.
func (c *ServiceShowCmd) Run(g *Globals) error {
	return call(g, func(cl *client.Client) (apiv1.ServiceDetail, error) { return cl.ShowService(g.ctx, c.Org, c.Name) }, func(s apiv1.ServiceDetail) {
		var roles []string
		for _, p := range sortedKeys(s.ProjectRoles) {
			roles = append(roles, p+"="+s.ProjectRoles[p])
		}
		var toks []string
		for _, t := range s.Tokens {
			toks = append(toks, t.Prefix+"..."+beyondMark(t))
		}
		fmt.Fprintf(g.out, "Name:           %s\n", s.Name)
		fmt.Fprintf(g.out, "Org:            %s\n", s.Org)
		fmt.Fprintf(g.out, "Org role:       %s\n", dash(s.OrgRole))
		fmt.Fprintf(g.out, "Project roles:  %s\n", dash(strings.Join(roles, ", ")))
		fmt.Fprintf(g.out, "Attributes:     %s\n", compactJSON(s.Attributes))
		fmt.Fprintf(g.out, "Created:        %s by %s\n", when(s.CreatedAt, "-"), dash(s.CreatedBy))
		fmt.Fprintf(g.out, "Updated:        %s\n", when(s.UpdatedAt, "-"))
		fmt.Fprintf(g.out, "Tokens:         %s\n", dash(strings.Join(toks, ", ")))
		for _, t := range s.Tokens {
			if !t.LastUsedAt.IsZero() {
				fmt.Fprintf(g.out, "  %s...  last used %s%s\n", t.Prefix, when(t.LastUsedAt, "-"), usedFrom(t.LastUsedIP, t.LastUsedUserAgent))
			}
		}
		beyondFootnotes(g, s.Tokens)
	})
}

// ServiceDeleteCmd is `rillctl service delete`.
type ServiceDeleteCmd struct {
	OrgFlag
	Name string `arg:"" help:"Service to delete."`
}

// Run deletes the service.
func (c *ServiceDeleteCmd) Run(g *Globals) error {
	return call(g, func(cl *client.Client) (apiv1.Service, error) { return cl.DeleteService(g.ctx, c.Org, c.Name) }, func(s apiv1.Service) {
		fmt.Fprintf(g.out, "Deleted service %q from org %q; its tokens no longer work.\n", s.Name, s.Org)
	})
}

// ServiceTokenCmd is `rillctl service token`.
type ServiceTokenCmd struct {
	Issue  ServiceTokenIssueCmd  `cmd:"" help:"Give a service another token (for rotation)."`
	List   ServiceTokenListCmd   `cmd:"" help:"List a service's tokens."`
	Revoke ServiceTokenRevokeCmd `cmd:"" help:"Revoke one of a service's tokens."`
	Edit   ServiceTokenEditCmd   `cmd:"" help:"Change the networks one of a service's tokens may be used from."`
}

// ServiceTokenIssueCmd is `rillctl service token issue [<service>]`, as Rill's CLI takes it
// (rilldata/rill cli/cmd/service/token/issue.go: the service as an argument or --service).
type ServiceTokenIssueCmd struct {
	OrgFlag
	Name         string   `arg:"" optional:"" help:"Service (or --service)."`
	Service      string   `help:"Service name."`
	AllowNetwork []string `name:"allow-network" sep:"none" help:"Allow the token only from this network (CIDR); repeatable." placeholder:"CIDR"`
	TTLMinutes   int      `name:"ttl-minutes" help:"Minutes until the token expires (0: never; the org's token policy may require less)."`
}

// serviceName is the service named by argument or --service (the argument wins, as in Rill).
func serviceName(arg, flag string) (string, error) {
	if arg != "" {
		return arg, nil
	}
	if flag != "" {
		return flag, nil
	}
	return "", errors.New("service name is required. Use --service flag or provide as an argument")
}

// Run issues the token.
func (c *ServiceTokenIssueCmd) Run(g *Globals) error {
	name, err := serviceName(c.Name, c.Service)
	if err != nil {
		return err
	}
	if c.TTLMinutes < 0 {
		return errors.New("--ttl-minutes must be 0 (never expires) or more")
	}
	return call(g, func(cl *client.Client) (apiv1.IssuedToken, error) {
		if c.TTLMinutes > 0 || len(c.AllowNetwork) > 0 {
			return cl.IssueServiceTokenWith(g.ctx, c.Org, name, apiv1.ServiceTokenRequest{TTLMinutes: c.TTLMinutes, AllowedNetworks: c.AllowNetwork})
		}
		return cl.IssueServiceToken(g.ctx, c.Org, name)
	}, func(t apiv1.IssuedToken) {
		fmt.Fprintf(g.out, "Issued token: %s\n", t.Token)
	})
}

// ServiceTokenListCmd is `rillctl service token list [<service>]` (or --service).
type ServiceTokenListCmd struct {
	OrgFlag
	Name    string `arg:"" optional:"" help:"Service (or --service)."`
	Service string `help:"Service name."`
}

// Run lists the tokens.
func (c *ServiceTokenListCmd) Run(g *Globals) error {
	name, err := serviceName(c.Name, c.Service)
	if err != nil {
		return err
	}
	return call(g, func(cl *client.Client) ([]apiv1.TokenInfo, error) {
		return cl.ListServiceTokens(g.ctx, c.Org, name)
	}, func(ts []apiv1.TokenInfo) {
		if len(ts) == 0 {
			fmt.Fprintln(g.out, "No tokens found")
			return
		}
		rows := make([][]string, 0, len(ts))
		for _, t := range ts {
			rows = append(rows, []string{t.Prefix + "...", when(t.CreatedAt, "-"), when(t.LastUsedAt, "Never"), dash(t.LastUsedIP)})
		}
		// Rill's columns, then where the last use came from (its user agent: --json, service show).
		g.table("ID\tCREATED\tLAST USED\tLAST USED FROM", rows)
		beyondFootnotes(g, ts)
	})
}

// ServiceTokenRevokeCmd is `rillctl service token revoke <token-id>`, as Rill's CLI takes it
// (cli/cmd/service/token/revoke.go: the token alone names its service); `revoke <service>
// <token-id>` and --service still work.
type ServiceTokenRevokeCmd struct {
	OrgFlag
	Args    []string `arg:"" name:"token-id" help:"Token id, its prefix as listed (at least 10 characters after rill_svc_), or the token; optionally after the service's name."`
	Service string   `help:"Service name (default: the service of the token, found in --org)."`
}

// serviceTokenArgs reads a service token command's `[<service>] <token-id>` (the service
// also from --service); an empty name is found from the token (serviceOfToken).
func serviceTokenArgs(args []string, service string) (name, ref string, err error) {
	switch len(args) {
	case 1:
		return service, args[0], nil
	case 2:
		return args[0], args[1], nil
	}
	return "", "", errors.New("give the token id (optionally after the service's name)")
}

// serviceOfToken is name and ref, with the service found in org from the token when the
// command named none (Rill's CLI takes the token alone).
func serviceOfToken(g *Globals, cl *client.Client, org, name, ref string) (string, string, error) {
	if name != "" {
		return name, ref, nil
	}
	return findServiceToken(g, cl, org, ref)
}

// Run revokes the token.
func (c *ServiceTokenRevokeCmd) Run(g *Globals) error {
	name, ref, err := serviceTokenArgs(c.Args, c.Service)
	if err != nil {
		return err
	}
	return call(g, func(cl *client.Client) (apiv1.Revoked, error) {
		if name, ref, err = serviceOfToken(g, cl, c.Org, name, ref); err != nil {
			return apiv1.Revoked{}, err
		}
		return cl.RevokeServiceToken(g.ctx, c.Org, name, ref)
	}, func(r apiv1.Revoked) {
		fmt.Fprintf(g.out, "Revoked token %s... of service %q.\n", r.Revoked[0].Prefix, name)
	})
}

// findServiceToken finds which of org's services holds the token ref names (its id, its listed
// prefix, or the token itself), and returns that service and the token's id.
func findServiceToken(g *Globals, cl *client.Client, org, ref string) (string, string, error) {
	ref = strings.TrimSuffix(strings.TrimSpace(ref), "...")
	svcs, err := cl.ListServices(g.ctx, org)
	if err != nil {
		return "", "", err
	}
	for _, s := range svcs {
		ts, err := cl.ListServiceTokens(g.ctx, org, s.Name)
		if err != nil {
			return "", "", err
		}
		for _, t := range ts {
			prefix := strings.TrimSuffix(t.Prefix, "...")
			if ref == t.ID || (len(ref) >= len("rill_svc_")+10 && (strings.HasPrefix(prefix, ref) || strings.HasPrefix(ref, prefix))) {
				return s.Name, t.ID, nil
			}
		}
	}
	return "", "", fmt.Errorf("no service of org %q holds token %q", org, ref)
}
